"""The Telegram Bot API, through Loket's guarded HTTP client.

Every method is ``POST {LOKET_TELEGRAM_API_URL}/bot<token>/<method>`` answering
``{"ok": true, "result": ...}`` or ``{"ok": false, "error_code": 403, "description": "...",
"parameters": {"retry_after": 5}}``. Files are downloaded from ``{api}/file/bot<token>/<path>``.
The token is part of every URL, so no error raised here ever carries a URL.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
from django.conf import settings

from loket import http


class TelegramError(Exception):
    """Telegram answered, and not with ``ok``."""

    def __init__(
        self,
        status: int,
        description: str,
        *,
        retry_after: float | None = None,
        migrate_to_chat_id: int | None = None,
    ) -> None:
        super().__init__(f"{status}: {description}")
        self.status = status
        self.description = description
        self.retry_after = retry_after
        self.migrate_to_chat_id = migrate_to_chat_id

    @property
    def transient(self) -> bool:
        return http.is_transient_status(self.status)


class TelegramUnreachable(Exception):
    """No answer from Telegram (DNS, connection, timeout); worth trying again."""


@dataclass(frozen=True)
class Upload:
    field: str  # "photo" or "document"
    filename: str
    content_type: str
    content: bytes


def api_url() -> str:
    return settings.LOKET_TELEGRAM_API_URL.rstrip("/")


def file_url(token: str, file_path: str) -> str:
    return f"{api_url()}/file/bot{token}/{file_path.lstrip('/')}"


class BotApi:
    def __init__(self, token: str) -> None:
        self.token = token

    def _scrub(self, text: str) -> str:
        return text.replace(self.token, "<token>") if self.token else text

    def call(
        self,
        method: str,
        payload: dict[str, Any] | None = None,
        *,
        upload: Upload | None = None,
    ) -> Any:
        """Call one Bot API method with a JSON body (or multipart with one file) and return
        its ``result``."""
        url = f"{api_url()}/bot{self.token}/{method}"
        try:
            with http.client() as client:
                if upload is None:
                    response = client.post(url, json=payload or {})
                else:
                    fields = {k: _form_value(v) for k, v in (payload or {}).items()}
                    files = {upload.field: (upload.filename, upload.content, upload.content_type)}
                    response = client.post(url, data=fields, files=files)
        except http.BlockedAddress as exc:
            raise TelegramError(0, self._scrub(str(exc))) from None
        except httpx.HTTPError as exc:
            detail = self._scrub(str(exc)) or type(exc).__name__
            raise TelegramUnreachable(f"could not reach Telegram: {detail}") from None
        return self._result(response)

    def _result(self, response: httpx.Response) -> Any:
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict) and body.get("ok") is True and response.status_code < 300:
            return body.get("result")
        description = ""
        parameters: dict[str, Any] = {}
        if isinstance(body, dict):
            description = str(body.get("description") or "")
            if isinstance(body.get("parameters"), dict):
                parameters = body["parameters"]
        if not description:
            description = self._scrub(response.text[:200].strip()) or response.reason_phrase
        status = response.status_code if response.status_code >= 300 else 500
        if isinstance(body, dict) and isinstance(body.get("error_code"), int):
            status = body["error_code"] if response.status_code < 300 else response.status_code
        retry_after = parameters.get("retry_after")
        if not isinstance(retry_after, int | float):
            retry_after = http.retry_after_seconds(response)
        migrate = parameters.get("migrate_to_chat_id")
        raise TelegramError(
            status,
            self._scrub(description),
            retry_after=float(retry_after) if retry_after is not None else None,
            migrate_to_chat_id=migrate if isinstance(migrate, int) else None,
        )


def _form_value(value: Any) -> str:
    if isinstance(value, dict | list):
        import json

        return json.dumps(value, separators=(",", ":"))
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
