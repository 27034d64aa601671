"""Fixtures for the Twilio channel: a FakeProvider playing api.twilio.com, a channel on it, and
a helper that POSTs a form signed the way Twilio signs it through the real webhook endpoint."""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
from pathlib import Path
from urllib.parse import parse_qsl, urlencode

import pytest

from loket.connectors.registry import get_connector
from loket.inbox.services.channels import create_channel
from tests.connectors.providers import Answer, Request, running

SAMPLES = Path("/work/shared/providers/twilio")
SID = "AC00112233445566778899aabbccddeeff"
TOKEN = "0123456789abcdef0123456789abcdef"
NUMBER = "+3197010203040"
CUSTOMER = "+31612345678"
MESSAGES = rf"/2010-04-01/Accounts/{SID}/Messages\.json"
MEDIA = rf"/2010-04-01/Accounts/{SID}/Messages/MM[0-9a-f]+/Media/ME[0-9a-f]+"
JPEG = b"\xff\xd8\xff\xe0 a tiny jpeg"
_sids = itertools.count(1)


def basic(sid: str = SID, token: str = TOKEN) -> str:
    return "Basic " + base64.b64encode(f"{sid}:{token}".encode()).decode()


def twilio_signature(token: str, url: str, params: list[tuple[str, str]]) -> str:
    """Twilio's scheme, written out here independently of the connector."""
    signed = url
    for name, value in sorted(params, key=lambda pair: pair[0]):
        signed += name + value
    return base64.b64encode(
        hmac.new(token.encode(), signed.encode(), hashlib.sha1).digest()
    ).decode()


def sample(name: str, **changes: str) -> list[tuple[str, str]]:
    """A provider sample as form pairs, with some values changed (or added)."""
    pairs = parse_qsl((SAMPLES / f"{name}.form").read_text().strip(), keep_blank_values=True)
    seen = set()
    result = []
    for key, value in pairs:
        if key in changes:
            value = changes[key]
            seen.add(key)
        result.append((key, value))
    result.extend((key, value) for key, value in changes.items() if key not in seen)
    return result


def new_sid(prefix: str = "SM") -> str:
    return f"{prefix}{next(_sids):032x}"


def created(request: Request) -> Answer:
    form = request.form()
    return Answer(
        201,
        {
            "sid": new_sid(),
            "account_sid": SID,
            "to": form["To"][0],
            "from": form.get("From", [None])[0],
            "messaging_service_sid": form.get("MessagingServiceSid", [None])[0],
            "body": form.get("Body", [""])[0],
            "status": "queued",
            "num_media": str(len(form.get("MediaUrl", []))),
            "error_code": None,
            "error_message": None,
            "api_version": "2010-04-01",
        },
    )


def media(request: Request) -> Answer:
    if request.headers.get("authorization") != basic():
        return Answer(401, {"code": 20003, "message": "Authenticate", "status": 401})
    return Answer(200, JPEG, content_type="image/jpeg")


@pytest.fixture(autouse=True)
def _media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def provider(settings):
    with running() as fake:
        fake.route("POST", MESSAGES, created)
        fake.route(
            "GET",
            rf"/2010-04-01/Accounts/{SID}\.json",
            Answer(200, {"sid": SID, "status": "active"}),
        )
        fake.route("GET", MEDIA, media)
        settings.LOKET_TWILIO_API_URL = fake.url
        yield fake


def make_channel(workspace, name="SMS", **config):
    channel, _ = create_channel(
        workspace,
        get_connector("twilio"),
        name=name,
        config={"account_sid": SID, "auth_token": TOKEN, "phone_number": NUMBER, **config},
    )
    return channel


@pytest.fixture
def channel(workspace, provider):
    return make_channel(workspace)


@pytest.fixture
def post_twilio(client):
    """POST form pairs to the channel's webhook, signed for ``url`` (by default the URL the test
    client's request has: http://testserver/hooks/twilio/<uuid>/)."""

    def post(channel, pairs, *, token=TOKEN, url=None, signature=None, headers=None):
        path = f"/hooks/twilio/{channel.uuid}/"
        signed_url = url or f"http://testserver{path}"
        sig = signature if signature is not None else twilio_signature(token, signed_url, pairs)
        sent_headers = {**(headers or {})}
        if sig:
            sent_headers["X-Twilio-Signature"] = sig
        return client.post(
            path,
            data=urlencode(pairs).encode(),
            content_type="application/x-www-form-urlencoded",
            headers=sent_headers,
        )

    return post
