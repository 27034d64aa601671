from django.urls import path

from loket.connectors.livechat.consumers import WidgetConsumer
from loket.realtime.consumers import AgentConsumer

websocket_urlpatterns = [
    path("ws/agent/", AgentConsumer.as_asgi()),
    path("ws/widget/<str:channel_uuid>/", WidgetConsumer.as_asgi()),
]
