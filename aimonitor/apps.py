from django.apps import AppConfig


class AIMonitorConfig(AppConfig):
    name = "aimonitor"
    verbose_name = "AI Monitor"
    default_auto_field = "django.db.models.BigAutoField"
