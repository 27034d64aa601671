from django.apps import AppConfig


class AutomationConfig(AppConfig):
    name = "loket.automation"
    label = "automation"
    default_auto_field = "django.db.models.BigAutoField"
