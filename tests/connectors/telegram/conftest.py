"""A Telegram channel wired to a fake api.telegram.org, and a way to post Updates to Loket."""

from __future__ import annotations

import itertools
import json
from email.parser import BytesParser
from email.policy import HTTP
from pathlib import Path

import pytest

from loket.connectors.registry import get_connector
from loket.inbox.services.channels import create_channel
from tests.connectors.providers import Answer, FakeProvider, Request, running

PAYLOADS = Path(__file__).parent / "payloads"
TOKEN = "7000000001:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw0"
OTHER_TOKEN = "7000000002:BBHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw9"
PUBLIC_URL = "https://loket.example"


def payload(name: str) -> dict:
    return json.loads((PAYLOADS / f"{name}.json").read_text())


def method(name: str) -> str:
    """The fake's path pattern for one Bot API method (any bot token)."""
    return rf"/bot[^/]+/{name}"


def failure(status: int, description: str, **parameters) -> Answer:
    body: dict = {"ok": False, "error_code": status, "description": description}
    if parameters:
        body["parameters"] = parameters
    return Answer(status, body)


def multipart(request: Request) -> dict[str, tuple[str | None, str, bytes]]:
    """A multipart/form-data body as {field: (filename, content type, bytes)}."""
    head = f"Content-Type: {request.headers['content-type']}\r\n\r\n".encode()
    parsed = BytesParser(policy=HTTP).parsebytes(head + request.body)
    fields = {}
    for part in parsed.iter_parts():
        name = part.get_param("name", header="content-disposition")
        fields[name] = (part.get_filename(), part.get_content_type(), part.get_payload(decode=True))
    return fields


class FakeTelegram(FakeProvider):
    """api.telegram.org for one bot: getMe, setWebhook, getWebhookInfo, getFile, the file
    download, the send methods (answering with increasing message ids) and
    editMessageReplyMarkup."""

    def __init__(self) -> None:
        super().__init__()
        self.next_id = itertools.count(2001)
        self.files: dict[str, bytes] = {"photos/file_12.jpg": b"\xff\xd8\xff\xe0 a JPEG photo"}

    def install(self) -> None:
        self.route("POST", method("getMe"), self._me)
        self.route("POST", method("setWebhook"), Answer(200, {"ok": True, "result": True}))
        self.route("POST", method("getWebhookInfo"), self._webhook_info)
        self.route("POST", method("getFile"), Answer(200, payload("get_file")))
        self.route("GET", r"/file/bot[^/]+/.+", self._file)
        for name in ("sendMessage", "sendPhoto", "sendDocument"):
            self.route("POST", method(name), self._sent)
        self.route("POST", method("editMessageReplyMarkup"), self._edited)

    def _me(self, request: Request) -> Answer:
        # Telegram knows two bots; any other token is "Unauthorized".
        token = request.path.split("/")[1].removeprefix("bot")
        if token not in (TOKEN, OTHER_TOKEN):
            return Answer(401, {"ok": False, "error_code": 401, "description": "Unauthorized"})
        me = payload("get_me")
        if token == OTHER_TOKEN:
            me["result"].update(id=7000000002, first_name="Ferry Desk", username="ferry_desk_bot")
        return Answer(200, me)

    def _webhook_info(self, request: Request) -> Answer:
        registered = [r.json() for r in self.requests_to("POST", method("setWebhook"))]
        url = registered[-1]["url"] if registered else ""
        return Answer(200, {"ok": True, "result": {"url": url, "pending_update_count": 0}})

    def _file(self, request: Request) -> Answer:
        path = request.path.split(f"/file/bot{TOKEN}/", 1)[1]
        if path not in self.files:
            return Answer(404, {"ok": False, "error_code": 404, "description": "Not Found"})
        return Answer(200, self.files[path], content_type="image/jpeg")

    def _sent(self, request: Request) -> Answer:
        if request.headers.get("content-type", "").startswith("application/json"):
            chat_id = request.json()["chat_id"]
        else:
            chat_id = int(multipart(request)["chat_id"][2])
        result = {
            **payload("send_message_response")["result"],
            "message_id": next(self.next_id),
            "chat": {"id": chat_id, "type": "private" if chat_id > 0 else "supergroup"},
        }
        return Answer(200, {"ok": True, "result": result})

    def _edited(self, request: Request) -> Answer:
        # The edited Message, now without its keyboard.
        asked = request.json()
        result = {
            **payload("send_message_response")["result"],
            "message_id": asked["message_id"],
            "chat": {
                "id": asked["chat_id"],
                "type": "private" if asked["chat_id"] > 0 else "supergroup",
            },
        }
        return Answer(200, {"ok": True, "result": result})

    def sends(self, name: str = "sendMessage") -> list[Request]:
        return self.requests_to("POST", method(name))


@pytest.fixture
def telegram(settings, tmp_path):
    settings.LOKET_PUBLIC_URL = PUBLIC_URL
    settings.MEDIA_ROOT = tmp_path
    with running(FakeTelegram()) as fake:
        fake.install()
        settings.LOKET_TELEGRAM_API_URL = fake.url
        yield fake


@pytest.fixture
def connector():
    return get_connector("telegram")


@pytest.fixture
def channel(workspace, telegram, connector):
    """A Telegram channel as an admin creates it (its webhook registered with Telegram)."""
    created, _shown = create_channel(
        workspace, connector, name="Ferry support bot", config={"bot_token": TOKEN}
    )
    created.refresh_from_db()
    return created


@pytest.fixture
def post_update(client):
    """POST a Telegram Update to Loket's webhook endpoint, as Telegram does."""

    def post(channel, update, *, secret: str | None = None, raw: bytes | None = None):
        headers = {}
        secret = channel.secrets["webhook_secret"] if secret is None else secret
        if secret:
            headers["X-Telegram-Bot-Api-Secret-Token"] = secret
        return client.post(
            f"/hooks/telegram/{channel.uuid}/",
            data=raw if raw is not None else json.dumps(update).encode(),
            content_type="application/json",
            headers=headers,
        )

    return post
