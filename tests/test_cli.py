"""The `loket` command's management commands: token, createadmin, demo."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command

from loket.inbox.models import Channel, Conversation, Message
from loket.tenancy.models import ApiToken, Membership, Workspace, hash_token
from loket.tenancy.services import authenticate_token


def run(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_demo_seeds_a_workspace_and_is_idempotent(db):
    first = run("demo")
    assert "owner@example.com / loket-demo" in first
    workspace = Workspace.objects.get(slug="demo")
    counts = (
        Membership.objects.filter(workspace=workspace).count(),
        Channel.objects.filter(workspace=workspace).count(),
        Conversation.objects.filter(workspace=workspace).count(),
        Message.objects.filter(workspace=workspace).count(),
    )
    assert counts[0] == 3 and counts[1] >= 2 and counts[2] >= 5
    languages = set(
        Conversation.objects.filter(workspace=workspace).values_list("contact__locale", flat=True)
    )
    assert {"en", "nl"} <= languages

    second = run("demo")
    assert counts == (
        Membership.objects.filter(workspace=workspace).count(),
        Channel.objects.filter(workspace=workspace).count(),
        Conversation.objects.filter(workspace=workspace).count(),
        Message.objects.filter(workspace=workspace).count(),
    )
    # Each run prints a fresh token and revokes the previous demo token.
    token_line = next(line for line in second.splitlines() if "API token:" in line)
    raw = token_line.split("API token:")[1].strip()
    assert authenticate_token(raw) is not None
    assert ApiToken.objects.filter(name="demo", revoked_at__isnull=True).count() == 1


def test_the_demo_login_works(db, client):
    run("demo")
    response = client.post(
        "/accounts/login/", {"login": "owner@example.com", "password": "loket-demo"}
    )
    assert response.status_code == 302
    home = client.get("/", follow=True)
    assert home.status_code == 200
    assert "Demo Shop" in home.content.decode()


def test_token_create_prints_only_a_working_token(db):
    run("demo")
    out = run("token", "create", "--workspace", "demo", "--email", "owner@example.com")
    raw = out.strip()
    assert out.count("\n") == 1 and raw.startswith("lkt_")
    token = authenticate_token(raw)
    assert token.workspace.slug == "demo"
    assert ApiToken.objects.filter(token_hash=hash_token(raw)).exists()
    assert not ApiToken.objects.filter(token_hash=raw).exists()


def test_token_create_for_a_non_member_fails_clearly(db):
    run("demo")
    with pytest.raises(CommandError, match="not a member"):
        run("token", "create", "--workspace", "demo", "--email", "stranger@example.com")


def test_createadmin_makes_an_owner_and_checks_the_password(db):
    with pytest.raises(CommandError):
        run("createadmin", "--email", "boss@example.com", "--workspace", "shop", "--password", "1")
    out = run(
        "createadmin", "--email", "boss@example.com", "--workspace", "shop",
        "--password", "a-long-enough-passphrase",
    )  # fmt: skip
    assert "owns workspace shop" in out
    membership = Membership.objects.get(user__email="boss@example.com")
    assert membership.role == "owner" and membership.workspace.slug == "shop"


def test_tokens_can_be_listed_and_revoked(db):
    run("demo")
    raw = run("token", "create", "--workspace", "demo", "--email", "owner@example.com").strip()
    listing = run("token", "list", "--workspace", "demo")
    assert raw[:10] in listing and raw not in listing
    assert "revoked" in run("token", "revoke", "--workspace", "demo", raw[:10])
    assert authenticate_token(raw) is None
    with pytest.raises(CommandError, match="no active token"):
        run("token", "revoke", "--workspace", "demo", raw[:10])
