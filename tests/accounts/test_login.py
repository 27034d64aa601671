"""Email + password sign-in, sign-out, password reset and change, closed signup, throttling."""

from __future__ import annotations

import pytest
from django.core import mail

from tests import factories
from tests.accounts.helpers import (
    PASSWORD,
    links_in_last_mail,
    path_of,
    sign_in,
    signed_in_user_id,
)


@pytest.fixture
def person(db):
    return factories.user("kim@example.com", name="Kim")


def test_the_login_page_is_the_styled_one_without_a_signup_link(client, db):
    response = client.get("/accounts/login/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "accounts/auth.css" in page
    assert '<html lang="en">' in page
    assert 'for="id_login"' in page and 'for="id_password"' in page  # labelled fields
    assert "/accounts/signup/" not in page
    assert "/accounts/password/reset/" in page


def test_signing_in_with_email_and_password(client, person):
    response = sign_in(client, "Kim@Example.com")
    assert response.status_code == 302
    assert signed_in_user_id(client) == str(person.pk)


def test_a_wrong_password_says_so_and_signs_nobody_in(client, person):
    response = sign_in(client, "kim@example.com", "not-the-password")
    assert response.status_code == 200
    assert "not correct" in response.content.decode()
    assert signed_in_user_id(client) is None


def test_signing_out(client, person):
    sign_in(client, "kim@example.com")
    response = client.post("/accounts/logout/")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/"
    assert signed_in_user_id(client) is None


def test_there_is_no_open_signup(client, db):
    response = client.get("/accounts/signup/")
    assert "Sign Up Closed" in response.content.decode()
    response = client.post(
        "/accounts/signup/",
        {"email": "new@example.com", "password1": "Xy7!long-pass", "password2": "Xy7!long-pass"},
    )
    from loket.tenancy.models import User

    assert not User.objects.filter(email="new@example.com").exists()


def test_people_cannot_change_their_login_address_themselves(client, person):
    sign_in(client, "kim@example.com")
    assert client.get("/accounts/email/").status_code == 404


def test_password_reset_by_email_link(client, person):
    response = client.post("/accounts/password/reset/", {"email": "kim@example.com"})
    assert response.status_code == 302
    assert mail.outbox[-1].to == ["kim@example.com"]
    [link] = [url for url in links_in_last_mail() if "/password/reset/key/" in url]

    response = client.get(path_of(link))  # allauth moves the key into the session
    assert response.status_code == 302
    form_url = response["Location"]
    response = client.post(
        form_url, {"password1": "a-New-passw0rd!", "password2": "a-New-passw0rd!"}
    )
    assert response.status_code == 302
    assert signed_in_user_id(client) is None  # a reset does not sign in by itself

    assert sign_in(client, "kim@example.com", PASSWORD).status_code == 200  # the old one is gone
    assert sign_in(client, "kim@example.com", "a-New-passw0rd!").status_code == 302
    assert signed_in_user_id(client) == str(person.pk)


def test_password_reset_for_an_unknown_address_sends_nothing(client, db):
    response = client.post("/accounts/password/reset/", {"email": "nobody@example.com"})
    assert response.status_code == 302  # the same answer, so addresses cannot be probed
    assert mail.outbox == []


def test_password_change(client, person):
    sign_in(client, "kim@example.com")
    page = client.get("/accounts/password/change/")
    assert page.status_code == 200
    response = client.post(
        "/accounts/password/change/",
        {"oldpassword": PASSWORD, "password1": "an0ther-Passw0rd", "password2": "an0ther-Passw0rd"},
    )
    assert response.status_code == 302
    person.refresh_from_db()
    assert person.check_password("an0ther-Passw0rd")
    assert signed_in_user_id(client) == str(person.pk)  # still signed in


def test_the_sixth_wrong_password_locks_the_account_even_with_the_right_one(client, person):
    for _ in range(5):
        response = sign_in(client, "kim@example.com", "wrong-password")
        assert "not correct" in response.content.decode()
    response = sign_in(client, "kim@example.com", PASSWORD)
    assert response.status_code == 200
    assert "Too many failed login attempts" in response.content.decode()
    assert signed_in_user_id(client) is None


def test_the_lock_is_per_account_and_successes_do_not_count(client, person):
    other = factories.user("lee@example.com")
    for _ in range(4):
        sign_in(client, "kim@example.com", "wrong-password")
    for _ in range(3):  # successful sign-ins give back their attempt
        assert sign_in(client, "kim@example.com").status_code == 302
        client.post("/accounts/logout/")
    assert sign_in(client, "kim@example.com").status_code == 302  # the 5th attempt still allowed
    client.post("/accounts/logout/")
    assert sign_in(client, "lee@example.com").status_code == 302
    assert signed_in_user_id(client) == str(other.pk)


def test_the_lock_does_not_depend_on_the_host_name_used(client, person):
    for _ in range(5):
        sign_in(client, "kim@example.com", "wrong-password", HTTP_HOST="localhost")
    response = client.post(
        "/accounts/login/",
        {"login": "kim@example.com", "password": PASSWORD},
        HTTP_HOST="127.0.0.1",
    )
    assert "Too many failed login attempts" in response.content.decode()
