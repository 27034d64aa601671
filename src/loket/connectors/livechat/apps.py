from django.apps import AppConfig


class LiveChatConfig(AppConfig):
    """An app only so its widget files (static/, templates/) are found beside its code."""

    name = "loket.connectors.livechat"
    label = "livechat"
