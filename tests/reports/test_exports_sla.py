"""The SLA report as a download (loket.reports.exports.sla_table): per policy, then all
policies, each target's achieved, breached and achieved share, on the story of
tests/reports/test_sla_report.py."""

from __future__ import annotations

import csv
import io

from loket.reports import exports
from loket.reports.queries import Filters
from tests.automation.test_sla import MONDAY
from tests.reports.test_sla_report import anna, office, story  # noqa: F401 - fixtures
from tests.workspace_settings.conftest import signed_in


def test_the_sla_table(story):  # noqa: F811
    workspace = story["a"].workspace
    table = exports.sla_table(workspace.pk, MONDAY, MONDAY, Filters())
    assert table.headers[:4] == [
        "SLA policy",
        "First response: achieved",
        "First response: breached",
        "First response: achieved (%)",
    ]
    assert table.headers[-3:] == [
        "All targets: achieved",
        "All targets: breached",
        "All targets: achieved (%)",
    ]
    rows = {row[0]: row for row in table}
    assert list(rows) == ["Standard", "VIP", "All policies"]
    # first response 1/1 (50%), next response 1/0, resolution 1/0, all 3/1 (75%).
    assert rows["Standard"][1:] == [1, 1, 50.0, 1, 0, 100.0, 1, 0, 100.0, 3, 1, 75.0]
    assert rows["VIP"][1:] == [0, 1, 0.0, 0, 0, None, 0, 0, None, 0, 1, 0.0]
    assert rows["All policies"][1:4] == [1, 2, 33.3]
    only_vip = {
        row[0]: row
        for row in exports.sla_table(
            workspace.pk, MONDAY, MONDAY, Filters(channel_id=story["vip_channel"].pk)
        )
    }
    assert only_vip["Standard"][1:3] == [0, 0] and only_vip["VIP"][1:3] == [0, 1]


def test_the_sla_download(story, office):  # noqa: F811
    from loket.tenancy.models import Role
    from loket.tenancy.services import add_member
    from tests import factories

    boss = add_member(office, factories.user("boss@shop.example", "Boss"), role=Role.SUPERVISOR)
    response = signed_in(boss).get("/w/acme/reports/export/sla.csv?from=2026-12-07&to=2026-12-07")
    assert response.status_code == 200
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig"))))
    assert [row[0] for row in rows] == ["SLA policy", "Standard", "VIP", "All policies"]
