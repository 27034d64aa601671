"""Settings → Help center: admins switch the public help center on (its pages then answer), set
titles per language, languages, brand and a custom domain (validated as the model does, saved
lower-case, refused when another workspace has it); agents cannot reach the page, and one
workspace's settings never touch another's."""

from __future__ import annotations

import pytest
from django.test import Client

from loket.knowledge.models import HelpCenter
from tests.workspace_settings.conftest import url


def fields(**extra) -> dict:
    return {
        "enabled": "on",
        "title_en": "Acme help",
        "title_nl": "Acme hulp",
        "default_locale": "en",
        "locales": ["en", "nl"],
        "brand_color": "#0b6e4f",
        "logo_url": "",
        "custom_domain": "",
        **extra,
    }


def test_agents_may_not_see_or_change_it(agent_client, workspace):
    assert agent_client.get(url("help-center", workspace)).status_code == 403
    assert agent_client.post(url("help-center", workspace), fields()).status_code == 403
    assert not HelpCenter.objects.filter(workspace=workspace).exists()


def test_the_nav_links_to_it(admin_client, workspace):
    page = admin_client.get(url("index", workspace)).content.decode()
    assert url("help-center", workspace) in page


def test_switching_it_on_makes_the_help_center_answer(admin_client, workspace, settings):
    assert Client().get("/help/acme/en/").status_code == 404
    page = admin_client.get(url("help-center", workspace))
    assert page.status_code == 200
    assert "The help center is off" in page.content.decode()

    response = admin_client.post(url("help-center", workspace), fields())
    assert response.status_code == 302
    found = HelpCenter.objects.get(workspace=workspace)
    assert found.enabled and found.titles == {"en": "Acme help", "nl": "Acme hulp"}
    assert found.offered_locales == ["en", "nl"] and found.brand_color == "#0b6e4f"

    home = Client().get("/help/acme/en/")
    assert home.status_code == 200
    assert "Acme help" in home.content.decode()
    assert Client().get("/help/acme/nl/").status_code == 200
    shown = admin_client.get(url("help-center", workspace)).content.decode()
    assert f'href="{settings.LOKET_PUBLIC_URL}/help/acme/"' in shown
    assert "Open the help center" in shown

    admin_client.post(url("help-center", workspace), fields(enabled=""))
    assert Client().get("/help/acme/en/").status_code == 404


def test_the_default_locale_is_always_offered(owner_client, workspace):
    owner_client.post(url("help-center", workspace), fields(default_locale="nl", locales=["en"]))
    assert HelpCenter.objects.get(workspace=workspace).offered_locales == ["nl", "en"]


@pytest.mark.parametrize(
    "change, field, message",
    [
        ({"brand_color": "green"}, "brand_color", "Enter a colour such as #1a73e8."),
        ({"logo_url": "http://cdn.example.com/logo.png"}, "logo_url", "https://"),
        ({"logo_url": "not a url at all"}, "logo_url", "Enter a valid URL."),
        ({"custom_domain": "https://help.example.com/x"}, "custom_domain", "help.example.com"),
        ({"custom_domain": "localhost"}, "custom_domain", "help.example.com"),
        ({"custom_domain": "10.0.0.1"}, "custom_domain", "help.example.com"),
        ({"default_locale": "fr"}, "default_locale", "Select a valid choice"),
    ],
)
def test_invalid_values_are_shown_and_nothing_is_saved(
    admin_client, workspace, change, field, message
):
    response = admin_client.post(url("help-center", workspace), fields(**change))
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert list(errors) == [field]
    assert message in str(errors[field])
    assert message.split("“")[0] in response.content.decode().replace("&#x27;", "'")
    assert not HelpCenter.objects.filter(workspace=workspace).exists()


def test_a_custom_domain_is_saved_lower_case_and_the_operator_step_explained(
    admin_client, workspace, settings
):
    settings.ALLOWED_HOSTS = ["testserver"]
    admin_client.post(url("help-center", workspace), fields(custom_domain=" Help.Acme.EXAMPLE. "))
    assert HelpCenter.objects.get(workspace=workspace).custom_domain == "help.acme.example"
    page = admin_client.get(url("help-center", workspace)).content.decode()
    assert "http://help.acme.example/" in page  # the public address is the custom domain
    assert "does not admit help.acme.example yet" in page and "LOKET_ALLOWED_HOSTS" in page

    settings.ALLOWED_HOSTS = ["testserver", ".acme.example"]
    page = admin_client.get(url("help-center", workspace)).content.decode()
    assert "This server admits help.acme.example" in page
    assert Client().get("/", HTTP_HOST="help.acme.example").status_code == 302


def test_another_workspaces_domain_is_refused_and_its_settings_untouched(
    admin_client, workspace, other_workspace
):
    theirs = HelpCenter.objects.create(
        workspace=other_workspace,
        enabled=True,
        titles={"en": "Bravo help"},
        custom_domain="help.bravo.example",
    )
    response = admin_client.post(
        url("help-center", workspace), fields(custom_domain="HELP.bravo.example")
    )
    assert "Another help center already uses this domain." in response.content.decode()
    assert not HelpCenter.objects.filter(workspace=workspace).exists()

    admin_client.post(url("help-center", workspace), fields(title_en="Ours"))
    theirs.refresh_from_db()
    assert theirs.titles == {"en": "Bravo help"} and theirs.custom_domain == "help.bravo.example"
    assert HelpCenter.objects.get(workspace=workspace).titles["en"] == "Ours"
    # Their settings page is not ours to open.
    assert admin_client.get(url("help-center", other_workspace)).status_code == 404
