from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path, register_converter

from aimonitor import throttle, views
from aimonitor.converters import RowIdConverter
from alerts import metrics

# <id:pk> in every app's urls: a row id that fits bigint.
register_converter(RowIdConverter, "id")
# The admin's login form counts failed sign-ins like the console's (aimonitor/throttle.py).
admin.site.login_form = throttle.ThrottledAdminAuthenticationForm

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("metrics", metrics.metrics, name="metrics"),
    path("accounts/login/", throttle.ThrottledLoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/login/", throttle.admin_login),
    path("admin/", admin.site.urls),
    # set_language (POST /i18n/setlang/): the language switcher in base.html.
    path("i18n/", include("django.conf.urls.i18n")),
    path("alerts/", include("alerts.urls")),
    path("incidents/", include("alerts.incident_urls")),
    path("", include("dashboard.urls")),
]
