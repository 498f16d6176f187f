from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "xrfweb.accounts"
    label = "accounts"

    def ready(self):
        from xrfweb.accounts import throttle  # noqa: F401  (connects the sign-in counters)
