"""The contacts pages: list, detail, edit, merge and undo, block, suggested duplicates."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from loket.inbox.models import Contact, ContactMerge, Conversation
from loket.inbox.services.contacts import block_contact, merge_contacts, update_contact
from loket.web.contacts import reads
from tests import factories
from tests.contacts.test_services import customer
from tests.merging.builders import second_conversation


def url(name: str, *args, workspace="acme") -> str:
    return reverse(f"contacts:{name}", args=[workspace, *args])


@pytest.fixture
def agent_client(client, workspace):
    client.force_login(factories.agent(workspace, "agent@acme.example").user)
    return client


@pytest.fixture
def chat(workspace):
    return factories.api_channel(workspace, name="Web chat")


@pytest.fixture
def whatsapp(workspace):
    return factories.api_channel(workspace, name="WhatsApp")


def listed(response) -> list[str]:
    """The contact names in the list's rows, in order."""
    rows = response.content.decode().split('<tr id="contact-')[1:]
    return [row.split("</a>")[0].rsplit(">", 1)[1] for row in rows]


# -- list ----------------------------------------------------------------------------------------
def test_the_list_sorts_by_latest_activity_and_searches(agent_client, chat, whatsapp):
    anna = customer(chat, "v1", name="Anna", email="anna@example.com")
    customer(whatsapp, "w1", name="Bob", phone="+31 6 1111 2222")
    customer(chat, "v3", name="Carol")
    factories.inbound(chat, "Anna again", contact_id="v1")  # Anna is the most recent now
    merged = customer(chat, "v4", name="Merged away")
    merge_contacts(merged, anna, actor=None)

    response = agent_client.get(url("index"))
    assert response.status_code == 200
    assert listed(response) == ["Anna", "Carol", "Bob"]

    assert listed(agent_client.get(url("index"), {"q": "ANNA@example"})) == ["Anna"]
    assert listed(agent_client.get(url("index"), {"q": "1111"})) == ["Bob"]
    assert listed(agent_client.get(url("index"), {"q": "nobody"})) == []


def test_newest_lists_every_contact_by_creation(agent_client, workspace, chat):
    customer(chat, "v1", name="Anna")
    Contact.objects.create(workspace=workspace, name="Imported, never wrote")
    response = agent_client.get(url("index"), {"sort": "newest"})
    assert listed(response) == ["Imported, never wrote", "Anna"]
    assert listed(agent_client.get(url("index"))) == ["Anna"]


def test_filter_by_attribute_and_by_blocked(agent_client, chat, owner):
    anna = customer(chat, "v1", name="Anna")
    bob = customer(chat, "v2", name="Bob")
    customer(chat, "v3", name="Carol")
    update_contact(anna, actor=owner, attributes={"plan": "Pro", "seats": 5})
    update_contact(bob, actor=owner, attributes={"plan": "free"})
    block_contact(bob, actor=owner)

    for sort in ("recent", "newest"):
        get = {"sort": sort}
        assert listed(agent_client.get(url("index"), {**get, "attribute": "plan"})) == [
            "Bob",
            "Anna",
        ]
        only_pro = {**get, "attribute": "plan", "value": "pro"}
        assert listed(agent_client.get(url("index"), only_pro)) == ["Anna"]
        assert listed(agent_client.get(url("index"), {**get, "attribute": "seats"})) == ["Anna"]
        # A name that reads like a lookup is only ever a key.
        odd = {**get, "attribute": "plan__contains", "value": "P"}
        assert listed(agent_client.get(url("index"), odd)) == []
        assert listed(agent_client.get(url("index"), {**get, "blocked": "1"})) == ["Bob"]


