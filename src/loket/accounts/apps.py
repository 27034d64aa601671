from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "loket.accounts"
    label = "accounts"
