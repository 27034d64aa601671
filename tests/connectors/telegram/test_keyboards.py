"""A tapped keyboard is taken away: the tap's message enqueues a job (in the transaction that
stores it) that calls editMessageReplyMarkup for the tapped message; Telegram refusing is logged
and breaks nothing."""

from __future__ import annotations

import copy
import json
import logging

import pytest
from django_tasks_db.models import DBTaskResult

from loket.inbox.models import Conversation, DeliveryStatus, Direction, Message
from loket.inbox.services import choices, outbound
from tests.connectors.providers import run_tasks
from tests.connectors.telegram.conftest import failure, method, payload

pytestmark = pytest.mark.usefixtures("transactional_db")

CHAT = 480112233
GROUP = -1001876543210
EDIT = method("editMessageReplyMarkup")
TASK = "loket.connectors.telegram.tasks.remove_keyboard"


def edits(telegram) -> list[dict]:
    return [request.json() for request in telegram.requests_to("POST", EDIT)]


def keyboard_jobs() -> list[DBTaskResult]:
    return list(DBTaskResult.objects.filter(task_path=TASK).order_by("enqueued_at"))


@pytest.fixture
def question(channel, post_update, owner, telegram):
    """The bot's question with two buttons, sent to the customer's private chat."""
    assert post_update(channel, payload("text_message")).status_code == 200
    conversation = Conversation.objects.get()
    items = [
        {"id": "trip:PAR-88412", "title": "Piraeus → Paros"},
        {"id": "trip:NAX-11873", "title": "Paros → Naxos"},
    ]
    text, data = choices.prepare(conversation, "Welke overtocht?", items)
    message = outbound.reply(conversation, author=owner, text=text, data=data)
    run_tasks()
    message.refresh_from_db()
    assert message.status == DeliveryStatus.SENT
    return message


def tap(chat: dict, message_id: int, data: str = "trip:NAX-11873", query_id: str = "cb-1"):
    """A callback_query Update as Telegram sends it when the customer taps a button."""
    update = copy.deepcopy(payload("callback_query"))
    query = update["callback_query"]
    query["id"] = query_id
    query["message"]["chat"] = chat
    query["message"]["message_id"] = message_id
    query["data"] = data
    return update


def private_tap(question, **kw):
    return tap({"id": CHAT, "first_name": "Pieter", "type": "private"}, sent_id(question), **kw)


def sent_id(message: Message) -> int:
    return int(message.external_id.split(":")[1])


def test_a_tap_takes_the_keyboard_away_in_the_background(channel, post_update, telegram, question):
    response = post_update(channel, private_tap(question))
    assert response.json() == {"method": "answerCallbackQuery", "callback_query_id": "cb-1"}
    answer = Message.objects.filter(direction=Direction.INBOUND).latest("pk")
    assert answer.data["choice"]["id"] == "trip:NAX-11873"
    assert answer.data["telegram_tapped"] == {"chat_id": CHAT, "message_id": sent_id(question)}
    # Not during the webhook's request: a job, stored with the tap.
    assert edits(telegram) == []
    (job,) = keyboard_jobs()
    assert job.status == "READY"

    run_tasks()
    assert edits(telegram) == [{"chat_id": CHAT, "message_id": sent_id(question)}]
    job.refresh_from_db()
    assert job.status == "SUCCESSFUL"


def test_in_a_group_the_keyboard_goes_from_the_groups_message(channel, post_update, telegram):
    group = {"id": GROUP, "title": "Paros trip 2024", "type": "supergroup"}
    assert post_update(channel, tap(group, 77, query_id="cb-group")).status_code == 200
    run_tasks()
    assert edits(telegram) == [{"chat_id": GROUP, "message_id": 77}]


def test_a_redelivered_tap_removes_the_keyboard_once(channel, post_update, telegram, question):
    update = private_tap(question)
    assert post_update(channel, update).status_code == 200
    assert post_update(channel, update).status_code == 200  # Telegram delivering it again
    assert post_update(channel, payload("text_message")).status_code == 200  # a duplicate too
    assert post_update(channel, payload("reply_message")).status_code == 200
    run_tasks()
    assert len(edits(telegram)) == 1
    assert len(keyboard_jobs()) == 1


