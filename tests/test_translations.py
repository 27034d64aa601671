"""The Dutch catalogue is complete and compiled, and covers every string in the code.

Three checks: every msgid in ``nl/LC_MESSAGES/django.po`` has a translation that is not fuzzy;
the committed ``django.mo`` says the same as the ``.po`` (so nobody forgot to compile); and a
fresh ``makemessages`` run over the source finds no msgid the catalogue lacks (so nobody forgot
to extract). The last needs GNU gettext (xgettext), which CI installs.
"""

from __future__ import annotations

import ast
import gettext
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import require

SRC = Path(__file__).resolve().parents[1] / "src" / "loket"
PO = SRC / "locale" / "nl" / "LC_MESSAGES" / "django.po"
MO = PO.with_suffix(".mo")


def parse_po(path: Path) -> list[dict]:
    """A small .po reader: entries with msgctxt, msgid, msgid_plural, msgstr[n] and flags."""
    entries: list[dict] = []
    entry: dict = {}
    key = None

    def finish():
        if "msgid" in entry:
            entries.append(entry.copy())
        entry.clear()

    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line:
            finish()
            key = None
            continue
        if line.startswith("#,"):
            if "msgid" in entry:
                finish()
            entry.setdefault("flags", set()).update(f.strip() for f in line[2:].split(","))
            continue
        if line.startswith("#"):
            continue
        if line.startswith('"'):
            entry[key] += ast.literal_eval(line)
            continue
        name, _, value = line.partition(" ")
        if name == "msgctxt" and "msgid" in entry:
            finish()
        key = name
        entry[key] = ast.literal_eval(value)
    finish()
    return entries


def test_every_dutch_msgid_is_translated():
    entries = [e for e in parse_po(PO) if e["msgid"]]
    assert len(entries) > 100, "the Dutch catalogue looks empty"
    missing = []
    for e in entries:
        values = [v for k, v in e.items() if k.startswith("msgstr")]
        if "fuzzy" in e.get("flags", ()) or not values or not all(values):
            missing.append(e["msgid"])
    assert not missing, f"{len(missing)} untranslated or fuzzy Dutch strings: {missing[:20]}"


def test_the_compiled_catalogue_matches_the_po_file():
    with MO.open("rb") as handle:
        compiled = gettext.GNUTranslations(handle)
    stale = []
    for e in parse_po(PO):
        if not e["msgid"]:
            continue
        context = e.get("msgctxt")
        if "msgid_plural" in e:
            got = (
                compiled.npgettext(context, e["msgid"], e["msgid_plural"], 1)
                if context
                else (compiled.ngettext(e["msgid"], e["msgid_plural"], 1))
            )
            wanted = e["msgstr[0]"]
        else:
            got = (
                compiled.pgettext(context, e["msgid"]) if context else compiled.gettext(e["msgid"])
            )
            wanted = e["msgstr"]
        if got != wanted:
            stale.append(e["msgid"])
    assert not stale, f"django.mo is stale (run `make messages`): {stale[:10]}"


@pytest.mark.sqlite  # independent of the database: once per CI run is enough
def test_the_catalogue_covers_every_string_in_the_code(tmp_path):
    require(shutil.which("xgettext") is not None, "GNU gettext (xgettext)")
    copy = tmp_path / "loket"
    shutil.copytree(SRC, copy, ignore=shutil.ignore_patterns("__pycache__", "*.mo", "static"))
    subprocess.run(
        # -P: run from inside the package, loket/http.py must not hide the standard library's.
        [sys.executable, "-P", "-m", "django", "makemessages", "-l", "nl", "--no-obsolete",
         "--no-location", "--ignore", "static/*"],
        cwd=copy, check=True, capture_output=True,
        env={"DJANGO_SETTINGS_MODULE": "loket.settings", "PATH": "/usr/bin:/bin",
             "LOKET_VAR_DIR": str(tmp_path / "var")},
    )  # fmt: skip
    fresh = {
        (e.get("msgctxt"), e["msgid"]) for e in parse_po(copy / PO.relative_to(SRC)) if e["msgid"]
    }
    committed = {(e.get("msgctxt"), e["msgid"]) for e in parse_po(PO) if e["msgid"]}
    new = sorted(fresh - committed, key=str)
    assert not new, (
        f"{len(new)} strings are not in the Dutch catalogue (run `make messages`): {new[:20]}"
    )