def test_keyset_pages_follow_on_and_more_appends_rows(agent_client, workspace, chat):
    for i in range(reads.PAGE_SIZE + 2):
        Contact.objects.create(workspace=workspace, name=f"Person {i:03}")
    first = agent_client.get(url("index"), {"sort": "newest"})
    names = listed(first)
    assert len(names) == reads.PAGE_SIZE and names[0] == f"Person {reads.PAGE_SIZE + 1:03}"
    next_href = first.content.decode().split('class="btn small" href="?')[1].split('"')[0]
    more = agent_client.get(
        url("index") + "?" + next_href.replace("&amp;", "&"), headers={"HX-Request": "true"}
    )
    assert "<html" not in more.content.decode()  # only the rows, for htmx to append
    assert listed(more) == ["Person 001", "Person 000"]
    assert "More contacts" not in more.content.decode()
    assert agent_client.get(url("index"), {"cursor": "not-a-cursor"}).status_code == 200


def test_the_list_query_count_does_not_grow_with_the_rows(agent_client, chat, whatsapp):
    counts = {}
    for sort in ("recent", "newest"):
        for batch in ("a", "b"):
            size = 1 if batch == "a" else 8
            for i in range(size):
                customer(chat, f"{sort}-{batch}-{i}", name=f"C{i}")
                customer(whatsapp, f"{sort}-{batch}-{i}", name=f"W{i}")
            with CaptureQueriesContext(connection) as queries:
                response = agent_client.get(url("index"), {"sort": sort})
            assert response.status_code == 200
            counts[(sort, batch)] = len(queries)
    assert counts[("recent", "a")] == counts[("recent", "b")], counts
    assert counts[("newest", "a")] == counts[("newest", "b")], counts


def test_another_workspaces_contacts_are_never_listed(agent_client, chat):
    customer(chat, "v1", name="Ours")
    customer(factories.api_channel(factories.workspace("other")), "x", name="Theirs")
    for sort in ("recent", "newest"):
        assert listed(agent_client.get(url("index"), {"sort": sort})) == ["Ours"]


# -- detail ----------------------------------------------------------------------------------------
def test_the_detail_shows_identities_conversations_and_attributes(
    agent_client, chat, whatsapp, owner
):
    anna = customer(chat, "v1", name="Anna", email="anna@example.com")
    on_whatsapp = customer(whatsapp, "316123", name="Anna W")
    update_contact(anna, actor=owner, attributes={"plan": "pro"})
    merge_contacts(on_whatsapp, anna, actor=owner)
    numbers = sorted(Conversation.objects.filter(contact=anna).values_list("number", flat=True))

    page = agent_client.get(url("detail", anna.pk)).content.decode()

    assert "Web chat" in page and "WhatsApp" in page and "316123" in page
    for number in numbers:
        assert f'href="/w/acme/inbox/{number}/"' in page
    assert "<dt>plan</dt><dd>pro</dd>" in page
    assert "Anna W" in page and "Undo merge" in page  # the merge in its history


def test_the_detail_query_count_does_not_grow(agent_client, chat, whatsapp, owner):
    anna = customer(chat, "v1", name="Anna")
    detail = url("detail", anna.pk)
    agent_client.get(detail)
    with CaptureQueriesContext(connection) as few:
        agent_client.get(detail)
    for i in range(4):
        other = customer(whatsapp, f"w{i}", name=f"Alias {i}")
        second_conversation(whatsapp, contact_id=f"w{i}")
        merge_contacts(other, anna, actor=owner)
    with CaptureQueriesContext(connection) as many:
        page = agent_client.get(detail).content.decode()
    assert page.count("Undo merge") == 4
    assert len(few) == len(many), (len(few), len(many))


def test_a_merged_contact_points_to_the_one_it_is_part_of(agent_client, chat, owner):
    anna = customer(chat, "v1", name="Anna")
    alias = customer(chat, "v2", name="Alias")
    merge_contacts(alias, anna, actor=owner)
    page = agent_client.get(url("detail", alias.pk)).content.decode()
    assert f'href="/w/acme/contacts/{anna.pk}/"' in page and "was merged into" in page
    assert url("edit", alias.pk) not in page
    response = agent_client.post(url("edit", alias.pk), {"name": "Renamed"}, follow=True)
    assert "cannot be edited" in response.content.decode()
    assert Contact.objects.get(pk=alias.pk).name == "Alias"


