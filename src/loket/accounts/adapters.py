"""allauth adapters: closed signup, and TOTP secrets encrypted at rest."""

from __future__ import annotations

import time

from allauth.account import app_settings as account_settings
from allauth.account.adapter import DefaultAccountAdapter
from allauth.account.internal.flows.login import get_authentication_records
from allauth.core import context
from allauth.mfa.adapter import DefaultMFAAdapter

from loket import crypto

# The HKDF purpose: a key of its own for allauth.mfa's secrets (TOTP seeds, recovery-code seeds).
MFA_KEY_PURPOSE = "mfa"


def signed_in_with_password_recently(request) -> bool:
    """The password (or a second factor) was given in this session within allauth's
    re-authentication timeout (5 minutes)."""
    if request is None or not request.user.is_authenticated:
        return False
    cutoff = time.time() - account_settings.REAUTHENTICATION_TIMEOUT
    return any(
        record.get("method") in ("password", "mfa") and record.get("at", 0) >= cutoff
        for record in get_authentication_records(request, request.user)
    )


class AccountAdapter(DefaultAccountAdapter):
    def is_open_for_signup(self, request) -> bool:
        """No open signup: accounts come from invitations and ``loket createadmin``."""
        return False

    def _get_login_attempts_cache_key(self, request, **credentials) -> str:
        # allauth counts failed sign-ins per "host:email"; any host in ALLOWED_HOSTS would then
        # get its own five tries. The account alone is the key.
        return (credentials.get("email") or credentials.get("username") or "").lower()

    def is_reauthentication_required(self, *, app: str, **kwargs) -> bool:
        # allauth counts only an explicit "confirm your password"; having signed in with it a
        # moment ago proves as much, and someone sent to set up 2FA right after signing in
        # would otherwise type the password twice.
        if not super().is_reauthentication_required(app=app, **kwargs):
            return False
        return not signed_in_with_password_recently(context.request)


class MFAAdapter(DefaultMFAAdapter):
    def encrypt(self, text: str) -> str:
        return crypto.encrypt(text.encode(), MFA_KEY_PURPOSE)

    def decrypt(self, encrypted_text: str) -> str:
        return crypto.decrypt(encrypted_text, MFA_KEY_PURPOSE).decode()
