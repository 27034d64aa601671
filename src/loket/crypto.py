"""Encryption at rest for secrets (channel credentials, TOTP seeds).

Keys are derived per purpose from LOKET_ENCRYPTION_KEY with HKDF, so a key leaked for one purpose
does not open the others. Values are Fernet tokens (AES-128-CBC + HMAC-SHA256).
"""

from __future__ import annotations

import base64
import functools
import json
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.db import models


@functools.lru_cache(maxsize=32)
def _fernet(master: str, purpose: str) -> Fernet:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"loket", info=purpose.encode()).derive(
        master.encode()
    )
    return Fernet(base64.urlsafe_b64encode(key))


@functools.lru_cache(maxsize=32)
def _derived_key(master: str, purpose: str) -> bytes:
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=b"loket-mac", info=purpose.encode()
    ).derive(master.encode())


def derived_key(purpose: str) -> bytes:
    """A 32-byte key for signing (HMAC), derived per purpose like the encryption keys."""
    return _derived_key(settings.LOKET_ENCRYPTION_KEY, purpose)


def encrypt(value: bytes, purpose: str) -> str:
    return _fernet(settings.LOKET_ENCRYPTION_KEY, purpose).encrypt(value).decode()


def decrypt(token: str, purpose: str) -> bytes:
    try:
        return _fernet(settings.LOKET_ENCRYPTION_KEY, purpose).decrypt(token.encode())
    except InvalidToken as exc:
        raise ValueError(
            f"cannot decrypt a {purpose} secret: LOKET_ENCRYPTION_KEY differs from the one "
            "it was stored with"
        ) from exc


class EncryptedJSONField(models.TextField):
    """A JSON object stored encrypted; reads and writes plain dicts."""

    def __init__(self, *args: Any, purpose: str = "", **kwargs: Any) -> None:
        self.purpose = purpose
        kwargs.setdefault("default", dict)
        super().__init__(*args, **kwargs)

    def deconstruct(self):
        name, path, args, kwargs = super().deconstruct()
        kwargs["purpose"] = self.purpose
        return name, path, args, kwargs

    def from_db_value(self, value, expression, connection):
        if value in (None, ""):
            return {}
        return json.loads(decrypt(value, self.purpose))

    def to_python(self, value):
        if isinstance(value, dict):
            return value
        if value in (None, ""):
            return {}
        return json.loads(decrypt(value, self.purpose))

    def get_prep_value(self, value):
        if value is None:
            value = {}
        return encrypt(json.dumps(value, sort_keys=True).encode(), self.purpose)