# -- edit ----------------------------------------------------------------------------------------
def test_edit_saves_the_contact_and_keeps_attribute_types(agent_client, chat, owner):
    anna = customer(chat, "v1", name="Anna")
    update_contact(anna, actor=owner, attributes={"seats": 5, "vip": True})
    form = agent_client.get(url("edit", anna.pk)).content.decode()
    assert "seats = 5\nvip = true" in form  # sorted by name, whatever the database

    response = agent_client.post(
        url("edit", anna.pk),
        {
            "name": "Anna de Vries",
            "email": "anna@example.com",
            "phone": "+31 6 1",
            "locale": "nl",
            "attributes": "seats = 5\nvip = false\n\nplan = pro",
        },
    )
    assert response.status_code == 302
    assert response["Location"] == url("detail", anna.pk)
    anna.refresh_from_db()
    assert (anna.name, anna.email, anna.phone, anna.locale) == (
        "Anna de Vries",
        "anna@example.com",
        "+31 6 1",
        "nl",
    )
    assert anna.attributes == {"seats": 5, "vip": "false", "plan": "pro"}
    assert "Contact saved." in agent_client.get(url("detail", anna.pk)).content.decode()


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({"email": "not-an-email"}, "Enter a valid email address."),
        ({"attributes": "no separator here"}, "Line 1: write it as name = value."),
        ({"attributes": "a = 1\na = 2"}, "is there twice"),
    ],
)
def test_edit_shows_what_is_wrong(agent_client, chat, data, error):
    anna = customer(chat, "v1", name="Anna")
    response = agent_client.post(url("edit", anna.pk), {"name": "Changed", **data})
    assert response.status_code == 200
    assert error in response.content.decode()
    assert Contact.objects.get(pk=anna.pk).name == "Anna"


# -- merge, undo, block --------------------------------------------------------------------------
def test_merge_by_search_then_undo_from_the_history(agent_client, chat, whatsapp):
    anna = customer(chat, "v1", name="Anna", email="anna@example.com")
    alias = customer(whatsapp, "316", name="Anna on WhatsApp", phone="+316")
    picker = agent_client.get(url("merge", anna.pk), {"q": "anna"}).content.decode()
    assert f'id="candidate-{alias.pk}"' in picker
    assert f'id="candidate-{anna.pk}"' not in picker  # never itself

    response = agent_client.post(url("merge", anna.pk), {"source": alias.pk}, follow=True)
    page = response.content.decode()
    merge = ContactMerge.objects.get()
    # The undo is offered at once, above everything else, and stays in the history.
    assert response.redirect_chain[-1][0] == url("detail", anna.pk) + f"?merged={merge.pk}"
    banner = page.split('id="just-merged"')[1].split("</div>")[0]
    assert "Anna on WhatsApp was merged into Anna" in banner
    assert url("undo_merge", merge.pk) in banner
    assert (merge.source_id, merge.target_id, merge.actor.user.email) == (
        alias.pk,
        anna.pk,
        "agent@acme.example",
    )
    assert url("undo_merge", merge.pk) in page
    assert Contact.objects.get(pk=anna.pk).phone == "+316"

    response = agent_client.post(url("undo_merge", merge.pk), follow=True)
    assert response.redirect_chain[-1][0] == url("detail", alias.pk)
    assert "is a separate contact again" in response.content.decode()
    assert Contact.objects.get(pk=alias.pk).merged_into_id is None
    assert Contact.objects.get(pk=anna.pk).phone == ""

    again = agent_client.post(url("undo_merge", merge.pk), follow=True).content.decode()
    assert "already undone" in again


def test_refused_merges_say_why(agent_client, chat, owner):
    anna = customer(chat, "v1", name="Anna")
    alias = customer(chat, "v2", name="Alias")
    response = agent_client.post(url("merge", anna.pk), {"source": anna.pk}, follow=True)
    assert "cannot be merged with itself" in response.content.decode()
    merge_contacts(alias, anna, actor=owner)
    response = agent_client.post(url("merge", anna.pk), {"source": alias.pk}, follow=True)
    assert "already merged" in response.content.decode()
    assert ContactMerge.objects.count() == 1


