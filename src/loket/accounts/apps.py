from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "loket.accounts"
    label = "accounts"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_in

        from loket.accounts.notices import tell_about_two_factor_deadline

        user_logged_in.connect(tell_about_two_factor_deadline, dispatch_uid="loket-2fa-deadline")
