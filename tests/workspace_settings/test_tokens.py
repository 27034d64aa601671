"""API tokens: an admin's own tokens, the raw secret shown once and usable against the API."""

from __future__ import annotations

import re

from django.test import Client

from loket.tenancy.models import ApiToken
from loket.tenancy.services import create_api_token
from tests.workspace_settings.conftest import url


def api_get(token: str, path: str = "/api/v1/channels"):
    return Client().get(path, headers={"Authorization": f"Bearer {token}"})


def test_created_token_is_shown_once_and_works_against_the_api(admin_client, workspace, admin):
    response = admin_client.post(url("tokens", workspace), {"name": "Webshop"})
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    raw = re.search(r'id="raw-token">(lkt_[\w-]+)<', response.content.decode()).group(1)
    token = ApiToken.objects.get(membership=admin)
    assert token.name == "Webshop" and raw.startswith(token.prefix)
    assert raw not in admin_client.get(url("tokens", workspace)).content.decode()

    answer = api_get(raw)
    assert answer.status_code == 200 and answer.json() == []
    page = admin_client.get(url("tokens", workspace)).content.decode()
    row = page[page.index(f'id="token-{token.pk}"') :]
    row = row[: row.index("</tr>")]
    assert "Webshop" in row and f"{token.prefix}…" in row and "Never" not in row


def test_revoked_token_stops_working(admin_client, workspace, admin):
    token, raw = create_api_token(admin, name="Old")
    assert api_get(raw).status_code == 200
    response = admin_client.post(url("token-revoke", workspace, token.pk), follow=True)
    assert f"Token {token.prefix}… revoked." in response.content.decode()
    assert api_get(raw).status_code == 401
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert "Revoked" in response.content.decode()


def test_only_the_members_own_tokens_are_listed_or_revocable(admin_client, workspace, owner, admin):
    owners_token, raw = create_api_token(owner, name="Owner's integration")
    page = admin_client.get(url("tokens", workspace)).content.decode()
    assert "Owner&#x27;s integration" not in page and owners_token.prefix not in page
    assert admin_client.post(url("token-revoke", workspace, owners_token.pk)).status_code == 404
    owners_token.refresh_from_db()
    assert owners_token.revoked_at is None
    assert api_get(raw).status_code == 200


def test_a_token_name_that_is_too_long_is_refused(admin_client, workspace, admin):
    response = admin_client.post(url("tokens", workspace), {"name": "x" * 101})
    assert response.status_code == 400
    assert "lkt_" not in response.content.decode()
    assert not ApiToken.objects.filter(membership=admin).exists()
