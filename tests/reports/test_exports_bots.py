"""The bot funnel as a download (loket.reports.exports.bots_table): one row per flow, version
and step with the sessions' ends, on the story of tests/reports/test_bot_funnel.py."""

from __future__ import annotations

from loket.reports import exports
from loket.reports.queries import Filters
from tests.reports.test_bot_funnel import days, shop, story  # noqa: F401 - fixtures


def test_the_bots_table(story, workspace, days):  # noqa: F811
    start, end, _query = days
    table = exports.bots_table(workspace.pk, start, end, Filters())
    assert table.headers[:4] == ["Flow", "Version", "Step", "Sessions"]
    rows = [dict(zip(table.headers, row, strict=True)) for row in table]
    flow = [row for row in rows if row["Version"] == "All versions"]
    assert [(r["Step"], r["Reached the step"], r["Dropped here"]) for r in flow] == [
        ("welcome", 9, 0),
        ("code", 2, 0),
        ("need", 9, 1),
        ("bye", 1, 0),
        ("Person", 1, 0),
        ("thanks", 1, 0),
        ("Hand-off (too many wrong answers, a failed lookup, or no FAQ answer)", 1, 0),
    ]
    first = flow[0]
    assert first["Flow"] == "Helpdesk" and first["Sessions"] == 9
    assert first["Handed to a person"] == 2 and first["Resolved by the bot"] == 1
    assert first["Reached the step (%)"] == 100.0
    assert {row["Version"] for row in rows} == {"All versions", 1, 2}
    # Version 2: the shop's and the mail channel's sessions, both still talking.
    assert {(row["Sessions"], row["Talking"]) for row in rows if row["Version"] == 2} == {(2, 2)}
