from django.apps import AppConfig


class ConnectorsConfig(AppConfig):
    name = "loket.connectors"
    label = "connectors"

    def ready(self) -> None:
        from loket.connectors.registry import REGISTRY
        from loket.inbox import ports

        ports.install(REGISTRY)

        from loket.connectors.email.mailboxes import run_supervisor
        from loket.jobs import services

        services.register("mailboxes", run_supervisor)
