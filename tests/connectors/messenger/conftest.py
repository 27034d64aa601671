"""Fixtures for the Messenger tests (the Instagram tests use them too)."""

from __future__ import annotations

import pytest

from tests.connectors.messenger import support
from tests.connectors.providers import running


@pytest.fixture
def graph(settings, transactional_db, tmp_path):
    """A fake graph.facebook.com, with the routes a channel's setup and sending need. The tests
    run background tasks (run_tasks), which need committed data: transactional_db."""
    settings.MEDIA_ROOT = tmp_path
    with running() as provider:
        settings.LOKET_META_GRAPH_URL = provider.url
        yield support.graph_fake(provider)


@pytest.fixture
def messenger(workspace, graph):
    channel, _ = support.make_channel(workspace, "messenger")
    return channel
