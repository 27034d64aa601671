"""Fixtures for the Instagram tests: the Messenger tests' fake Graph API, with a Page linked to
the Instagram account."""

from __future__ import annotations

import pytest

from tests.connectors.messenger import support
from tests.connectors.providers import running

LINKED_PAGE = {
    "id": support.PAGE_ID,
    "name": "Jassen & Co",
    "instagram_business_account": {"id": support.IG_ACCOUNT_ID, "username": "jassenenco"},
}


@pytest.fixture
def graph(settings, transactional_db, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    with running() as provider:
        settings.LOKET_META_GRAPH_URL = provider.url
        yield support.graph_fake(provider, me=LINKED_PAGE)


@pytest.fixture
def instagram(workspace, graph):
    channel, _ = support.make_channel(workspace, "instagram", page_id=support.PAGE_ID)
    return channel
