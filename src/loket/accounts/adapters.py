"""allauth adapters: closed signup and TOTP secrets encrypted at rest."""

from __future__ import annotations

from allauth.account.adapter import DefaultAccountAdapter
from allauth.mfa.adapter import DefaultMFAAdapter

from loket import crypto

# The HKDF purpose: a key of its own for allauth.mfa's secrets (TOTP seeds, recovery-code seeds).
MFA_KEY_PURPOSE = "mfa"


class AccountAdapter(DefaultAccountAdapter):
    def is_open_for_signup(self, request) -> bool:
        """No open signup: accounts come from invitations and ``loket createadmin``."""
        return False


class MFAAdapter(DefaultMFAAdapter):
    def encrypt(self, text: str) -> str:
        return crypto.encrypt(text.encode(), MFA_KEY_PURPOSE)

    def decrypt(self, encrypted_text: str) -> str:
        return crypto.decrypt(encrypted_text, MFA_KEY_PURPOSE).decode()
