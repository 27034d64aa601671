from django.apps import AppConfig


class RealtimeConfig(AppConfig):
    name = "loket.realtime"
    label = "realtime"
