"""ASGI entry point: lean webhook route, Django, and websockets."""

from __future__ import annotations

import asyncio
import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "loket.settings")

from django.core.asgi import get_asgi_application

django_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from loket.connectors.webhooks import WebhookASGIApp  # noqa: E402
from loket.realtime.publish import bind_server_loop  # noqa: E402
from loket.realtime.routing import websocket_urlpatterns  # noqa: E402

webhooks = WebhookASGIApp()


async def http_app(scope, receive, send):
    if webhooks.matches(scope):
        await webhooks(scope, receive, send)
    else:
        await django_app(scope, receive, send)


router = ProtocolTypeRouter(
    {
        "http": http_app,
        "websocket": AuthMiddlewareStack(URLRouter(websocket_urlpatterns)),
    }
)


async def application(scope, receive, send):
    bind_server_loop(asyncio.get_running_loop())
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    await router(scope, receive, send)
