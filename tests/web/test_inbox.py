"""The inbox pages: views and counts, the allow-listed filters, keyset pages, the conversation
pane, the composer's collision check, header actions, bulk actions and safe file serving."""

from __future__ import annotations

import pytest
from django.core.files.base import ContentFile
from django.urls import reverse

from loket.inbox import listing
from loket.inbox.models import (
    Attachment,
    Conversation,
    Draft,
    Label,
    Message,
    MessageKind,
    Notification,
    SavedView,
)
from loket.inbox.services.conversations import update_conversation
from loket.tenancy.services import create_team
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def agent_client(client, workspace, owner):
    client.force_login(owner.user)
    return client


def _conversation(channel, text="Hello", contact="c-1", **kw) -> Conversation:
    result = factories.inbound(channel, text, contact_id=contact, **kw)
    return Conversation.objects.get(pk=result.conversation_id)


def test_views_filter_and_count_open_conversations(agent_client, workspace, owner, api_channel):
    mine = _conversation(api_channel, contact="a")
    unassigned = _conversation(api_channel, contact="b")
    resolved = _conversation(api_channel, contact="c")
    update_conversation(mine, actor=owner, assignee=owner)
    update_conversation(resolved, actor=owner, status="resolved")

    def numbers(view, status="open"):
        page = agent_client.get(f"/w/acme/inbox/list/?view={view}&status={status}")
        assert page.status_code == 200
        return {c.number for c in page.context["conversations"]}

    assert numbers("mine") == {mine.number}
    assert numbers("unassigned") == {unassigned.number}
    assert numbers("all") == {mine.number, unassigned.number}
    assert numbers("all", "resolved") == {resolved.number}
    assert numbers("all", "any") == {mine.number, unassigned.number, resolved.number}
    assert numbers(f"channel:{api_channel.pk}") == {mine.number, unassigned.number}

    counts = agent_client.get("/w/acme/inbox/counts/")
    items = {i["key"]: i["count"] for s in counts.context["sections"] for i in s["items"]}
    assert items["mine"] == 1
    assert items["unassigned"] == 1
    assert items["all"] == 2
    assert items[f"channel:{api_channel.pk}"] == 2


def test_a_team_and_a_label_view(agent_client, workspace, owner, api_channel):
    team = create_team(workspace, "Returns")
    label = Label.objects.create(workspace=workspace, name="vip")
    first = _conversation(api_channel, contact="a")
    second = _conversation(api_channel, contact="b")
    update_conversation(first, actor=owner, team=team)
    update_conversation(second, actor=owner, labels=[label])
    page = agent_client.get(f"/w/acme/inbox/list/?view=team:{team.pk}")
    assert [c.pk for c in page.context["conversations"]] == [first.pk]
    page = agent_client.get(f"/w/acme/inbox/list/?view=label:{label.pk}")
    assert [c.pk for c in page.context["conversations"]] == [second.pk]


def test_another_workspaces_views_and_conversations_are_404(agent_client, workspace, owner):
    other = factories.workspace("other")
    other_channel = factories.api_channel(other)
    theirs = _conversation(other_channel)
    team = create_team(other, "Theirs")
    assert agent_client.get(f"/w/acme/inbox/list/?view=team:{team.pk}").status_code == 404
    assert agent_client.get(f"/w/acme/inbox/list/?view=channel:{other_channel.pk}").status_code == (
        404
    )
    assert agent_client.get(f"/w/acme/inbox/{theirs.number}/pane/").status_code == 404
    assert agent_client.get("/w/other/").status_code == 404
    assert agent_client.post(
        f"/w/other/inbox/{theirs.number}/send/", {"text": "x"}
    ).status_code == (404)


def test_saved_view_filters_come_from_the_allow_list(agent_client, workspace, owner, api_channel):
    high = _conversation(api_channel, contact="a")
    _conversation(api_channel, contact="b")
    update_conversation(high, actor=owner, priority=3)
    response = agent_client.post(
        "/w/acme/inbox/views/",
        {"name": "Urgent things", "field": ["priority"], "op": ["gte"], "value": ["3"]},
    )
    saved = SavedView.objects.get(name="Urgent things")
    assert response.status_code == 302
    assert saved.owner_id == owner.pk
    page = agent_client.get(f"/w/acme/inbox/list/?view=saved:{saved.pk}")
    assert [c.pk for c in page.context["conversations"]] == [high.pk]

    for bad in (
        [{"field": "workspace_id", "op": "is", "value": 2}],
        [{"field": "contact__email", "op": "is", "value": "x"}],
        [{"field": "priority", "op": "regex", "value": ".*"}],
        [{"field": "status", "op": "is", "value": "deleted"}],
        "status=open",
    ):
        with pytest.raises(listing.InvalidView):
            listing.filters_q(bad, owner)
    refused = agent_client.post(
        "/w/acme/inbox/views/",
        {"name": "Sneaky", "field": ["workspace"], "op": ["is"], "value": ["2"]},
    )
    assert refused.status_code == 302
    assert not SavedView.objects.filter(name="Sneaky").exists()


