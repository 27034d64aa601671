"""A worker process killed with SIGKILL in the middle of a send: after a restart the message ends
sent, never stuck in queued/sending. Real `loket worker` processes against the test database."""

from __future__ import annotations

import json
import os
import signal
import threading

import pytest
from django_tasks.base import TaskResultStatus
from django_tasks_db.models import DBTaskResult

from loket.inbox import tasks
from loket.inbox.models import Conversation, DeliveryStatus, Message
from loket.inbox.services import outbound
from tests import factories
from tests.jobs.receiver import running_receiver
from tests.processes import loket_process, subprocess_env, wait_until

pytestmark = pytest.mark.subprocess

WORKER_ENV = {
    "LOKET_WORKER_HEARTBEAT_SECONDS": "0.5",
    "LOKET_WORKER_STALE_SECONDS": "2",
    "LOKET_WORKER_POLL_SECONDS": "0.1",
}


def status_of(message_id: int) -> str:
    return Message.objects.values_list("status", flat=True).get(pk=message_id)


def test_a_message_is_sent_after_its_worker_is_killed_mid_send(transactional_db, tmp_path):
    logs = [tmp_path / "worker-1.log", tmp_path / "worker-2.log"]
    env = subprocess_env(tmp_path, **WORKER_ENV)
    with running_receiver() as receiver:
        receiver.hold_first = threading.Event()  # the first POST hangs until released
        workspace = factories.workspace("crash")
        channel = factories.api_channel(workspace, outbound_url=receiver.url)
        result = factories.inbound(channel, "Where is my order?", contact_id="cust-7")
        conversation = Conversation.objects.get(pk=result.conversation_id)
        message = outbound.reply(
            conversation, author=factories.owner_of(workspace), text="It ships today."
        )
        [task_row] = DBTaskResult.objects.filter(task_path=tasks.send_message.module_path)

        try:
            with loket_process(["worker"], env=env, log_path=logs[0]) as first:
                assert receiver.wait_for_requests(1, timeout=30), "the first worker never sent"
                assert status_of(message.pk) == DeliveryStatus.SENDING
                os.kill(first.pid, signal.SIGKILL)
                first.wait(timeout=10)
            assert first.returncode == -signal.SIGKILL

            # The killed worker left its task RUNNING and the message `sending`.
            task_row.refresh_from_db()
            assert task_row.status == TaskResultStatus.RUNNING
            assert status_of(message.pk) == DeliveryStatus.SENDING
            receiver.hold_first.set()  # the killed worker's request is answered into the void

            with loket_process(["worker"], env=env, log_path=logs[1]):
                wait_until(
                    lambda: status_of(message.pk) not in (DeliveryStatus.QUEUED, "sending"),
                    timeout=30,
                    message="the message is still unsent 30 s after the restart",
                )
                wait_until(
                    lambda: (
                        DBTaskResult.objects.get(pk=task_row.pk).status
                        == TaskResultStatus.SUCCESSFUL
                    ),
                    timeout=10,
                    message="the send task did not finish",
                )
        except BaseException:
            for path in logs:
                text = path.read_text(errors="replace") if path.exists() else "(no log)"
                print(f"----- {path.name} -----\n{text}")
            raise

    message.refresh_from_db()
    assert message.status == DeliveryStatus.SENT, message.error
    assert message.external_id == f"out_{message.pk}"
    assert message.send_attempts == 2
    task_row.refresh_from_db()
    assert task_row.status == TaskResultStatus.SUCCESSFUL
    assert len(task_row.worker_ids) == 2  # the killed attempt and the one that finished
    assert len(set(task_row.worker_ids)) == 2
    # At-least-once: the receiver saw the same message (same id) twice and can de-duplicate.
    assert len(receiver.requests) == 2
    assert {json.loads(r.body)["id"] for r in receiver.requests} == {f"out_{message.pk}"}
