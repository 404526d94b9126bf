from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AIMonitorConfig(AppConfig):
    name = "aimonitor"
    verbose_name = _("AI Monitor")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from aimonitor import timestamps

        timestamps.register()
