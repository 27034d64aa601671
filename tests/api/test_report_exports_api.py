"""The reports' downloads over the API: GET /api/v1/reports/export/{report}?format=csv|xlsx with
the report endpoints' filters, streamed attachments, for supervisors and up; bad ranges and
unknown reports are 400s; another workspace's ids match nothing; described in the OpenAPI."""

from __future__ import annotations

import csv
import io
import zipfile

import pytest

from tests import factories
from tests.api.conftest import assert_error
from tests.reports.test_exports import data, parse  # noqa: F401 - the fixture

pytestmark = pytest.mark.django_db

RANGE = "from=2026-11-09&to=2026-11-15"


def rows_of(response) -> list[list[str]]:
    assert response.status_code == 200, response.content[:300]
    assert response.streaming
    body = b"".join(response.streaming_content).decode("utf-8-sig")
    return list(csv.reader(io.StringIO(body)))


def test_exports(workspace, supervisor, agent, data):  # noqa: F811
    first, second, _before, other = data
    api = factories.ApiClient(supervisor)
    response = api.get(f"/reports/export/conversations?{RANGE}")
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == (
        'attachment; filename="loket-conversations-2026-11-09-2026-11-15.csv"'
    )
    rows = rows_of(response)
    assert [row[0] for row in rows[1:]] == [str(first.number), str(second.number)]
    mine = rows_of(api.get(f"/reports/export/conversations?{RANGE}&member_id={agent.pk}"))
    assert [row[0] for row in mine[1:]] == [str(second.number)]
    theirs = factories.api_channel(other)
    assert (
        len(rows_of(api.get(f"/reports/export/conversations?{RANGE}&channel_id={theirs.pk}"))) == 1
    )

    overview = rows_of(api.get(f"/reports/export/overview?{RANGE}"))
    assert overview[-1][:2] == ["Total", "2"]
    ratings = rows_of(api.get(f"/reports/export/ratings?{RANGE}&comments=true"))
    assert len(ratings) == 2

    xlsx = api.get(f"/reports/export/busiest-hours?{RANGE}&format=xlsx")
    assert xlsx.status_code == 200 and xlsx.streaming
    assert xlsx["Content-Disposition"].endswith('busiest-hours-2026-11-09-2026-11-15.xlsx"')
    archive = zipfile.ZipFile(io.BytesIO(b"".join(xlsx.streaming_content)))
    assert len(parse(archive.read("xl/worksheets/sheet1.xml")).findall(".//{*}row")) == 8


def test_refused(owner, agent, data):  # noqa: F811
    assert_error(
        factories.ApiClient(agent).get(f"/reports/export/overview?{RANGE}"), 403, "forbidden"
    )
    api = factories.ApiClient(owner)
    assert_error(api.get("/reports/export/overview?from=2026-11-15&to=2026-11-09"), 400, "invalid")
    assert_error(api.get("/reports/export/agents?from=2024-01-01&to=2026-11-09"), 400, "invalid")
    assert_error(api.get(f"/reports/export/secrets?{RANGE}"), 400, "invalid")
    assert_error(api.get(f"/reports/export/overview?{RANGE}&format=pdf"), 400, "invalid")


def test_described_in_openapi(api):
    spec = api.client.get("/api/v1/openapi.json").json()
    operation = spec["paths"]["/api/v1/reports/export/{report}"]["get"]
    content = operation["responses"]["200"]["content"]
    assert set(content) == {
        "text/csv; charset=utf-8",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    }
    names = {p["name"] for p in operation["parameters"]}
    assert {"report", "format", "from", "to", "channel_id", "member_id", "comments"} <= names


def test_in_the_token_owners_language(supervisor, data):  # noqa: F811
    supervisor.user.locale = "nl"
    supervisor.user.save(update_fields=["locale"])
    rows = rows_of(factories.ApiClient(supervisor).get(f"/reports/export/overview?{RANGE}"))
    assert rows[0][:3] == ["Dag", "Nieuwe gesprekken", "Oplossingen"]


def test_streamed_under_asgi(transactional_db, supervisor, data):  # noqa: F811
    """Through the real ASGI application (uvicorn's): the rows come from the database while
    the response is being sent, chunk by chunk, never read whole first."""
    import warnings

    import httpx
    from asgiref.sync import async_to_sync

    from loket.asgi import application

    first, second, _before, _other = data
    token = factories.ApiClient(supervisor).token

    async def get(path: str):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            return await c.get(path, headers={"Authorization": f"Bearer {token}"})

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        response = async_to_sync(get)(f"/api/v1/reports/export/conversations?{RANGE}")
    assert response.status_code == 200, response.text[:300]
    assert not [w for w in caught if "must consume synchronous iterators" in str(w.message)]
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert [row[0] for row in rows[1:]] == [str(first.number), str(second.number)]
    assert response.headers["content-disposition"].startswith("attachment; filename=")
