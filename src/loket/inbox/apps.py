from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _repair_search_index(sender, using, **kwargs) -> None:
    # Django rebuilds an SQLite table for many field changes, which drops the FTS triggers;
    # search would then silently stop following writes. A no-op when all is intact.
    from loket.inbox.search import ensure_sqlite_index

    ensure_sqlite_index(using)


class InboxConfig(AppConfig):
    name = "loket.inbox"
    label = "inbox"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        post_migrate.connect(_repair_search_index, sender=self)
