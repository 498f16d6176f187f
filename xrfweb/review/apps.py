from django.apps import AppConfig


class ReviewConfig(AppConfig):
    name = "xrfweb.review"
    label = "review"
