"""Bearer tokens: per workspace, hashed at rest, revocable; every failure is a JSON 401."""

from __future__ import annotations

import hashlib

import pytest
from django.test import Client

from loket.inbox.models import Message
from loket.tenancy.models import ApiToken
from loket.tenancy.services import create_api_token, revoke_api_token
from tests import factories
from tests.api.conftest import assert_error


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": ""},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer lkt_not-a-real-token"},
        {"Authorization": "Bearer not-even-the-prefix"},
        {"Authorization": "Token lkt_whatever"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
    ],
    ids=["none", "empty", "no-token", "unknown", "no-prefix", "other-scheme", "basic"],
)
@pytest.mark.parametrize("path", ["/channels", "/conversations", "/contacts", "/conversations/1"])
def test_missing_or_invalid_token_is_a_json_401(db, owner, headers, path):
    factories.ApiClient(owner)  # a live token exists, it is just not the one sent
    response = Client(headers=headers).get(f"/api/v1{path}")
    assert_error(response, 401, "unauthorized")
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_a_write_without_a_token_is_401_and_stores_nothing(db, owner, api_channel):
    conversation_id = factories.inbound(api_channel, "Hi").conversation_id
    count = Message.objects.count()
    response = Client().post(
        f"/api/v1/conversations/{conversation_id}/messages",
        data={"text": "hi"},
        content_type="application/json",
    )
    assert_error(response, 401, "unauthorized")
    assert Message.objects.count() == count


def test_a_revoked_token_is_401(db, owner):
    api = factories.ApiClient(owner)
    assert api.get("/channels").status_code == 200
    revoke_api_token(
        ApiToken.objects.get(token_hash=hashlib.sha256(api.token.encode()).hexdigest())
    )
    assert_error(api.get("/channels"), 401, "unauthorized")


def test_a_token_of_a_deactivated_user_is_401(db, owner):
    api = factories.ApiClient(owner)
    owner.user.is_active = False
    owner.user.save(update_fields=["is_active"])
    assert_error(api.get("/channels"), 401, "unauthorized")


def test_revoking_one_token_leaves_the_others(db, owner):
    first, second = factories.ApiClient(owner), factories.ApiClient(owner)
    revoke_api_token(
        ApiToken.objects.get(token_hash=hashlib.sha256(first.token.encode()).hexdigest())
    )
    assert first.get("/channels").status_code == 401
    assert second.get("/channels").status_code == 200


def test_the_token_is_stored_only_as_its_sha256(db, owner):
    token, raw = create_api_token(owner, name="ci")
    assert raw.startswith("lkt_") and len(raw) > 30
    row = ApiToken.objects.filter(pk=token.pk).values().get()
    assert row["token_hash"] == hashlib.sha256(raw.encode()).hexdigest()
    assert row["workspace_id"] == owner.workspace_id
    for field, value in row.items():
        assert raw not in str(value), f"the raw token is stored in {field}"
    # The displayable prefix is too short to be the secret.
    assert len(row["prefix"]) <= 12 and raw.startswith(row["prefix"])


def test_a_token_acts_as_its_membership_in_its_workspace(db):
    a, b = factories.workspace("one"), factories.workspace("two")
    channel_a = factories.api_channel(a, name="One's channel")
    factories.api_channel(b, name="Two's channel")
    api = factories.ApiClient(factories.owner_of(a))
    assert [c["id"] for c in api.get("/channels").json()] == [channel_a.pk]
