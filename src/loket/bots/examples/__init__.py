"""Example flows shipped with Loket (``<name>.json``: a flow export plus its settings).

``ferry.json`` is the demo workspace's "Ferry booking helper" (English and Dutch), seeded by
``loket demo``. Its HTTP step's URL starts with ``$LOKET_URL`` (the server's own address, where
the demo look-up lives: loket.web.demo_api) and its hand-off has ``team_id`` null; ``load``
fills both in.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
URL_PLACEHOLDER = "$LOKET_URL"


@cache
def _raw(name: str) -> dict[str, Any]:
    return json.loads((HERE / f"{name}.json").read_text(encoding="utf-8"))


def load(name: str, *, base_url: str, team_id: int | None = None) -> dict[str, Any]:
    """The example ``name`` with ``definition`` ready to publish: HTTP steps pointed at
    ``base_url``, hand-offs to ``team_id``."""
    example = copy.deepcopy(_raw(name))
    for step in example["definition"]["steps"].values():
        if step["type"] == "http":
            step["url"] = step["url"].replace(URL_PLACEHOLDER, base_url.rstrip("/"))
        if step["type"] == "handoff" and "team_id" in step:
            step["team_id"] = team_id
    return example