def test_someone_elses_personal_view_is_not_visible(agent_client, workspace, api_channel):
    colleague = factories.agent(workspace)
    private = SavedView.objects.create(workspace=workspace, owner=colleague, name="Mine only")
    assert agent_client.get(f"/w/acme/inbox/list/?view=saved:{private.pk}").status_code == 404


@pytest.mark.parametrize("sort", ["recent", "waiting", "priority"])
def test_keyset_pages_cover_every_row_once(agent_client, workspace, owner, api_channel, sort):
    created = [_conversation(api_channel, contact=f"c{i}") for i in range(7)]
    for index, conversation in enumerate(created):
        update_conversation(conversation, actor=owner, priority=index % 3)
    seen = []
    queryset = Conversation.objects.filter(workspace=workspace)
    cursor = None
    while True:
        page = listing.page(queryset, sort, cursor, limit=3)
        seen.extend(c.pk for c in page.items)
        if not page.next_cursor:
            break
        cursor = page.next_cursor
    assert sorted(seen) == sorted(c.pk for c in created)
    assert len(seen) == len(set(seen))


def test_a_tampered_cursor_is_refused(agent_client):
    assert agent_client.get("/w/acme/inbox/list/?cursor=bm9wZQ").status_code == 404
    with pytest.raises(listing.InvalidView):
        listing.page(Conversation.objects.none(), "priority", "WyJ4Il0")


def test_the_list_costs_the_same_queries_for_3_or_30_rows(
    agent_client, workspace, owner, api_channel, django_assert_max_num_queries
):
    label = Label.objects.create(workspace=workspace, name="vip")
    for i in range(3):
        conversation = _conversation(api_channel, contact=f"a{i}")
        update_conversation(conversation, actor=owner, labels=[label], assignee=owner)
    with django_assert_max_num_queries(12) as few:
        agent_client.get("/w/acme/inbox/list/?view=all")
    baseline = len(few.captured_queries)  # read now: the next request resets the query log
    for i in range(27):
        conversation = _conversation(api_channel, contact=f"b{i}")
        update_conversation(conversation, actor=owner, labels=[label], assignee=owner)
    with django_assert_max_num_queries(baseline):
        page = agent_client.get("/w/acme/inbox/list/?view=all")
    assert len(page.context["conversations"]) == listing.PAGE_SIZE


def test_the_conversation_pane_costs_the_same_queries_for_2_or_40_messages(
    agent_client, workspace, owner, api_channel, django_assert_max_num_queries
):
    conversation = _conversation(api_channel, "first")
    with django_assert_max_num_queries(30) as few:
        agent_client.get(f"/w/acme/inbox/{conversation.number}/pane/")
    baseline = len(few.captured_queries)  # read now: the next request resets the query log
    for i in range(20):
        factories.inbound(api_channel, f"more {i}")
        agent_client.post(
            f"/w/acme/inbox/{conversation.number}/send/",
            {"text": f"answer {i}", "seen": str(2**62), "kind": "note" if i % 2 else "message"},
        )
    with django_assert_max_num_queries(baseline):
        page = agent_client.get(f"/w/acme/inbox/{conversation.number}/pane/")
    assert len(page.context["timeline"]) > 40


def test_sending_after_the_conversation_moved_asks_to_review_first(
    agent_client, workspace, owner, api_channel
):
    conversation = _conversation(api_channel, "Where is my parcel?")
    seen = Message.objects.filter(conversation=conversation).latest("pk").pk
    factories.inbound(api_channel, "Hello? Anyone?")  # arrives while the agent writes
    url = f"/w/acme/inbox/{conversation.number}/send/"
    stale = agent_client.post(url, {"text": "It left today", "seen": seen})
    assert stale.status_code == 409
    assert "Hello? Anyone?" in stale.content.decode()
    assert not Message.objects.filter(text="It left today").exists()

    sent = agent_client.post(url, {"text": "It left today", "seen": seen, "confirmed": "1"})
    assert sent.status_code == 200
    reply = Message.objects.get(text="It left today")
    assert reply.status == "queued"
    assert f'id="m{reply.pk}"' in sent.content.decode()