def test_other_messages_enqueue_nothing(channel, post_update, telegram, connector):
    assert post_update(channel, payload("text_message")).status_code == 200
    assert post_update(channel, payload("photo_message")).status_code == 200
    assert keyboard_jobs() == []
    parsed = connector.parse(channel, json.dumps(payload("text_message")).encode(), {})
    assert all(not item.follow_up for item in parsed)


def test_telegram_refusing_the_edit_is_logged_and_breaks_nothing(
    channel, post_update, telegram, question, caplog
):
    telegram.then("POST", EDIT, failure(400, "Bad Request: message can't be edited"))
    caplog.set_level(logging.INFO, logger="loket.connectors.telegram.tasks")
    assert post_update(channel, private_tap(question)).status_code == 200
    run_tasks(retries_due=True)
    assert len(edits(telegram)) == 1  # a refusal is not tried again
    (job,) = keyboard_jobs()
    assert job.status == "SUCCESSFUL"
    (record,) = [r for r in caplog.records if r.name == "loket.connectors.telegram.tasks"]
    assert record.levelno == logging.WARNING
    assert "message can't be edited" in record.getMessage()
    assert f"{CHAT}:{sent_id(question)}" in record.getMessage()
    # The tap is stored and answered as ever; the conversation goes on.
    answer = Message.objects.filter(direction=Direction.INBOUND).latest("pk")
    assert answer.data["choice"]["id"] == "trip:NAX-11873"
    assert post_update(channel, payload("reply_message")).status_code == 200


def test_a_keyboard_already_gone_is_only_noted(channel, post_update, telegram, question, caplog):
    not_modified = (
        "Bad Request: message is not modified: specified new message content and reply markup "
        "are exactly the same as a current content and reply markup of the message"
    )
    telegram.then("POST", EDIT, failure(400, not_modified))
    caplog.set_level(logging.INFO, logger="loket.connectors.telegram.tasks")
    post_update(channel, private_tap(question, query_id="cb-1"))
    post_update(channel, private_tap(question, data="trip:PAR-88412", query_id="cb-2"))
    run_tasks()
    assert len(edits(telegram)) == 2  # tapped twice before the first job ran
    levels = [r.levelno for r in caplog.records if r.name == "loket.connectors.telegram.tasks"]
    assert levels == [logging.INFO]


def test_telegram_down_is_tried_a_few_times_then_given_up(
    channel, post_update, telegram, question, caplog
):
    telegram.then("POST", EDIT, *[failure(502, "Bad Gateway")] * 10)
    assert post_update(channel, private_tap(question)).status_code == 200
    run_tasks(retries_due=True)
    assert len(edits(telegram)) == 4  # the first attempt and 3 retries, never forever
    (job,) = keyboard_jobs()
    assert job.status == "FAILED"
    assert any("failed after 4 attempt(s)" in r.getMessage() for r in caplog.records)
    assert Message.objects.filter(data__choice__id="trip:NAX-11873").count() == 1


def test_on_the_lean_asgi_route_the_job_is_stored_with_the_tap(channel, telegram):
    import httpx
    from asgiref.sync import async_to_sync

    from loket.asgi import application

    async def post(update: dict):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            return await c.post(
                f"/hooks/telegram/{channel.uuid}/",
                json=update,
                headers={"X-Telegram-Bot-Api-Secret-Token": channel.secrets["webhook_secret"]},
            )

    chat = {"id": CHAT, "first_name": "Pieter", "type": "private"}
    assert async_to_sync(post)(tap(chat, 1380, query_id="cb-asgi")).status_code == 200
    assert len(keyboard_jobs()) == 1
    run_tasks()
    assert edits(telegram) == [{"chat_id": CHAT, "message_id": 1380}]