def test_block_and_unblock(agent_client, chat):
    anna = customer(chat, "v1", name="Anna")
    assert agent_client.get(url("block", anna.pk)).status_code == 405
    response = agent_client.post(url("block", anna.pk), {"blocked": "1"}, follow=True)
    assert "is blocked" in response.content.decode()
    assert Contact.objects.get(pk=anna.pk).blocked_at is not None
    agent_client.post(url("block", anna.pk), {"blocked": "0"})
    assert Contact.objects.get(pk=anna.pk).blocked_at is None


# -- suggested duplicates ------------------------------------------------------------------------
def test_duplicates_show_the_evidence_and_merge_back_to_the_list(agent_client, chat, whatsapp):
    first = customer(chat, "v1", name="Anna", email="Anna@Example.com")
    second = customer(whatsapp, "316", name="Anna W", email="anna@example.com")
    page = agent_client.get(url("duplicates")).content.decode()
    assert f'id="pair-{first.pk}-{second.pk}"' in page
    assert "Same email: anna@example.com" in page

    response = agent_client.post(
        url("merge", first.pk), {"source": second.pk, "back_to": "duplicates"}
    )
    merge = ContactMerge.objects.get()
    assert response["Location"] == url("duplicates") + f"?merged={merge.pk}"
    assert Contact.objects.get(pk=second.pk).merged_into_id == first.pk
    page = agent_client.get(response["Location"]).content.decode()
    assert "No suggested duplicates." in page
    assert 'id="just-merged"' in page and url("undo_merge", merge.pk) in page
    # Once undone, the offer to undo is gone and the pair is suggested again.
    agent_client.post(url("undo_merge", merge.pk))
    page = agent_client.get(response["Location"]).content.decode()
    assert 'id="just-merged"' not in page and f'id="pair-{first.pk}-{second.pk}"' in page


def test_the_duplicates_query_count_does_not_grow(agent_client, chat, whatsapp):
    counts = []
    for batch, size in (("a", 1), ("b", 6)):
        for i in range(size):
            customer(chat, f"{batch}{i}", email=f"{batch}{i}@example.com")
            customer(whatsapp, f"{batch}{i}", email=f"{batch.upper()}{i}@example.com")
        with CaptureQueriesContext(connection) as queries:
            assert agent_client.get(url("duplicates")).status_code == 200
        counts.append(len(queries))
    assert counts[0] == counts[1], counts


# -- workspaces ------------------------------------------------------------------------------------
def test_another_workspaces_ids_are_404_and_change_nothing(agent_client, chat):
    ours = customer(chat, "v1", name="Ours")
    other = factories.workspace("other")
    theirs = customer(factories.api_channel(other), "x", name="Theirs")
    their_alias = customer(factories.api_channel(other, name="B"), "y", name="Alias")
    their_merge = merge_contacts(their_alias, theirs, actor=None)

    for name in ("detail", "edit", "merge"):
        assert agent_client.get(url(name, theirs.pk)).status_code == 404
    assert agent_client.post(url("edit", theirs.pk), {"name": "x"}).status_code == 404
    assert agent_client.post(url("block", theirs.pk), {"blocked": "1"}).status_code == 404
    assert agent_client.post(url("undo_merge", their_merge.pk)).status_code == 404
    # Their contact cannot be pulled into ours either.
    assert agent_client.post(url("merge", ours.pk), {"source": theirs.pk}).status_code == 404
    # Nor is our contact reachable through their workspace's address.
    assert agent_client.get(url("detail", ours.pk, workspace="other")).status_code == 404

    theirs.refresh_from_db()
    assert (theirs.name, theirs.blocked_at) == ("Theirs", None)
    assert ContactMerge.objects.get(pk=their_merge.pk).undone_at is None
    assert Contact.objects.get(pk=theirs.pk).merged_into_id is None


def test_signed_out_visitors_are_sent_to_sign_in(client, chat):
    anna = customer(chat, "v1", name="Anna")
    response = client.get(url("detail", anna.pk))
    assert response.status_code == 302 and "login" in response["Location"]
