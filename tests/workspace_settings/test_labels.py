"""Labels: create, rename, recolour (#rrggbb only), delete (conversations lose it)."""

from __future__ import annotations

import pytest

from loket import events
from loket.inbox.models import Conversation, ConversationStatus, Label
from loket.inbox.services.conversations import ensure_labels, update_conversation
from loket.inbox.services.labels import create_label
from tests import factories
from tests.workspace_settings.conftest import url

RECEIVED: list[events.Event] = []


def record_event(event: events.Event) -> None:
    RECEIVED.append(event)


@pytest.fixture
def received_events(settings):
    """The domain events delivered after commit, through a subscriber of the test's own."""
    settings.LOKET_EVENT_SUBSCRIBERS = [f"{__name__}.record_event"]
    events._subscribers.cache_clear()
    RECEIVED.clear()
    yield RECEIVED
    events._subscribers.cache_clear()


def test_admin_creates_a_label(admin_client, workspace):
    response = admin_client.post(
        url("labels", workspace), {"name": "Billing", "color": "#1F5FD1"}, follow=True
    )
    assert "Label “Billing” created." in response.content.decode()
    label = Label.objects.get(workspace=workspace, name="Billing")
    assert label.color == "#1f5fd1"


@pytest.mark.parametrize("color", ["red", "#12345", "#1234567", "#12345g", "123456", ""])
def test_a_colour_must_be_rrggbb(admin_client, workspace, color):
    response = admin_client.post(url("labels", workspace), {"name": "Billing", "color": color})
    assert response.status_code == 400
    assert not Label.objects.filter(workspace=workspace).exists()
    label = create_label(workspace, name="Sales", color="#00aa00")
    response = admin_client.post(
        url("label-update", workspace, label.pk),
        {f"label-{label.pk}-name": "Sales", f"label-{label.pk}-color": color},
    )
    assert response.status_code == 400
    html = response.content.decode()
    assert 'class="errorlist"' in html[html.index(f'id="label-{label.pk}"') :]
    label.refresh_from_db()
    assert label.color == "#00aa00"


def test_admin_renames_and_recolours_a_label(admin_client, workspace):
    label = create_label(workspace, name="Billing", color="#00aa00")
    response = admin_client.post(
        url("label-update", workspace, label.pk),
        {f"label-{label.pk}-name": "Invoices", f"label-{label.pk}-color": "#AA0000"},
    )
    assert response.status_code == 302
    label.refresh_from_db()
    assert (label.name, label.color) == ("Invoices", "#aa0000")


def test_label_names_are_unique_regardless_of_case(admin_client, workspace):
    create_label(workspace, name="Billing", color="#00aa00")
    sales = create_label(workspace, name="Sales", color="#00aa00")
    response = admin_client.post(url("labels", workspace), {"name": "BILLING", "color": "#000000"})
    assert response.status_code == 400
    assert "There is already a label called “BILLING”." in response.content.decode()
    response = admin_client.post(
        url("label-update", workspace, sales.pk),
        {f"label-{sales.pk}-name": "billing", f"label-{sales.pk}-color": "#000000"},
    )
    assert response.status_code == 400
    sales.refresh_from_db()
    assert sales.name == "Sales"
    # Changing only the case of its own name is fine.
    admin_client.post(
        url("label-update", workspace, sales.pk),
        {f"label-{sales.pk}-name": "SALES", f"label-{sales.pk}-color": "#000000"},
    )
    sales.refresh_from_db()
    assert sales.name == "SALES"


def test_deleting_a_label_takes_it_off_conversations_and_announces_the_open_ones(
    admin_client, workspace, admin, received_events, django_capture_on_commit_callbacks
):
    channel = factories.api_channel(workspace)
    open_one = Conversation.objects.get(
        pk=factories.inbound(channel, contact_id="a").conversation_id
    )
    closed_one = Conversation.objects.get(
        pk=factories.inbound(channel, contact_id="b").conversation_id
    )
    billing, vip = ensure_labels(workspace.pk, ["Billing", "VIP"])
    update_conversation(open_one, actor=admin, labels=[billing, vip])
    update_conversation(
        closed_one, actor=admin, labels=[billing], status=ConversationStatus.RESOLVED
    )
    received_events.clear()

    page = admin_client.get(url("labels", workspace)).content.decode()
    assert "2 conversations lose it." in page  # the confirmation counts its conversations
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(url("label-delete", workspace, billing.pk), follow=True)
    assert "Label “Billing” deleted." in response.content.decode()

    assert not Label.objects.filter(pk=billing.pk).exists()
    assert list(open_one.labels.all()) == [vip]
    assert not closed_one.labels.exists()
    assert [(e.name, e.conversation_id, e.changes, e.actor.id) for e in received_events] == [
        ("conversation.updated", open_one.pk, {"labels": ["VIP"]}, admin.pk)
    ]
