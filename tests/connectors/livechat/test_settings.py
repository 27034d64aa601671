"""Adding a live chat in the settings: the snippet and the identity secret shown once; editing
its look and its allowed websites; the iframe only in those websites (frame-ancestors)."""

from __future__ import annotations

import re

import pytest
from django import forms as forms_module

from loket.inbox.models import Channel
from tests.workspace_settings.conftest import signed_in, url

pytestmark = pytest.mark.django_db

FORM = {
    "kind": "livechat",
    "name": "Website",
    "title": "Shop support",
    "greeting": "Hi there",
    "color": "#aa3300",
    "position": "left",
    "allowed_origins": "https://www.shop.example",
    "reply_time": "within minutes",
    "branding": "on",
}


def test_an_admin_adds_a_live_chat_and_gets_its_snippet_and_secret_once(owner, workspace, settings):
    settings.LOKET_PUBLIC_URL = "https://help.example.com"
    client = signed_in(owner)
    response = client.post(url("channels", workspace), FORM)
    assert response.status_code == 200, response.content.decode()[:1500]
    html = response.content.decode()
    channel = Channel.objects.get(workspace=workspace, kind="livechat")
    snippet = f"https://help.example.com/widget/{channel.uuid}.js"
    assert snippet in html
    secret = re.search(r'id="signing-secret"[^>]*>([0-9a-f]{64})<', html).group(1)
    assert channel.secrets["identity_secret"] == secret
    assert channel.settings["color"] == "#aa3300" and channel.settings["position"] == "left"
    edit = client.get(url("channel-edit", workspace, channel.pk)).content.decode()
    assert snippet in edit and secret not in edit

    changed = {**FORM, "allowed_origins": "https://shop.example, https://www.shop.example"}
    assert client.post(url("channel-edit", workspace, channel.pk), changed).status_code == 302
    channel.refresh_from_db()
    assert channel.settings["allowed_origins"] == [
        "https://shop.example",
        "https://www.shop.example",
    ]
    bad = client.post(url("channel-edit", workspace, channel.pk), {**FORM, "allowed_origins": "x"})
    assert bad.status_code == 400 and "is not an origin" in bad.content.decode()


def test_the_frame_may_only_be_embedded_by_the_allowed_websites(owner, workspace, client):
    signed_in(owner).post(url("channels", workspace), FORM)
    channel = Channel.objects.get(workspace=workspace, kind="livechat")
    frame = client.get(f"/widget/{channel.uuid}/frame/")
    assert frame.status_code == 200
    csp = frame["Content-Security-Policy"]
    assert "frame-ancestors https://www.shop.example" in csp and "script-src 'self'" in csp
    assert "X-Frame-Options" not in frame


def test_the_continuity_mailbox_is_chosen_from_the_workspaces_email_channels(owner, workspace):
    from tests import factories

    mailbox = factories.email_channel(workspace, name="Support mail")
    client = signed_in(owner)
    page = client.get(url("channels", workspace)).content.decode()
    assert f'value="{mailbox.uuid}"' in page and "Support mail" in page
    client.post(url("channels", workspace), {**FORM, "continuity_email_channel": str(mailbox.uuid)})
    channel = Channel.objects.get(workspace=workspace, kind="livechat")
    assert channel.settings["continuity_email_channel"] == str(mailbox.uuid)
    other = factories.email_channel(factories.workspace("other"), name="Theirs")
    refused = client.post(
        url("channel-edit", workspace, channel.pk),
        {**FORM, "continuity_email_channel": str(other.uuid)},
    )
    assert refused.status_code == 400  # not a choice: another workspace's mailbox


