"""Small builders over the real services, for tests and benchmarks."""

from __future__ import annotations

import itertools
import json

from django.test import Client

from loket.connectors import signing
from loket.connectors.registry import get_connector
from loket.inbox.items import InboundContact, InboundMessage
from loket.inbox.models import Contact  # noqa: F401 - re-exported for tests
from loket.inbox.services.channels import create_channel
from loket.inbox.services.ingest import receive
from loket.tenancy.models import Membership, Role, User, Workspace
from loket.tenancy.services import add_member, create_api_token, create_workspace

_seq = itertools.count(1)


def user(email: str | None = None, name: str = "") -> User:
    email = email or f"user{next(_seq)}@example.com"
    return User.objects.create_user(email, "pw-for-tests-1", name=name or email.split("@")[0])


def workspace(slug: str | None = None) -> Workspace:
    slug = slug or f"ws{next(_seq)}"
    return create_workspace(slug=slug, name=slug.title(), owner=user(f"owner@{slug}.example"))


def owner_of(ws: Workspace) -> Membership:
    return Membership.objects.select_related("user", "workspace").get(workspace=ws, role=Role.OWNER)


def agent(ws: Workspace, email: str | None = None) -> Membership:
    return add_member(ws, user(email), role=Role.AGENT)


def api_channel(ws: Workspace, outbound_url: str = "", name: str = "API"):
    channel, _ = create_channel(
        ws, get_connector("api"), name=name, config={"outbound_url": outbound_url}
    )
    return channel


def email_channel(ws: Workspace, name: str = "Support mail", **config):
    """An email channel taking forwarded mail (no servers needed); ``config`` adds or overrides."""
    channel, _ = create_channel(
        ws,
        get_connector("email"),
        name=name,
        config={
            "address": "support@shop.example",
            "inbound": "forward",
            "smtp_host": "smtp.shop.example",
            **config,
        },
    )
    return channel


def signature(secret: str, body: bytes, timestamp: int | None = None) -> str:
    return signing.sign(secret, body, timestamp)


def inbound(channel, text="Hello", *, message_id=None, contact_id="c-1", name="Customer", **kw):
    """Receive one customer message through the ingest service."""
    item = InboundMessage(
        external_id=message_id or f"msg-{next(_seq)}",
        contact=InboundContact(contact_id, name=name, email=kw.pop("email", "")),
        text=text,
        **kw,
    )
    return receive(channel, item)


class ApiClient:
    """Django's test client with a Bearer token and JSON in and out."""

    def __init__(self, membership: Membership) -> None:
        _, self.token = create_api_token(membership, name="tests")
        self.membership = membership
        self.client = Client(headers={"Authorization": f"Bearer {self.token}"})

    def _call(self, method: str, path: str, data=None):
        kwargs = {}
        if data is not None:
            kwargs = {"data": json.dumps(data), "content_type": "application/json"}
        return getattr(self.client, method)(f"/api/v1{path}", **kwargs)

    def get(self, path: str):
        return self._call("get", path)

    def post(self, path: str, data=None):
        return self._call("post", path, data if data is not None else {})

    def patch(self, path: str, data):
        return self._call("patch", path, data)

    def put(self, path: str, data):
        return self._call("put", path, data)

    def delete(self, path: str):
        return self._call("delete", path)
