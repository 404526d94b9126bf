from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path, register_converter

from aimonitor import views
from aimonitor.converters import RowIdConverter

# <id:pk> in every app's urls: a row id that fits bigint.
register_converter(RowIdConverter, "id")

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("alerts/", include("alerts.urls")),
    path("", include("dashboard.urls")),
]
