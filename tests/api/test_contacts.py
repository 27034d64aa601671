"""Contacts: list, search, show with the channel identities they were seen on."""

from __future__ import annotations

import pytest

from loket.inbox.models import Contact
from tests import factories
from tests.api.conftest import assert_error


@pytest.fixture
def people(workspace, api_channel):
    second = factories.api_channel(workspace, name="Shop")
    factories.inbound(
        api_channel, "a", contact_id="ext-ann", name="Ann Lee", email="ann@lee.example"
    )
    factories.inbound(
        second, "b", contact_id="ext-bob", name="Bob Stone", email="bob@stone.example"
    )
    factories.inbound(
        api_channel, "c", contact_id="ext-cy", name="Cy Twombly", email="cy@art.example"
    )
    return {c.name.split()[0].lower(): c for c in Contact.objects.all()} | {"second": second}


def _names(response) -> list[str]:
    assert response.status_code == 200, response.content[:300]
    return [c["name"] for c in response.json()["items"]]


def test_list_newest_first(api, people):
    assert _names(api.get("/contacts")) == ["Cy Twombly", "Bob Stone", "Ann Lee"]


def test_list_pages(api, people):
    first = api.get("/contacts?limit=2").json()
    assert [c["name"] for c in first["items"]] == ["Cy Twombly", "Bob Stone"]
    rest = api.get(f"/contacts?limit=2&cursor={first['next_cursor']}").json()
    assert [c["name"] for c in rest["items"]] == ["Ann Lee"]
    assert rest["next_cursor"] is None
    assert_error(api.get("/contacts?cursor=nonsense"), 400, "bad_cursor")
    assert_error(api.get("/contacts?limit=500"), 400, "invalid")


@pytest.mark.parametrize(
    ("q", "names"),
    [
        ("ann", ["Ann Lee"]),
        ("STONE", ["Bob Stone"]),
        ("bob@stone", ["Bob Stone"]),
        ("art.example", ["Cy Twombly"]),
        (".example", ["Cy Twombly", "Bob Stone", "Ann Lee"]),
        ("  lee  ", ["Ann Lee"]),
        ("nobody", []),
        ("", ["Cy Twombly", "Bob Stone", "Ann Lee"]),
    ],
)
def test_search_by_name_or_email(api, people, q, names):
    assert _names(api.get(f"/contacts?q={q}")) == names


def test_show_with_identities(api, people, api_channel):
    bob = people["bob"]
    factories.inbound(api_channel, "again", contact_id="ext-bob-2", name="Bob Stone")
    response = api.get(f"/contacts/{bob.pk}")
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == bob.pk
    assert body["name"] == "Bob Stone" and body["email"] == "bob@stone.example"
    assert body["identities"] == [{"channel_id": people["second"].pk, "external_id": "ext-bob"}]
    listed = next(c for c in api.get("/contacts").json()["items"] if c["id"] == bob.pk)
    assert listed["identities"] == body["identities"]


def test_show_an_unknown_contact_is_404(api, db):
    assert_error(api.get("/contacts/987654321"), 404, "not_found")
