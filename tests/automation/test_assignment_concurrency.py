"""Auto-assignment under concurrency: 200 conversations arriving at once to 5 agents.

Real threads, each receiving customers' first messages through the real ingest service and
committing; the assigner runs after each commit in that thread, as in production. On PostgreSQL
the decisions race for real (row locks keep them fair); on SQLite writers are serialised."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from loket.automation.assignment import configure_team, set_availability
from loket.inbox.items import InboundContact, InboundMessage
from loket.inbox.models import Conversation, ConversationStatus
from loket.inbox.services.channels import update_channel
from loket.inbox.services.ingest import receive
from loket.tenancy.models import AutoAssign, Availability, Membership
from loket.tenancy.services import add_member, create_team
from tests import factories

ARRIVALS = 200
THREADS = 10


def agents(workspace, capacities: list[int]) -> list[Membership]:
    found = []
    for i, capacity in enumerate(capacities):
        m = add_member(workspace, factories.user(f"agent{i}@acme.example", f"Agent {i}"))
        Membership.objects.filter(pk=m.pk).update(capacity=capacity)
        m.capacity = capacity
        set_availability(m, Availability.ONLINE)
        found.append(m)
    return found


def arrive_concurrently(channel, count: int = ARRIVALS, threads: int = THREADS) -> list:
    """``count`` customers' first messages from ``threads`` threads started together."""
    start = threading.Barrier(threads)
    errors: list[BaseException] = []
    results = []
    lock = threading.Lock()

    def work(index: int) -> None:
        try:
            start.wait()
            for n in range(index, count, threads):
                item = InboundMessage(
                    external_id=f"rush-{n}",
                    contact=InboundContact(f"rush-customer-{n}", name=f"Customer {n}"),
                    text="Where is my order?",
                )
                result = receive(channel, item)
                with lock:
                    results.append(result)
        except BaseException as exc:  # reported by the test below, not lost in the thread
            errors.append(exc)
        finally:
            connection.close()

    pool = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(timeout=300)
    assert not any(thread.is_alive() for thread in pool)
    assert not errors, errors
    return results


def loads(members: list[Membership]) -> list[int]:
    return [
        Conversation.objects.filter(
            assignee=m, status__in=[ConversationStatus.OPEN, ConversationStatus.PENDING]
        ).count()
        for m in members
    ]


@pytest.mark.parametrize(
    ("mode", "capacities", "expected"),
    [
        # Room for 250: balancing evens out the room left (10 each); round robin deals one to
        # each in turn, skipping those who are full.
        (AutoAssign.BALANCED, [20, 30, 50, 70, 80], [10, 20, 40, 60, 70]),
        (AutoAssign.ROUND_ROBIN, [20, 30, 50, 70, 80], [20, 30, 50, 50, 50]),
        # Room for 75 only: everyone exactly full, the rest waits.
        (AutoAssign.BALANCED, [5, 10, 15, 20, 25], [5, 10, 15, 20, 25]),
        (AutoAssign.ROUND_ROBIN, [5, 10, 15, 20, 25], [5, 10, 15, 20, 25]),
    ],
)
def test_200_concurrent_arrivals_never_overfill_an_agent(
    transactional_db, mode, capacities, expected
):
    workspace = factories.workspace("rush")
    members = agents(workspace, capacities)
    team = configure_team(create_team(workspace, "Support", members), auto_assign=mode)
    channel = factories.api_channel(workspace)
    update_channel(channel, name=channel.name, default_team=team)

    results = arrive_concurrently(channel)

    assert [r.outcome for r in results] == ["created"] * ARRIVALS
    assert Conversation.objects.filter(workspace=workspace).count() == ARRIVALS
    got = loads(members)
    assert all(n <= c for n, c in zip(got, capacities, strict=True)), (got, capacities)
    assert got == expected
    unassigned = Conversation.objects.filter(workspace=workspace, assignee__isnull=True).count()
    assert unassigned == ARRIVALS - sum(expected)