def test_a_colleagues_reply_also_counts_as_a_collision(agent_client, workspace, owner, api_channel):
    from loket.inbox.services.outbound import reply

    conversation = _conversation(api_channel, "Hi")
    seen = Message.objects.filter(conversation=conversation).latest("pk").pk
    colleague = factories.agent(workspace)
    reply(conversation, author=colleague, text="I'm on it")
    stale = agent_client.post(
        f"/w/acme/inbox/{conversation.number}/send/", {"text": "Me too", "seen": seen}
    )
    assert stale.status_code == 409
    # A note never collides: it does not reach the customer.
    note = agent_client.post(
        f"/w/acme/inbox/{conversation.number}/send/",
        {"text": "FYI", "seen": seen, "kind": "note"},
    )
    assert note.status_code == 200
    assert Message.objects.get(text="FYI").kind == MessageKind.NOTE


def test_an_empty_reply_is_refused_and_keeps_nothing(agent_client, api_channel):
    conversation = _conversation(api_channel)
    response = agent_client.post(
        f"/w/acme/inbox/{conversation.number}/send/", {"text": "   ", "seen": 0}
    )
    assert response.status_code == 400
    assert not Message.objects.filter(conversation=conversation, kind="message", direction="out")


def test_a_note_mentioning_a_colleague_notifies_them(agent_client, workspace, owner, api_channel):
    colleague = factories.agent(workspace, "bram@example.com")
    conversation = _conversation(api_channel)
    agent_client.post(
        f"/w/acme/inbox/{conversation.number}/send/",
        {"text": f"@[Bram](member:{colleague.pk}) can you check?", "kind": "note", "seen": 0},
    )
    notification = Notification.objects.get(recipient=colleague)
    assert notification.kind == "mention"
    assert notification.conversation_id == conversation.pk


def test_reply_with_an_attachment(agent_client, workspace, api_channel):
    conversation = _conversation(api_channel)
    upload = ContentFile(b"%PDF-1.4 invoice", name="invoice.pdf")
    response = agent_client.post(
        f"/w/acme/inbox/{conversation.number}/send/",
        {"text": "Your invoice", "seen": 2**62, "attachments": [upload]},
    )
    assert response.status_code == 200
    stored = Attachment.objects.get(message__text="Your invoice")
    assert stored.filename == "invoice.pdf"
    download = agent_client.get(f"/w/acme/attachments/{stored.pk}/")
    assert download["Content-Disposition"].startswith("attachment")
    assert download["X-Content-Type-Options"] == "nosniff"
    assert download["Content-Type"] == "application/octet-stream"


def test_an_svg_or_html_attachment_is_never_served_inline(agent_client, workspace, api_channel):
    conversation = _conversation(api_channel)
    message = Message.objects.filter(conversation=conversation).first()
    evil = Attachment(workspace=workspace, message=message, filename="x.svg",
                      content_type="image/svg+xml")  # fmt: skip
    evil.file.save("x.svg", ContentFile(b"<svg onload=alert(1)>"))
    response = agent_client.get(f"/w/acme/attachments/{evil.pk}/")
    assert response["Content-Disposition"].startswith("attachment")
    assert response["Content-Type"] == "application/octet-stream"
    assert "sandbox" in response["Content-Security-Policy"]


def test_email_html_is_served_sandboxed(agent_client, workspace, api_channel):
    conversation = _conversation(api_channel)
    message = Message.objects.filter(conversation=conversation).first()
    Message.objects.filter(pk=message.pk).update(html="<p>Hi <b>there</b></p>")
    body = agent_client.get(f"/w/acme/messages/{message.pk}/body/")
    assert body.status_code == 200
    assert body["Content-Security-Policy"].startswith("sandbox")
    assert "default-src 'none'" in body["Content-Security-Policy"]
    pane = agent_client.get(f"/w/acme/inbox/{conversation.number}/pane/").content.decode()
    assert 'sandbox="allow-popups allow-popups-to-escape-sandbox"' in pane


def test_header_actions_change_the_conversation(agent_client, workspace, owner, api_channel):
    team = create_team(workspace, "Support")
    label = Label.objects.create(workspace=workspace, name="refund")
    conversation = _conversation(api_channel)
    url = f"/w/acme/inbox/{conversation.number}/update/"
    assert agent_client.post(url, {"assignee": owner.pk}).status_code == 200
    assert agent_client.post(url, {"team": team.pk}).status_code == 200
    assert agent_client.post(url, {"labels": "1", "label": [label.pk]}).status_code == 200
    assert agent_client.post(url, {"priority": "4"}).status_code == 200
    assert agent_client.post(url, {"snooze": "reply"}).status_code == 200
    conversation.refresh_from_db()
    assert conversation.assignee_id == owner.pk
    assert conversation.team_id == team.pk
    assert list(conversation.labels.all()) == [label]
    assert conversation.priority == 4
    assert conversation.status == "snoozed"
    assert conversation.snoozed_until is None
    assert agent_client.post(url, {"status": "resolved"}).status_code == 200
    conversation.refresh_from_db()
    assert conversation.status == "resolved"
    response = agent_client.post(url, {"snooze": "2000-01-01T10:00"})
    assert "HX-Trigger" in response  # told why, nothing changed
    conversation.refresh_from_db()
    assert conversation.status == "resolved"
    activities = Message.objects.filter(conversation=conversation, kind="activity").count()
    assert activities >= 6


