"""Every vendored file is listed in VENDORED.md with the SHA-256 it has, and every listed file
is there: a replaced or edited library cannot go unnoticed."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import loket

VENDOR = Path(loket.__file__).parent / "web" / "static" / "loket" / "vendor"


def test_vendored_files_match_their_recorded_checksums():
    table = (VENDOR / "VENDORED.md").read_text(encoding="utf-8")
    recorded = dict(re.findall(r"\| `([^`]+\.(?:js|css))` \|.*\| `([0-9a-f]{64})` \|", table))
    files = {p.name for p in VENDOR.iterdir() if p.suffix in (".js", ".css")}
    assert files == set(recorded), (files, set(recorded))
    for name, digest in recorded.items():
        assert hashlib.sha256((VENDOR / name).read_bytes()).hexdigest() == digest, name
