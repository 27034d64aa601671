from __future__ import annotations

import pytest

from tests.connectors.providers import Answer, running
from tests.connectors.whatsapp import support


@pytest.fixture
def graph(settings, transactional_db, tmp_path):
    """A fake graph.facebook.com: media look-ups and downloads, sending, uploads. The tests
    run background tasks (run_tasks), which need committed data: transactional_db."""
    settings.MEDIA_ROOT = tmp_path
    with running() as provider:
        settings.LOKET_META_GRAPH_URL = provider.url

        def media_info(request):
            media_id = request.path.rsplit("/", 1)[-1]
            return Answer(
                200,
                {
                    "messaging_product": "whatsapp",
                    "url": f"{provider.url}/whatsapp_business/attachments/?mid={media_id}",
                    "mime_type": "image/jpeg",
                    "sha256": "q3U7yM5mWJ1s0lq3pYJ0p5h2bJm0mYQk8f4mZ1xk2aE=",
                    "file_size": len(support.MEDIA_BYTES),
                    "id": media_id,
                },
            )

        provider.route("GET", r"/v21\.0/\d+", media_info)
        provider.route(
            "GET",
            r"/whatsapp_business/attachments/",
            Answer(200, support.MEDIA_BYTES, content_type="image/jpeg"),
        )
        provider.route(
            "GET", r"/v21\.0/\d+/message_templates", Answer(200, {"data": support.TEMPLATES})
        )
        provider.route("POST", r"/v21\.0/\d+/media", Answer(200, {"id": "4490709327384033"}))
        provider.route(
            "POST",
            r"/v21\.0/\d+/messages",
            lambda request: Answer(200, support.sent_answer(support.wamid())),
        )
        yield provider


@pytest.fixture
def channel(workspace, graph):
    made = support.make_channel(workspace)
    graph.requests.clear()  # creating it synced the templates
    return made
