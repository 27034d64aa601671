"""Reading providers' JSON defensively: a field of the wrong type reads as empty, never fails a
whole delivery (connectors must ignore what they do not understand)."""

from __future__ import annotations

from typing import Any


def as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []
