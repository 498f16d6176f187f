from django.apps import AppConfig


class ProjectsConfig(AppConfig):
    name = "xrfweb.projects"
    label = "projects"
