"""Twilio's REST API (version 2010-04-01), through Loket's guarded HTTP client.

Only what the messaging channel needs: the account (to check credentials), sending a message,
and where an inbound message's media can be fetched. Requests authenticate with HTTP basic auth
(account SID and auth token); the base URL is ``LOKET_TWILIO_API_URL`` so tests can point it at
a local server.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import httpx
from django.conf import settings

from loket import http

API_VERSION = "2010-04-01"


class Unreachable(Exception):
    """Twilio could not be reached (network, timeout, or an address Loket may not connect to)."""

    def __init__(self, reason: str, *, blocked: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.blocked = blocked


@dataclass
class ApiError(Exception):
    """Twilio answered with an error: ``{"code", "message", "more_info", "status"}``."""

    status: int
    code: int | None
    message: str
    more_info: str = ""
    retry_after: float | None = None

    def __str__(self) -> str:
        code = f" (error {self.code})" if self.code else ""
        return f"HTTP {self.status}{code}: {self.message}"

    @property
    def transient(self) -> bool:
        return http.is_transient_status(self.status)


def basic_auth(account_sid: str, auth_token: str) -> str:
    return "Basic " + base64.b64encode(f"{account_sid}:{auth_token}".encode()).decode("ascii")


def api_url() -> str:
    return settings.LOKET_TWILIO_API_URL.rstrip("/")


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port or {"https": 443, "http": 80}.get(scheme)
    except ValueError:  # a port that is not a number
        return ("", "", None)
    return (scheme, (parts.hostname or "").lower(), port)


def on_api_host(url: str) -> bool:
    """Whether ``url`` is on the configured Twilio API host (same scheme, host and port): the
    only place Loket sends the account's credentials to."""
    origin = _origin(url)
    return bool(origin[1]) and origin == _origin(api_url())


def _error(response: httpx.Response) -> ApiError:
    try:
        payload = response.json()
    except ValueError:
        payload = None
    if not isinstance(payload, dict):
        payload = {}
    code = payload.get("code")
    try:
        code = int(code) if code not in (None, "") else None
    except (TypeError, ValueError):
        code = None
    message = str(payload.get("message") or response.reason_phrase or "").strip()
    return ApiError(
        status=response.status_code,
        code=code,
        message=message[:500] or f"HTTP {response.status_code}",
        more_info=str(payload.get("more_info") or ""),
        retry_after=http.retry_after_seconds(response),
    )


class TwilioClient:
    def __init__(self, account_sid: str, auth_token: str) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": basic_auth(self.account_sid, self.auth_token)}

    @property
    def account_url(self) -> str:
        return f"{api_url()}/{API_VERSION}/Accounts/{quote(self.account_sid, safe='')}"

    def _request(
        self, method: str, url: str, headers: dict[str, str] | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        headers = {**self.headers, "Accept": "application/json", **(headers or {})}
        try:
            with http.client() as client:
                response = client.request(method, url, headers=headers, **kwargs)
        except http.BlockedAddress as exc:
            raise Unreachable(str(exc), blocked=True) from exc
        except httpx.HTTPError as exc:
            host = urlsplit(url).hostname
            raise Unreachable(f"could not reach {host}: {exc or type(exc).__name__}") from exc
        if not 200 <= response.status_code < 300:
            raise _error(response)
        try:
            payload = response.json()
        except ValueError:
            payload = None
        if not isinstance(payload, dict):
            raise ApiError(response.status_code, None, "the answer is not a JSON object")
        return payload

    def account(self) -> dict[str, Any]:
        """``GET /2010-04-01/Accounts/{AccountSid}.json``: the account (``status``: active,
        suspended or closed)."""
        return self._request("GET", f"{self.account_url}.json")

    def send_message(self, form: list[tuple[str, str]]) -> dict[str, Any]:
        """``POST /2010-04-01/Accounts/{AccountSid}/Messages.json``, form-encoded (MediaUrl may
        repeat); returns the created Message resource (``sid``, ``status``, ...)."""
        return self._request(
            "POST",
            f"{self.account_url}/Messages.json",
            content=urlencode(form).encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
