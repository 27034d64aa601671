"""Text helpers the messaging connectors share."""

from __future__ import annotations

from collections.abc import Callable


def split_text(text: str, fits: Callable[[str], bool]) -> list[str]:
    """``text`` in parts that each ``fits``: cut at the last paragraph break in the second half
    of what fits, else the last line break there, else the last space, else where it must."""
    parts: list[str] = []
    rest = text
    while rest and not fits(rest):
        low, high = 1, len(rest)  # the longest prefix that fits
        while low < high:
            middle = (low + high + 1) // 2
            low, high = (middle, high) if fits(rest[:middle]) else (low, middle - 1)
        cut = next(
            (
                found
                for sep in ("\n\n", "\n", " ")
                if (found := rest.rfind(sep, 0, low + 1)) >= low // 2 and found > 0
            ),
            low,
        )
        part = rest[:cut].rstrip()
        if part:
            parts.append(part)
        rest = rest[cut:].lstrip()
    if rest:
        parts.append(rest)
    return parts
