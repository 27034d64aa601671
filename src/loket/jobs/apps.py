from django.apps import AppConfig
from django.utils.module_loading import autodiscover_modules


class JobsConfig(AppConfig):
    name = "loket.jobs"
    label = "jobs"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Import every app's tasks module so its retry policies and periodic jobs are registered
        # in every process, not only in one that happened to import it (`loket worker` loads no
        # URLconf, so nothing else imports loket.inbox.tasks there).
        autodiscover_modules("tasks")
