"""TOTP two-factor authentication with recovery codes (allauth.mfa), secrets encrypted at rest."""

from __future__ import annotations

import json

import pytest
from allauth.mfa.models import Authenticator
from django.db import connection

from loket import crypto
from loket.accounts.adapters import MFA_KEY_PURPOSE
from tests import factories
from tests.accounts.helpers import enable_totp, sign_in, signed_in_user_id, totp_code


@pytest.fixture
def person(db):
    return factories.user("kim@example.com", name="Kim")


def _raw_authenticator_data(user, kind: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT data FROM mfa_authenticator WHERE user_id = %s AND type = %s", [user.pk, kind]
        )
        [(data,)] = cursor.fetchall()
    return data if isinstance(data, str) else json.dumps(data)


def test_enabling_an_authenticator_app(client, person):
    sign_in(client, "kim@example.com")
    page = client.get("/accounts/2fa/totp/activate/")
    assert page.status_code == 200
    secret = client.session["mfa.totp.secret"]
    html = page.content.decode()
    assert secret in html  # for typing in by hand
    assert "data:image/svg+xml;base64," in html  # the QR code

    wrong = client.post("/accounts/2fa/totp/activate/", {"code": "000000"})
    assert wrong.status_code == 200
    assert "Incorrect code" in wrong.content.decode()
    assert not Authenticator.objects.filter(user=person).exists()

    response = client.post("/accounts/2fa/totp/activate/", {"code": totp_code(secret)})
    assert response.status_code == 302
    assert response["Location"] == "/accounts/2fa/recovery-codes/"  # shown once set up
    assert Authenticator.objects.filter(user=person, type=Authenticator.Type.TOTP).exists()
    codes_page = client.get("/accounts/2fa/recovery-codes/").content.decode()
    recovery = Authenticator.objects.get(user=person, type=Authenticator.Type.RECOVERY_CODES)
    codes = recovery.wrap().get_unused_codes()
    assert len(codes) == 10 and all(code in codes_page for code in codes)

    # Stored encrypted: the raw row has no secret in it, a Fernet token that opens to it does.
    raw = _raw_authenticator_data(person, "totp")
    assert secret not in raw
    stored = json.loads(raw)["secret"]
    assert crypto.decrypt(stored, MFA_KEY_PURPOSE).decode() == secret
    recovery_seed = json.loads(_raw_authenticator_data(person, "recovery_codes"))["seed"]
    assert crypto.decrypt(recovery_seed, MFA_KEY_PURPOSE)  # the recovery seed as well


def test_signing_in_with_a_totp_code(client, person):
    secret, _ = enable_totp(person)
    response = sign_in(client, "kim@example.com")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/2fa/authenticate/"
    assert signed_in_user_id(client) is None  # the password alone is not enough

    page = client.get("/accounts/2fa/authenticate/")
    assert 'autocomplete="one-time-code"' in page.content.decode()
    wrong = client.post("/accounts/2fa/authenticate/", {"code": "123456"})
    assert "Incorrect code" in wrong.content.decode()
    assert signed_in_user_id(client) is None

    response = client.post("/accounts/2fa/authenticate/", {"code": totp_code(secret)})
    assert response.status_code == 302
    assert signed_in_user_id(client) == str(person.pk)


def test_a_totp_code_works_once(client, person):
    secret, _ = enable_totp(person)
    code = totp_code(secret)
    sign_in(client, "kim@example.com")
    client.post("/accounts/2fa/authenticate/", {"code": code})
    assert signed_in_user_id(client) == str(person.pk)
    client.post("/accounts/logout/")
    sign_in(client, "kim@example.com")
    response = client.post("/accounts/2fa/authenticate/", {"code": code})  # replayed
    assert "Incorrect code" in response.content.decode()
    assert signed_in_user_id(client) is None


def test_signing_in_with_a_recovery_code_uses_it_up(client, person):
    _, codes = enable_totp(person)
    sign_in(client, "kim@example.com")
    response = client.post("/accounts/2fa/authenticate/", {"code": codes[3]})
    assert response.status_code == 302
    assert signed_in_user_id(client) == str(person.pk)
    recovery = Authenticator.objects.get(user=person, type=Authenticator.Type.RECOVERY_CODES)
    assert codes[3] not in recovery.wrap().get_unused_codes()
    assert len(recovery.wrap().get_unused_codes()) == 9

    client.post("/accounts/logout/")
    sign_in(client, "kim@example.com")
    response = client.post("/accounts/2fa/authenticate/", {"code": codes[3]})
    assert "Incorrect code" in response.content.decode()
    assert signed_in_user_id(client) is None
    client.post("/accounts/2fa/authenticate/", {"code": codes[4]})  # another one still works
    assert signed_in_user_id(client) == str(person.pk)


def test_deactivating_the_authenticator_app(client, person):
    secret, _ = enable_totp(person)
    sign_in(client, "kim@example.com")
    client.post("/accounts/2fa/authenticate/", {"code": totp_code(secret)})
    index = client.get("/accounts/2fa/")
    assert index.status_code == 200
    assert "/accounts/2fa/totp/deactivate/" in index.content.decode()
    response = client.post("/accounts/2fa/totp/deactivate/")
    assert response.status_code == 302
    assert not Authenticator.objects.filter(user=person, type=Authenticator.Type.TOTP).exists()


def test_guessing_codes_is_throttled_too(client, person):
    secret, _ = enable_totp(person)
    sign_in(client, "kim@example.com")
    for _ in range(5):
        client.post("/accounts/2fa/authenticate/", {"code": "000000"})
    response = client.post("/accounts/2fa/authenticate/", {"code": totp_code(secret)})
    assert "Too many failed login attempts" in response.content.decode()
    assert signed_in_user_id(client) is None
