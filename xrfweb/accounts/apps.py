from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "xrfweb.accounts"
    label = "accounts"