def test_proactive_messages_are_set_in_the_settings(owner, workspace):
    client = signed_in(owner)
    form = {
        **FORM,
        "proactive_0_message": "Need help choosing shoes?",
        "proactive_0_nl": "Hulp nodig bij het kiezen?",
        "proactive_0_url_contains": "/shoes",
        "proactive_0_seconds_on_page": "20",
        "proactive_0_business_hours_only": "on",
    }
    client.post(url("channels", workspace), form)
    channel = Channel.objects.get(workspace=workspace, kind="livechat")
    assert channel.settings["proactive"] == [
        {
            "message": "Need help choosing shoes?",
            "url_contains": "/shoes",
            "seconds_on_page": 20,
            "returning_only": False,
            "business_hours_only": True,
            "texts": {"nl": "Hulp nodig bij het kiezen?"},
        }
    ]
    edit = client.get(url("channel-edit", workspace, channel.pk)).content.decode()
    assert 'value="Need help choosing shoes?"' in edit
    cleared = {**form, "proactive_0_message": ""}
    assert client.post(url("channel-edit", workspace, channel.pk), cleared).status_code == 302
    channel.refresh_from_db()
    assert channel.settings["proactive"] == []


def test_the_widget_texts_are_edited_per_language(owner, workspace):
    client = signed_in(owner)
    client.post(
        url("channels", workspace),
        {**FORM, "text_nl_greeting": "Hoi! Vraag maar raak.", "text_en_placeholder": "Ask away…"},
    )
    channel = Channel.objects.get(workspace=workspace, kind="livechat")
    assert channel.settings["texts"] == {
        "nl": {"greeting": "Hoi! Vraag maar raak."},
        "en": {"placeholder": "Ask away…"},
    }
    from loket.connectors.livechat import widget

    assert widget.config(channel, "nl")["texts"]["greeting"] == "Hoi! Vraag maar raak."
    assert widget.config(channel, "en")["texts"]["placeholder"] == "Ask away…"


def test_team_photos_are_uploaded_shown_to_the_widget_and_removed(owner, workspace, client):
    import base64

    from django.core.files.uploadedfile import SimpleUploadedFile

    png = base64.b64decode(
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
    )
    admin = signed_in(owner)
    admin.post(url("channels", workspace), FORM)
    channel = Channel.objects.get(workspace=workspace, kind="livechat")
    edit = url("channel-edit", workspace, channel.pk)
    not_image = admin.post(
        edit, {**FORM, "team_photos": SimpleUploadedFile("x.png", b"<svg/>", "image/png")}
    )
    assert not_image.status_code == 400 and "PNG, JPEG, WebP or GIF" in not_image.content.decode()
    saved = admin.post(edit, {**FORM, "team_photos": SimpleUploadedFile("a.png", png, "image/png")})
    assert saved.status_code == 302
    channel.refresh_from_db()
    assert len(channel.settings["team_photos"]) == 1
    session = client.post(
        f"/widget/{channel.uuid}/api/session", "{}", content_type="application/json"
    ).json()
    [photo_url] = session["config"]["team_photos"]
    photo = client.get(photo_url)
    assert photo.status_code == 200 and photo["Content-Type"] == "image/png"
    assert photo.content == png
    admin.post(edit, {**FORM, "clear_team_photos": "on"})
    channel.refresh_from_db()
    assert channel.settings["team_photos"] == []
    assert client.get(photo_url).status_code == 404


