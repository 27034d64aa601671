from django.apps import AppConfig


class KnowledgeConfig(AppConfig):
    name = "loket.knowledge"
    label = "knowledge"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from loket.knowledge import images  # noqa: F401  (deletes an image's file with its row)
