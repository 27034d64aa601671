"""The search page: plain GET, htmx partials, links into conversations, escaping, query count."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from loket.inbox.models import Message
from tests import factories
from tests.search.test_search import customer_says


@pytest.fixture
def agent_client(client, owner):
    client.force_login(owner.user)
    return client


def url(workspace, **params) -> str:
    query = "&".join(f"{key}={value}" for key, value in params.items())
    return f"/w/{workspace.slug}/search/" + (f"?{query}" if query else "")


def test_the_page_has_the_search_box_the_shortcut_focuses(agent_client, workspace):
    response = agent_client.get(url(workspace))
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="search-input"' in html and 'name="q"' in html
    assert 'method="get"' in html  # works without JavaScript
    assert "hx-get=" in html and "delay:250ms" in html


def test_results_link_to_the_contact_and_to_the_message(agent_client, workspace, api_channel):
    message = customer_says(api_channel, "My charger is missing", name="Ann Charger")
    number = message.conversation.number
    html = agent_client.get(url(workspace, q="charger")).content.decode()
    assert f'href="/w/{workspace.slug}/contacts/{message.author_contact_id}/"' in html
    assert f'href="/w/{workspace.slug}/inbox/{number}/?message={message.pk}#m{message.pk}"' in html
    assert "<mark>charger</mark>" in html
    assert api_channel.name in html and "Ann Charger" in html


def test_the_snippet_is_escaped(agent_client, workspace, api_channel):
    customer_says(api_channel, "<script>alert(1)</script> refund <img src=x onerror=alert(2)>")
    html = agent_client.get(url(workspace, q="refund")).content.decode()
    assert "<script>alert(1)" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; <mark>refund</mark> &lt;img" in html


def test_dates_are_in_the_workspace_time_zone(agent_client, workspace, api_channel):
    workspace.time_zone = "Asia/Tokyo"
    workspace.save()
    message = customer_says(api_channel, "timezone check")
    at = dt.datetime(2026, 1, 5, 23, 30, tzinfo=dt.UTC)  # 08:30 the next day in Tokyo
    Message.objects.filter(pk=message.pk).update(created_at=at)
    html = agent_client.get(url(workspace, q="timezone")).content.decode()
    assert 'datetime="2026-01-06T08:30:00+09:00"' in html


def test_htmx_gets_only_the_results(agent_client, workspace, api_channel):
    customer_says(api_channel, "refund please")
    response = agent_client.get(url(workspace, q="refund"), headers={"HX-Request": "true"})
    html = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in html and 'id="message-hits"' in html and "<mark>refund</mark>" in html


def test_more_results_append_the_next_rows(agent_client, workspace, api_channel):
    for i in range(25):
        customer_says(api_channel, f"refund number {i}", contact=f"c{i}")
    first = agent_client.get(url(workspace, q="refund"), headers={"HX-Request": "true"})
    html = first.content.decode()
    assert html.count("<mark>refund</mark>") == 20
    more = re.search(r'hx-get="([^"]+cursor=[^"]+)"', html).group(1).replace("&amp;", "&")
    rest = agent_client.get(more, headers={"HX-Request": "true"}).content.decode()
    assert rest.count("<mark>refund</mark>") == 5
    assert rest.lstrip().startswith("<tr") and "more-hits" not in rest
    plain = agent_client.get(more).content.decode()  # without JavaScript: a page of its own
    assert "<html" in plain and plain.count("<mark>refund</mark>") == 5


def test_a_made_up_cursor_is_a_bad_request(agent_client, workspace):
    assert agent_client.get(url(workspace, q="refund", cursor="bogus")).status_code == 400


@pytest.mark.parametrize("query", ["", "%22", "*", "NEAR(", "-", "a%20OR", "%00", "%3Cscript%3E"])
def test_odd_queries_render(agent_client, workspace, api_channel, query):
    customer_says(api_channel, "refund please")
    assert agent_client.get(url(workspace, q=query)).status_code == 200


def test_another_workspace_is_not_found_and_not_searched(client, owner, workspace, api_channel):
    other = factories.workspace("other")
    customer_says(factories.api_channel(other), "hidden refund", name="Hidden Person")
    client.force_login(owner.user)
    assert client.get(url(other, q="refund")).status_code == 404
    html = client.get(url(workspace, q="hidden")).content.decode()
    assert "Hidden Person" not in html and "<mark>" not in html


def test_signing_in_is_required(client, workspace):
    response = client.get(url(workspace, q="x"))
    assert response.status_code == 302 and "login" in response["Location"]


def queries_for(client, path) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(path, headers={"HX-Request": "true"})
    assert response.status_code == 200
    return len(captured)


def test_the_query_count_does_not_grow_with_the_results(
    agent_client, workspace, api_channel, django_assert_max_num_queries
):
    customer_says(api_channel, "refund one", contact="a", name="Refund A")
    few = queries_for(agent_client, url(workspace, q="refund"))
    for i in range(30):
        customer_says(api_channel, f"refund {i}", contact=f"c{i}", name=f"Refund {i}")
    with django_assert_max_num_queries(few):
        html = agent_client.get(url(workspace, q="refund"), headers={"HX-Request": "true"})
    assert html.content.decode().count("<mark>refund</mark>") >= 20
    assert few <= 12  # session, user, membership; search: settings, contacts, 2 passes