def test_an_agents_photo_is_shown_to_visitors_next_to_their_replies(owner, workspace, client):
    import base64

    from django.core.files.uploadedfile import SimpleUploadedFile

    from loket.connectors.livechat import widget
    from loket.inbox.models import Conversation, Message
    from loket.inbox.services import outbound

    png = base64.b64decode(
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
    )
    agent = signed_in(owner)
    bad = agent.post(
        "/w/acme/me/",
        {"photo": SimpleUploadedFile("x.png", b"BM6\x00\x00\x00", "image/png")},
        follow=True,
    )
    assert "PNG, JPEG, WebP or GIF" in bad.content.decode()
    agent.post("/w/acme/me/", {"photo": SimpleUploadedFile("me.png", png, "image/png")})
    owner.user.refresh_from_db()
    assert owner.user.preferences["photo"].startswith(f"avatars/{owner.user.pk}/")

    signed_in(owner).post(url("channels", workspace), FORM)
    channel = Channel.objects.get(workspace=workspace, kind="livechat")
    token, visitor = widget.start_session(channel)
    shown = widget.post_message(channel, visitor, client_id="c-1", text="Hi", page=None, ip="1")
    conversation = Conversation.objects.get(pk=Message.objects.get(pk=shown["id"]).conversation_id)
    outbound.reply(conversation, author=owner, text="Hello, Anna here")
    history = client.post(
        f"/widget/{channel.uuid}/api/session",
        f'{{"token": "{token}"}}',
        content_type="application/json",
    ).json()["messages"]
    avatar = history[-1]["author"]["avatar_url"]
    photo = client.get(avatar)
    assert photo.status_code == 200 and photo.content == png
    agent.post("/w/acme/me/", {"remove_photo": "1"})
    assert client.get(avatar).status_code == 404


PRECHAT_FORM = {
    **FORM,
    "prechat_enabled": "on",
    "prechat_name": "on",
    "prechat_name_required": "on",
    "prechat_name_label": "Your name",
    "prechat_email": "on",
    "prechat_email_label": "",  # empty: the default label
    "prechat_phone_label": "Phone",
    "prechat_custom_0_label": "Order number",
    "prechat_custom_0_name": "",  # empty: made from the question
    "prechat_custom_0_type": "text",
    "prechat_custom_0_required": "on",
    "prechat_custom_1_label": "Callback number",
    "prechat_custom_1_name": "callback",
    "prechat_custom_1_type": "tel",
    "prechat_custom_2_type": "text",
}
PRECHAT = {
    "enabled": True,
    "fields": [
        {"name": "name", "label": "Your name", "type": "text", "required": True},
        {"name": "email", "label": "Email", "type": "email", "required": False},
        {"name": "order_number", "label": "Order number", "type": "text", "required": True},
        {"name": "callback", "label": "Callback number", "type": "tel", "required": False},
    ],
}


def test_the_prechat_form_is_set_in_the_settings(owner, workspace):
    from loket.connectors.livechat import widget

    client = signed_in(owner)
    client.post(url("channels", workspace), PRECHAT_FORM)
    channel = Channel.objects.get(workspace=workspace, kind="livechat")
    assert channel.settings["prechat"] == PRECHAT
    assert widget.config(channel, "en")["prechat"] == PRECHAT  # what the visitor's widget gets

    edit = url("channel-edit", workspace, channel.pk)
    page = client.get(edit).content.decode()
    for name in ("prechat_enabled", "prechat_name", "prechat_name_required", "prechat_email"):
        assert re.search(rf'<input type="checkbox" name="{name}"[^>]* checked', page), name
    for name in ("prechat_email_required", "prechat_phone", "prechat_custom_1_required"):
        assert not re.search(rf'<input type="checkbox" name="{name}"[^>]* checked', page), name
    for value in ("Your name", "Order number", "order_number", "Callback number", "callback"):
        assert f'value="{value}"' in page, value
    assert re.search(r'<option value="tel" selected>', page)  # the callback question's type

    # Asking for the phone number too, and dropping the order number.
    changed = {
        **PRECHAT_FORM,
        "prechat_phone": "on",
        "prechat_custom_0_label": "",
        "prechat_custom_0_name": "",
    }
    assert client.post(edit, changed).status_code == 302
    channel.refresh_from_db()
    assert [(f["name"], f["label"], f["type"]) for f in channel.settings["prechat"]["fields"]] == [
        ("name", "Your name", "text"),
        ("email", "Email", "email"),
        ("phone", "Phone", "tel"),
        ("callback", "Callback number", "tel"),
    ]
    off = {k: v for k, v in changed.items() if k != "prechat_enabled"}
    assert client.post(edit, off).status_code == 302
    channel.refresh_from_db()
    assert channel.settings["prechat"]["enabled"] is False
    assert len(channel.settings["prechat"]["fields"]) == 4  # kept for when it is switched on


