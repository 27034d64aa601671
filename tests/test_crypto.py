from __future__ import annotations

import pytest
from django.db import connection

from loket import crypto
from tests import factories


def test_channel_secrets_are_encrypted_at_rest(workspace):
    channel = factories.api_channel(workspace)
    secret = channel.secrets["secret"]
    with connection.cursor() as cursor:
        cursor.execute("SELECT secrets FROM inbox_channel WHERE id = %s", [channel.pk])
        (stored,) = cursor.fetchone()
    assert secret not in stored
    channel.refresh_from_db()
    assert channel.secrets["secret"] == secret


def test_keys_are_derived_per_purpose():
    token = crypto.encrypt(b"seed", "totp")
    assert crypto.decrypt(token, "totp") == b"seed"
    with pytest.raises(ValueError, match="LOKET_ENCRYPTION_KEY"):
        crypto.decrypt(token, "channel-secrets")


def test_a_changed_encryption_key_gives_a_clear_error(settings):
    token = crypto.encrypt(b"x", "channel-secrets")
    settings.LOKET_ENCRYPTION_KEY = "another-key"
    with pytest.raises(ValueError, match="differs"):
        crypto.decrypt(token, "channel-secrets")
