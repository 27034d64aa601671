"""Meta's Graph API through Loket's guarded HTTP client, with its errors in plain words.

Errors come back as ``{"error": {"message", "type", "code", "error_subcode", "is_transient",
"error_data": {"details"}, "fbtrace_id"}}``. ``send_error()`` turns one into the outbound path's
TransientSendError (retried with backoff) or PermanentSendError (shown to the agent).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
from django.conf import settings
from django.utils.translation import gettext as _

from loket import http
from loket.connectors.base import (
    InvalidConfig,
    MediaUnavailable,
    PermanentSendError,
    TransientSendError,
)

# Codes Meta documents as "try again later" (throttling, temporary outages).
TRANSIENT_CODES = {1, 2, 4, 17, 32, 341, 613, 80007, 130429, 131000, 131016, 131056, 133004}


def _plain_words() -> dict[int, str]:
    # Built on use so the words follow the agent's language.
    return {
        131047: _(
            "More than 24 hours have passed since the customer last wrote: WhatsApp only allows"
            " an approved message template until they write again."
        ),
        131026: _(
            "WhatsApp could not deliver the message: the number may not be on WhatsApp, or the"
            " customer has not accepted WhatsApp's latest terms."
        ),
        131021: _("The message was addressed to the business's own number."),
        131051: _("WhatsApp does not support this kind of message."),
        131052: _("WhatsApp could not download the customer's media."),
        131053: _("WhatsApp could not accept the attached file (type or size)."),
        131048: _("WhatsApp limited this number for sending too many messages marked as spam."),
        131031: _("The WhatsApp business account is locked."),
        131042: _("There is a payment problem with the WhatsApp business account."),
        131056: _("Too many messages to this customer in a short time; trying again later."),
        130429: _("The WhatsApp sending limit was reached; trying again later."),
        132000: _("The template's variables do not match the template (wrong number of them)."),
        132001: _("The template does not exist in this language (or is not approved yet)."),
        132005: _("A template variable makes the message too long."),
        132007: _("The template's content breaks WhatsApp's policy."),
        132012: _("A template variable has the wrong format."),
        132015: _("The template is paused because of low quality."),
        132016: _("The template is disabled."),
        133010: _("The phone number is not registered with WhatsApp Business."),
        190: _("The access token is invalid or has expired: update the channel's token."),
        200: _("The app lacks the permission for this (check the token's permissions)."),
        10: _("The app lacks the permission for this (check the token's permissions)."),
        100: _("Meta refused a parameter of the request."),
        368: _("The account is temporarily blocked for policy violations."),
        551: _("This person isn't available right now."),
        2018278: _(
            "The reply window has closed: the customer last wrote more than 7 days ago, so"
            " Messenger allows no reply until they write again."
        ),
        1545041: _("This person isn't available right now."),
        2018001: _("No matching user: the customer may have deleted their account."),
        2018108: _("The customer has blocked messages from this page or account."),
    }


@dataclass
class GraphError(Exception):  # not frozen: raising sets __traceback__ on it
    status: int
    code: int | None
    subcode: int | None
    message: str
    transient: bool
    retry_after: float | None = None

    def __str__(self) -> str:
        return self.plain()

    def plain(self) -> str:
        """The reason an agent reads: known codes in plain words, with Meta's code."""
        words = _plain_words()
        known = words.get(self.subcode or -1) or words.get(self.code or -1)
        label = f"{self.code}" + (f"/{self.subcode}" if self.subcode else "")
        if known:
            return f"{known} (Meta error {label})"
        if self.code is None:
            return _("Meta answered HTTP %(status)d: %(message)s") % {
                "status": self.status,
                "message": self.message[:300],
            }
        return f"{self.message[:300]} (Meta error {label})"


def _error_of(response: httpx.Response) -> GraphError:
    try:
        error = response.json().get("error") or {}
    except (ValueError, AttributeError):
        error = {}
    if not isinstance(error, dict):
        error = {}
    code = error.get("code") if isinstance(error.get("code"), int) else None
    subcode = error.get("error_subcode") if isinstance(error.get("error_subcode"), int) else None
    # error_data is an object on most errors, a JSON string on some.
    error_data = error.get("error_data")
    details = error_data.get("details") if isinstance(error_data, dict) else ""
    message = str(error.get("message") or response.text[:300] or response.reason_phrase)
    if details and isinstance(details, str):
        message = f"{message}: {details}"
    transient = (
        http.is_transient_status(response.status_code)
        or code in TRANSIENT_CODES
        or error.get("is_transient") is True
    )
    return GraphError(
        response.status_code,
        code,
        subcode,
        message,
        transient,
        http.retry_after_seconds(response) if transient else None,
    )


class Graph:
    """One token's view of the Graph API (a page token, a system user's token)."""

    def __init__(self, token: str, *, timeout: float | None = None) -> None:
        self.token = token
        self.timeout = timeout

    @staticmethod
    def url(path: str) -> str:
        base = settings.LOKET_META_GRAPH_URL.rstrip("/")
        return f"{base}/{settings.LOKET_META_GRAPH_VERSION}/{path.lstrip('/')}"

    def request(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        """The decoded JSON answer; GraphError for an error answer; httpx.HTTPError when Meta
        cannot be reached."""
        headers = {"Authorization": f"Bearer {self.token}", **kwargs.pop("headers", {})}
        with http.client(**({"timeout": self.timeout} if self.timeout else {})) as client:
            response = client.request(method, self.url(path), headers=headers, **kwargs)
        if response.status_code >= 400:
            raise _error_of(response)
        try:
            answer = response.json()
        except ValueError:
            raise GraphError(response.status_code, None, None, "not JSON", True) from None
        return answer if isinstance(answer, dict) else {"data": answer}

    def get(self, path: str, **params: Any) -> dict[str, Any]:
        return self.request("GET", path, params=params)

    def post(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        return self.request("POST", path, json=payload)


def sending(call):
    """Run a Graph call for the outbound path: errors become Transient/PermanentSendError."""
    try:
        return call()
    except GraphError as exc:
        if exc.transient:
            raise TransientSendError(exc.plain(), exc.retry_after) from exc
        raise PermanentSendError(exc.plain()) from exc
    except http.BlockedAddress as exc:
        raise PermanentSendError(str(exc)) from exc
    except httpx.HTTPError as exc:
        raise TransientSendError(_("could not reach Meta: %(error)s") % {"error": exc}) from exc


def fetching(call):
    """Run a Graph call that fetches something (a media file's location, a profile): errors
    become MediaUnavailable (a ProviderUnavailable), transient when worth asking again."""
    try:
        return call()
    except GraphError as exc:
        raise MediaUnavailable(
            exc.plain(), transient=exc.transient, retry_after=exc.retry_after
        ) from exc
    except http.BlockedAddress as exc:
        raise MediaUnavailable(str(exc)) from exc
    except httpx.HTTPError as exc:
        raise MediaUnavailable(f"could not reach Meta: {exc}", transient=True) from exc


def checking(call):
    """Run a Graph call for a connection check: errors become InvalidConfig in plain words."""
    try:
        return call()
    except GraphError as exc:
        raise InvalidConfig(exc.plain()) from exc
    except httpx.HTTPError as exc:
        raise InvalidConfig(_("could not reach Meta: %(error)s") % {"error": exc}) from exc