def test_a_bad_prechat_key_is_shown_at_its_row_and_nothing_typed_is_lost(owner, workspace):
    client = signed_in(owner)
    client.post(url("channels", workspace), PRECHAT_FORM)
    channel = Channel.objects.get(workspace=workspace, kind="livechat")
    before = dict(channel.settings)
    edit = url("channel-edit", workspace, channel.pk)
    bad = {
        **PRECHAT_FORM,
        "greeting": "Hello again",
        "prechat_custom_1_name": "Call Back!",
        "prechat_custom_2_label": "Shoe size",
        "prechat_custom_2_name": "shoe_size",
    }
    response = client.post(edit, bad)
    assert response.status_code == 400
    page = response.content.decode()
    # The error is under that row's key field (the connector's own check refused it) …
    key_field = page.index('name="prechat_custom_1_name"')
    error = page.index("cannot be a key", key_field)
    assert error < page.index('name="prechat_custom_1_type"')
    assert "“Call Back!” cannot be a key" in page
    # … everything typed is still in the form, and nothing was saved.
    for value in ("Hello again", "Call Back!", "Shoe size", "shoe_size", "Your name"):
        assert f'value="{value}"' in page, value
    channel.refresh_from_db()
    assert channel.settings == before

    # A question made into a bad key (a digit first) is refused the same way.
    digit = client.post(edit, {**PRECHAT_FORM, "prechat_custom_2_label": "2nd phone"})
    assert digit.status_code == 400
    assert "“2nd_phone” cannot be a key" in digit.content.decode()


def test_prechat_fields_set_through_the_api_survive_a_save_of_the_settings_page(owner, workspace):
    """Labels of name/email/phone and custom fields beyond the page's rows are kept."""
    from loket.connectors.registry import get_connector
    from loket.inbox.services.channels import create_channel
    from loket.web.workspace_settings.forms import LiveChatChannelForm

    prechat = {
        "enabled": True,
        "fields": [
            {"name": "email", "label": "E-mailadres", "type": "email", "required": True},
            *(
                {"name": f"q{n}", "label": f"Question {n}", "type": "text", "required": n == 4}
                for n in range(1, 6)
            ),
        ],
    }
    channel, _ = create_channel(
        workspace, get_connector("livechat"), name="Website", config={"prechat": prechat}
    )
    form = LiveChatChannelForm(workspace, initial_config=channel.settings)
    assert form["prechat_email_label"].value() == "E-mailadres"
    assert form["prechat_custom_2_name"].value() == "q3"
    # The page as it is, posted back unchanged.
    posted = {"name": "Website"}
    for name, field in form.fields.items():
        value = form[name].value()
        if name in ("team_photos", "clear_team_photos", "default_team") or value in (None, ""):
            continue
        if isinstance(field, forms_module.BooleanField):
            if value:
                posted[name] = "on"
        else:
            posted[name] = value
    client = signed_in(owner)
    response = client.post(url("channel-edit", workspace, channel.pk), posted)
    assert response.status_code == 302, response.content.decode()[:3000]
    channel.refresh_from_db()
    assert channel.settings["prechat"] == prechat


def test_the_emoji_pickers_label_is_a_widget_text_per_language(workspace):
    from loket.connectors.livechat import widget
    from loket.connectors.registry import get_connector
    from loket.inbox.services.channels import create_channel

    channel, _ = create_channel(
        workspace,
        get_connector("livechat"),
        name="Website",
        config={"texts": {"nl": {"emoji": "Kies een emoji"}}},
    )
    assert widget.config(channel, "en")["texts"]["emoji"] == "Insert an emoji"
    assert widget.config(channel, "nl")["texts"]["emoji"] == "Kies een emoji"