def test_bulk_actions(agent_client, workspace, owner, api_channel):
    label = Label.objects.create(workspace=workspace, name="bulk")
    first = _conversation(api_channel, contact="a")
    second = _conversation(api_channel, contact="b")
    other = factories.workspace("other")
    theirs = _conversation(factories.api_channel(other))
    ids = [first.pk, second.pk, theirs.pk]
    agent_client.post("/w/acme/inbox/bulk/", {"ids": ids, "action": "assign", "assignee": owner.pk})
    agent_client.post("/w/acme/inbox/bulk/", {"ids": ids, "action": "label", "label": label.pk})
    agent_client.post("/w/acme/inbox/bulk/", {"ids": ids, "action": "status", "status": "resolved"})
    for conversation in (first, second):
        conversation.refresh_from_db()
        assert conversation.assignee_id == owner.pk
        assert conversation.status == "resolved"
        assert list(conversation.labels.all()) == [label]
    theirs.refresh_from_db()
    assert theirs.status == "open"  # another workspace's id is ignored
    assert theirs.assignee_id is None


def test_drafts_are_kept_per_agent_and_conversation(agent_client, workspace, owner, api_channel):
    conversation = _conversation(api_channel)
    url = f"/w/acme/inbox/{conversation.number}/draft/"
    assert agent_client.post(url, {"text": "Half a thought", "kind": "note"}).status_code == 204
    draft = Draft.objects.get(membership=owner, conversation=conversation)
    assert draft.kind == "note"
    pane = agent_client.get(f"/w/acme/inbox/{conversation.number}/pane/").content.decode()
    assert "Half a thought" in pane
    agent_client.post(url, {"text": ""})
    assert not Draft.objects.filter(membership=owner).exists()


def test_retry_a_failed_message(agent_client, workspace, owner, api_channel):
    from loket.inbox.services.outbound import mark_failed, reply

    conversation = _conversation(api_channel)
    message = reply(conversation, author=owner, text="Hello")
    mark_failed(message.pk, "the provider said no")
    pane = agent_client.get(f"/w/acme/inbox/{conversation.number}/pane/").content.decode()
    assert "the provider said no" in pane
    response = agent_client.post(
        reverse("inbox:retry", args=["acme", conversation.number, message.pk])
    )
    assert response.status_code == 200
    message.refresh_from_db()
    assert message.status == "queued"


def test_preferences_set_the_language(agent_client, owner):
    response = agent_client.post(
        "/w/acme/me/", {"language": "nl", "availability": "online", "browser_notifications": "1"}
    )
    assert response.status_code == 302
    owner.user.refresh_from_db()
    owner.refresh_from_db()
    assert owner.user.locale == "nl"
    assert owner.user.preferences["browser_notifications"] is True
    assert owner.availability == "online"
    page = agent_client.get("/w/acme/")
    assert page["Content-Language"] == "nl"


def test_notifications_page_marks_all_read(agent_client, workspace, owner, api_channel):
    conversation = _conversation(api_channel)
    Notification.objects.create(
        workspace=workspace, recipient=owner, kind="mention", conversation=conversation
    )
    page = agent_client.get("/w/acme/notifications/")
    assert f"#{conversation.number}" in page.content.decode()
    agent_client.post("/w/acme/notifications/")
    assert not Notification.objects.filter(recipient=owner, read_at__isnull=True).exists()


def test_mentions_show_as_names_and_text_stays_escaped(agent_client, workspace, api_channel):
    colleague = factories.agent(workspace, "bram@example.com")
    conversation = _conversation(api_channel, "<script>alert(1)</script>")
    agent_client.post(
        f"/w/acme/inbox/{conversation.number}/send/",
        {"text": f"@[Bram <b>](member:{colleague.pk}) look", "kind": "note", "seen": 0},
    )
    pane = agent_client.get(f"/w/acme/inbox/{conversation.number}/pane/").content.decode()
    assert '<span class="mention">@Bram &lt;b&gt;</span> look' in pane
    assert "(member:" not in pane
    assert "<script>alert(1)</script>" not in pane
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in pane
