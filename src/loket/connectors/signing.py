"""Loket's own webhook signature, used by the API channel in both directions and by outbound
webhooks: ``X-Loket-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>``."""

from __future__ import annotations

import hmac
import time

HEADER = "X-Loket-Signature"


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    ts = int(time.time()) if timestamp is None else timestamp
    # hmac.digest: OpenSSL's one-shot HMAC, without building an HMAC object (webhook hot path).
    digest = hmac.digest(secret.encode(), b"%d." % ts + body, "sha256").hex()
    return f"t={ts},v1={digest}"


class InvalidSignature(ValueError):
    pass


def verify(secret: str, body: bytes, header: str, *, tolerance: int = 300) -> None:
    """Raise InvalidSignature with the reason unless ``header`` signs ``body`` recently."""
    if not header:
        raise InvalidSignature(f"missing {HEADER} header")
    parts: dict[str, list[str]] = {}
    for item in header.split(","):
        key, _, value = item.strip().partition("=")
        parts.setdefault(key, []).append(value)
    stamp = (parts.get("t") or [""])[0]
    if not (stamp.isascii() and stamp.isdigit() and len(stamp) <= 12):
        raise InvalidSignature(f"{HEADER} has no valid t=<unix seconds>")
    ts = int(stamp)
    if abs(time.time() - ts) > tolerance:
        raise InvalidSignature("signature timestamp is more than 5 minutes off (replay?)")
    expected = sign(secret, body, ts).split("v1=", 1)[1].encode()
    # Bytes, so a non-ASCII value in the header is a mismatch, not a TypeError.
    given = [value.encode("utf-8", "replace") for value in parts.get("v1", [])]
    if not any(hmac.compare_digest(expected, value) for value in given):
        raise InvalidSignature("signature does not match the body")
