"""A help center on its own domain: host routing, canonical URLs, and the host check."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from loket.knowledge.models import HelpCenter, validate_custom_domain
from tests import factories

pytestmark = pytest.mark.django_db

DOMAIN = "help.acme.test"


@pytest.fixture
def on_domain(help_center, settings):
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, DOMAIN]
    help_center.custom_domain = "Help.Acme.TEST."
    help_center.save()
    assert help_center.custom_domain == DOMAIN  # stored lower-case, without the final dot
    return help_center


def test_pages_on_the_custom_domain(client, on_domain, change_booking):
    response = client.get("/en/a/change-booking/", HTTP_HOST=DOMAIN)
    assert response.status_code == 200
    html = response.content.decode()
    assert f'<link rel="canonical" href="http://{DOMAIN}/en/a/change-booking/">' in html
    assert f'hreflang="nl" href="http://{DOMAIN}/nl/a/boeking-wijzigen/"' in html
    assert 'href="/nl/a/boeking-wijzigen/" hreflang="nl"' in html  # the switcher, same host
    assert 'href="/brand.css?v=' in html
    assert client.get("/brand.css", HTTP_HOST=DOMAIN).content == b":root{--hc-brand:#aa3300;}\n"
    assert client.get("/static/helpcenter/helpcenter.css", HTTP_HOST=DOMAIN).status_code == 200
    root = client.get("/", HTTP_HOST=DOMAIN, HTTP_ACCEPT_LANGUAGE="nl")
    assert root.status_code == 302 and root["Location"] == "/nl/"
    vote = client.post("/en/a/change-booking/vote/", {"helpful": "yes"}, HTTP_HOST=DOMAIN)
    assert vote.status_code == 303 and vote.cookies["loket_hc_visitor"]["path"] == "/"

    # Loket's own pages do not answer on a customer's domain.
    assert client.get("/accounts/login/", HTTP_HOST=DOMAIN).status_code == 404
    assert client.get("/help/acme/en/", HTTP_HOST=DOMAIN).status_code == 404
    assert client.get("/static/loket/app.js", HTTP_HOST=DOMAIN).status_code == 404
    # On Loket's host the pages stay, with the custom domain as their canonical address.
    html = client.get("/help/acme/en/a/change-booking/").content.decode()
    assert f'<link rel="canonical" href="http://{DOMAIN}/en/a/change-booking/">' in html
    assert client.get("/accounts/login/").status_code == 200


def test_a_disabled_help_center_is_404_on_its_domain(client, on_domain, change_booking):
    on_domain.enabled = False
    on_domain.save()
    assert client.get("/en/a/change-booking/", HTTP_HOST=DOMAIN).status_code == 404
    assert client.get("/", HTTP_HOST=DOMAIN).status_code == 404
    assert client.get("/accounts/login/", HTTP_HOST=DOMAIN).status_code == 404


def test_another_workspaces_domain_shows_its_own_articles_only(client, on_domain, settings):
    other = factories.workspace("globex")
    HelpCenter.objects.create(workspace=other, enabled=True, custom_domain="help.globex.test")
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "help.globex.test"]
    from tests.helpcenter.conftest import make_article

    make_article(other, {"en": ("globex-only", "Globex only", "x")})
    assert client.get("/en/a/globex-only/", HTTP_HOST="help.globex.test").status_code == 200
    assert client.get("/en/a/globex-only/", HTTP_HOST=DOMAIN).status_code == 404


def test_a_host_not_admitted_is_refused(client, help_center, settings):
    help_center.custom_domain = "help.unlisted.test"
    help_center.save()
    assert client.get("/en/", HTTP_HOST="help.unlisted.test").status_code == 400


@pytest.mark.parametrize(
    "value",
    ["https://help.example.com", "help.example.com:8443", "localhost", "10.0.0.1",
     "help.example.com/path", "Help.Example.com", "-bad.example.com", "a..example.com",
     "é.example"],
)  # fmt: skip
def test_custom_domain_validation_refuses(value):
    with pytest.raises(ValidationError):
        validate_custom_domain(value)


def test_custom_domain_validation_accepts():
    validate_custom_domain("help.example.com")
    validate_custom_domain("support.shop-1.example.co.uk")
