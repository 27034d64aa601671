"""CSAT surveys (loket.reports.csat): the per-channel setting, the job after resolve (delay,
idempotent, only for the same resolution, not when off), the signed link and its public
page, the activity line every rating writes, the settings page and the channels API."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.test import Client
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from loket.connectors.livechat import widget
from loket.connectors.registry import get_connector
from loket.inbox.models import (
    Conversation,
    ConversationStatus,
    Direction,
    Message,
    MessageKind,
    SatisfactionRating,
)
from loket.inbox.services import satisfaction
from loket.inbox.services.channels import create_channel
from loket.inbox.services.conversations import update_conversation
from loket.reports import csat
from loket.web.inbox.timeline import entry
from tests import factories

pytestmark = pytest.mark.django_db

SEND = csat.send_csat_survey.module_path


@pytest.fixture
def channel(workspace):
    return factories.api_channel(workspace, outbound_url="https://hooks.shop.example/loket")


@pytest.fixture
def conversation(channel):
    result = factories.inbound(channel, "My order is late")
    return Conversation.objects.get(pk=result.conversation_id)


def turn_on(channel, delay=0):
    csat.set_setting(channel, {"enabled": True, "delay_minutes": delay})


def resolve(conversation, owner):
    return update_conversation(conversation, actor=owner, status=ConversationStatus.RESOLVED)


def surveys(conversation):
    return list(
        Message.objects.filter(conversation=conversation, data__has_key="csat_survey").order_by(
            "pk"
        )
    )


def queued(path=SEND):
    return list(DBTaskResult.objects.filter(task_path=path))


def run_queued():
    """Run the enqueued survey jobs now (their delay skipped), as the worker would."""
    for row in queued():
        csat.send_csat_survey.call(*row.args_kwargs["args"])


# -- the setting ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        {"enabled": "yes"},
        {"enabled": True, "delay_minutes": -1},
        {"enabled": True, "delay_minutes": 10081},
        {"enabled": True, "delay_minutes": 1.5},
        {"enabled": True, "delay_minutes": True},
        {"enabled": True, "colour": "red"},
        ["enabled"],
    ],
)
def test_a_wrong_setting_is_refused(value):
    with pytest.raises(ValueError):
        csat.clean_setting(value)


def test_the_setting_defaults_to_off_and_keeps_other_settings(channel):
    assert csat.setting_of(channel) == {"enabled": False, "delay_minutes": csat.DEFAULT_DELAY}
    before = dict(channel.settings)
    csat.set_setting(channel, {"enabled": True, "delay_minutes": 10080})
    channel.refresh_from_db()
    assert channel.settings == {**before, "csat": {"enabled": True, "delay_minutes": 10080}}


def test_the_live_chat_has_no_survey_setting(workspace):
    chat, _ = create_channel(workspace, get_connector("livechat"), name="Site", config={})
    with pytest.raises(ValueError):
        csat.set_setting(chat, {"enabled": True})


# -- the job ------------------------------------------------------------------------------


def test_setting_off_sends_nothing(conversation, owner):
    resolve(conversation, owner)
    assert queued() == []
    assert surveys(conversation) == []


def test_the_survey_waits_for_the_delay(channel, conversation, owner):
    turn_on(channel, delay=90)
    conversation = resolve(conversation, owner)
    [row] = queued()
    assert row.run_after == conversation.resolved_at + dt.timedelta(minutes=90)
    assert row.args_kwargs["args"] == [conversation.pk, conversation.resolved_at.isoformat()]


def test_without_a_delay_the_survey_is_due_at_once(channel, conversation, owner):
    turn_on(channel, delay=0)
    resolve(conversation, owner)
    [row] = queued()
    assert row.run_after.year == 9999  # django-tasks-db's "no run_after": due at once


def test_the_job_run_twice_sends_one_survey_with_a_link(channel, conversation, owner):
    turn_on(channel)
    conversation = resolve(conversation, owner)
    run_queued()
    run_queued()
    [survey] = surveys(conversation)
    assert survey.author_type == "system" and survey.direction == Direction.OUTBOUND
    assert survey.status == "queued"  # through the one outbound path
    assert survey.data["csat_survey"]["resolved_at"] == conversation.resolved_at.isoformat()
    assert [i["id"] for i in survey.data["csat_survey"]["items"]] == [
        f"csat:{n}" for n in range(1, 6)
    ]
    token = re.search(r"/csat/([^/\s]+)/", survey.text).group(1)
    assert csat.read_token(token) == conversation.pk
    conversation.refresh_from_db()
    assert conversation.status == ConversationStatus.RESOLVED  # the survey reopens nothing


def test_no_survey_after_a_reopen_or_for_an_older_resolution(channel, conversation, owner):
    turn_on(channel)
    first = resolve(conversation, owner)
    update_conversation(first, actor=owner, status=ConversationStatus.OPEN)
    run_queued()  # reopened: nothing
    assert surveys(conversation) == []
    second = resolve(conversation, owner)
    csat.send_csat_survey.call(conversation.pk, first.resolved_at.isoformat())  # the old one
    assert surveys(conversation) == []
    csat.send_csat_survey.call(conversation.pk, second.resolved_at.isoformat())
    assert len(surveys(conversation)) == 1


def test_no_survey_when_already_rated_or_turned_off_meanwhile(channel, conversation, owner):
    turn_on(channel)
    conversation = resolve(conversation, owner)
    satisfaction.rate(conversation, 5, source="api")
    run_queued()
    assert surveys(conversation) == []
    SatisfactionRating.objects.all().delete()
    csat.set_setting(channel, {"enabled": False})
    run_queued()
    assert surveys(conversation) == []


def test_the_live_chat_gets_no_survey_message(workspace, owner):
    chat, _ = create_channel(workspace, get_connector("livechat"), name="Site", config={})
    chat.settings = {**chat.settings, "csat": {"enabled": True, "delay_minutes": 0}}
    chat.save()
    _token, visitor = widget.start_session(chat)
    shown = widget.post_message(chat, visitor, client_id="c-1", text="Hi", page=None, ip="1")
    conversation = Message.objects.get(pk=shown["id"]).conversation
    resolve(conversation, owner)
    assert queued() == []


def test_the_survey_speaks_the_conversations_language(channel, conversation, owner):
    turn_on(channel)
    Conversation.objects.filter(pk=conversation.pk).update(language="nl")
    conversation = resolve(conversation, owner)
    assert csat.language_of(conversation) == "nl"
    run_queued()
    assert len(surveys(conversation)) == 1


# -- ratings write an activity line -----------------------------------------------------------


def test_every_rating_writes_an_activity_line_the_timeline_says(conversation, owner):
    conversation = resolve(conversation, owner)
    satisfaction.rate(conversation, 4, "Quick", source="api")
    satisfaction.rate(conversation, 4, "Quick", source="api")  # the same again: no line
    satisfaction.rate(conversation, 2, "Slow after all", source="api")
    lines = list(
        Message.objects.filter(
            conversation=conversation, kind=MessageKind.ACTIVITY, data__action="csat_rated"
        ).order_by("pk")
    )
    assert [(m.data["rating"], m.data["changed"]) for m in lines] == [(4, False), (2, True)]
    assert entry(lines[0]).sentence == "The customer rated this conversation 4/5"
    assert entry(lines[1]).sentence == "The customer changed their rating to 2/5"


def test_agents_see_the_rating_line_in_the_conversation(conversation, owner, client):
    conversation = resolve(conversation, owner)
    satisfaction.rate(conversation, 4, source="api")
    client.force_login(owner.user)
    page = client.get(f"/w/acme/inbox/{conversation.number}/")
    assert page.status_code == 200
    assert "The customer rated this conversation 4/5" in page.content.decode()


# -- the page -----------------------------------------------------------------------------------


def page_url(conversation, **query):
    url = csat.survey_url(conversation.pk, query.get("rating"))
    return url.removeprefix("http://127.0.0.1:8000").removeprefix(csat.settings.LOKET_PUBLIC_URL)


def test_the_page_preselects_the_linked_score_and_has_a_strict_csp(conversation, owner):
    resolve(conversation, owner)
    response = Client().get(page_url(conversation, rating=4))
    assert response.status_code == 200
    html = response.content.decode()
    assert re.search(r'<input type="radio" name="rating" value="4" required checked>', html)
    assert html.count('type="radio"') == 5 and "<legend>" in html
    assert "<script" not in html
    policy = response["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "script-src" not in policy
    assert "'unsafe-inline'" not in policy and "style-src 'sha256-" in policy
    assert response["Referrer-Policy"] == "no-referrer"


def test_the_page_speaks_the_conversations_language(conversation, owner):
    Conversation.objects.filter(pk=conversation.pk).update(language="nl")
    resolve(conversation, owner)
    response = Client().get(page_url(conversation))
    assert response["Content-Language"] == "nl"
    assert '<html lang="nl">' in response.content.decode()


def test_a_bad_or_expired_link_says_so(conversation, owner, settings):
    bad = Client().get("/csat/not-a-token/")
    assert bad.status_code == 404 and "not valid" in bad.content.decode()
    old = csat.make_token(conversation.pk)
    later = timezone.now() + csat.TOKEN_MAX_AGE + dt.timedelta(minutes=1)
    import time

    real = time.time
    try:
        time.time = lambda: later.timestamp()
        gone = Client().get(f"/csat/{old}/")
    finally:
        time.time = real
    assert gone.status_code == 410 and "expired" in gone.content.decode()
    assert gone["Content-Security-Policy"] == csat_csp()


def csat_csp():
    from loket.web.csat import views

    return views.CSP


def test_a_token_for_another_salt_is_refused(conversation):
    from django.core import signing

    forged = signing.dumps({"c": conversation.pk})  # the default salt
    assert Client().get(f"/csat/{forged}/").status_code == 404


def test_rating_on_the_page_then_changing_it_then_refused(conversation, owner, settings):
    conversation = resolve(conversation, owner)
    client = Client()
    url = page_url(conversation)
    saved = client.post(url, {"rating": "3", "comment": "  Took a while  "})
    assert saved.status_code == 200 and "Your rating is saved" in saved.content.decode()
    given = SatisfactionRating.objects.get(conversation=conversation)
    assert (given.rating, given.comment, given.source) == (3, "Took a while", "api")
    changed = client.post(url, {"rating": "5", "comment": ""})
    assert changed.status_code == 200
    given.refresh_from_db()
    assert given.rating == 5
    SatisfactionRating.objects.filter(pk=given.pk).update(
        created_at=timezone.now() - dt.timedelta(hours=settings.LOKET_CSAT_CHANGE_HOURS + 1)
    )
    late = client.post(url, {"rating": "1"})
    assert late.status_code == 400 and "can no longer be changed" in late.content.decode()
    given.refresh_from_db()
    assert given.rating == 5
    actions = Message.objects.filter(conversation=conversation, data__action="csat_rated")
    assert sorted(actions.values_list("data__rating", flat=True)) == [3, 5]


def test_the_page_refuses_no_score_and_an_open_conversation(conversation, owner):
    url = page_url(conversation)
    still_open = Client().post(url, {"rating": "4"})
    assert still_open.status_code == 400 and "still going on" in still_open.content.decode()
    resolve(conversation, owner)
    none = Client().post(url, {"rating": "9"})
    assert none.status_code == 400 and "from 1 to 5" in none.content.decode()
    assert not SatisfactionRating.objects.exists()


# -- settings page and API ------------------------------------------------------------------


def test_the_settings_page_sets_the_survey_for_an_email_channel(workspace, owner, client):
    channel = factories.email_channel(workspace)
    client.force_login(owner.user)
    url = f"/w/{workspace.slug}/settings/channels/{channel.pk}/"
    page = client.get(url)
    assert 'name="csat_enabled"' in page.content.decode()
    form = {
        "name": channel.name,
        "address": "support@shop.example",
        "from_name": "",
        "inbound": "forward",
        "smtp_host": "smtp.shop.example",
        "smtp_port": "587",
        "smtp_security": "starttls",
        "imap_port": "993",
        "imap_security": "tls",
        "imap_processed_action": "seen",
        "csat_enabled": "on",
        "csat_delay_minutes": "15",
    }
    page = client.get(url)
    for name, value in re.findall(
        r'<input[^>]*name="([a-z_]+)"[^>]*value="([^"]*)"', page.content.decode()
    ):
        form.setdefault(name, value)
    response = client.post(url, form)
    assert response.status_code == 302, response.content.decode()[:3000]
    channel.refresh_from_db()
    assert channel.settings["csat"] == {"enabled": True, "delay_minutes": 15}
    assert channel.settings["address"] == "support@shop.example"
    form["csat_delay_minutes"] = "99999"
    assert client.post(url, form).status_code == 400
    channel.refresh_from_db()
    assert channel.settings["csat"]["delay_minutes"] == 15
    # Unticked and the delay left empty: off, the delay kept.
    del form["csat_enabled"]
    form["csat_delay_minutes"] = ""
    assert client.post(url, form).status_code == 302
    channel.refresh_from_db()
    assert channel.settings["csat"] == {"enabled": False, "delay_minutes": 15}


def test_the_live_chat_settings_page_has_no_survey_fields(workspace, owner, client):
    chat, _ = create_channel(workspace, get_connector("livechat"), name="Site", config={})
    client.force_login(owner.user)
    page = client.get(f"/w/{workspace.slug}/settings/channels/{chat.pk}/")
    assert page.status_code == 200 and 'name="csat_enabled"' not in page.content.decode()


def test_the_api_shows_and_sets_the_survey(channel, api):
    shown = api.get(f"/channels/{channel.pk}")
    assert shown.json()["csat"] == {"enabled": False, "delay_minutes": csat.DEFAULT_DELAY}
    changed = api.patch(f"/channels/{channel.pk}", {"csat": {"enabled": True, "delay_minutes": 5}})
    assert changed.status_code == 200 and changed.json()["csat"]["enabled"] is True
    wrong = api.patch(f"/channels/{channel.pk}", {"csat": {"delay_minutes": -5}})
    assert wrong.status_code == 400
    # Changing the provider settings keeps the survey setting.
    api.patch(f"/channels/{channel.pk}", {"config": {"outbound_url": ""}})
    channel.refresh_from_db()
    assert channel.settings["csat"] == {"enabled": True, "delay_minutes": 5}


# -- answers in the conversation ---------------------------------------------------------------


def test_a_typed_score_on_a_link_channel_rates_and_re_resolves(channel, conversation, owner):
    turn_on(channel)
    conversation = resolve(conversation, owner)
    run_queued()
    result = factories.inbound(channel, "4")  # reopens it, as any customer message does
    assert Conversation.objects.get(pk=conversation.pk).status == ConversationStatus.OPEN
    [row] = queued(csat.take_survey_answer.module_path)
    csat.take_survey_answer.call(*row.args_kwargs["args"])
    assert SatisfactionRating.objects.get(conversation=conversation).rating == 4
    again = Conversation.objects.get(pk=conversation.pk)
    assert again.status == ConversationStatus.RESOLVED
    assert again.resolved_at == conversation.resolved_at
    assert result.conversation_id == conversation.pk


def test_a_reply_from_someone_after_the_survey_means_it_was_no_answer(channel, conversation, owner):
    from loket.inbox.services import outbound

    turn_on(channel)
    conversation = resolve(conversation, owner)
    run_queued()
    update_conversation(conversation, actor=owner, status=ConversationStatus.OPEN)
    outbound.reply(conversation, author=owner, text="Anything else?")
    factories.inbound(channel, "5")
    csat.take_survey_answer.call(conversation.pk)
    assert not SatisfactionRating.objects.exists()
    assert Conversation.objects.get(pk=conversation.pk).status == ConversationStatus.OPEN
