"""Helpers of the account tests: signing in through the real forms, TOTP codes, mail links."""

from __future__ import annotations

import re
import time

from allauth.mfa.recovery_codes.internal.auth import RecoveryCodes
from allauth.mfa.totp.internal.auth import TOTP, format_hotp_value, generate_totp_secret, hotp_value
from django.core import mail

PASSWORD = "pw-for-tests-1"  # tests.factories.user's


def totp_code(secret: str) -> str:
    """The current RFC 6238 code of ``secret``; waits out the last second of a 30 s step so the
    code is still current when the server checks it."""
    if 30 - time.time() % 30 < 1:
        time.sleep(1.1)
    return format_hotp_value(hotp_value(secret, int(time.time()) // 30))


def enable_totp(user) -> tuple[str, list[str]]:
    """Gives ``user`` an authenticator app and recovery codes, the way allauth's setup stores
    them; returns the TOTP secret and the recovery codes."""
    secret = generate_totp_secret()
    TOTP.activate(user, secret)
    codes = RecoveryCodes.activate(user).generate_codes()
    return secret, codes


def sign_in(client, email: str, password: str = PASSWORD, **fields):
    """POST the sign-in form; ``HTTP_*`` keywords are request headers, the rest form fields."""
    headers = {key: fields.pop(key) for key in list(fields) if key.startswith("HTTP_")}
    return client.post(
        "/accounts/login/", {"login": email, "password": password, **fields}, **headers
    )


def signed_in_user_id(client) -> str | None:
    return client.session.get("_auth_user_id")


def links_in_last_mail() -> list[str]:
    assert mail.outbox, "no email was sent"
    return re.findall(r"https?://\S+", mail.outbox[-1].body)


def path_of(url: str) -> str:
    return re.sub(r"^https?://[^/]+", "", url)
