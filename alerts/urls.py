from django.urls import path

from alerts import views

app_name = "alerts"
urlpatterns = [
    path("", views.AlertListView.as_view(), name="list"),
    path("new/", views.NewAlertsView.as_view(), name="new"),
    path("<id:pk>/ack/", views.AlertActionView.as_view(action="acknowledge"), name="acknowledge"),
    path("<id:pk>/ignore/", views.AlertActionView.as_view(action="ignore"), name="ignore"),
    path("<id:pk>/reopen/", views.AlertActionView.as_view(action="reopen"), name="reopen"),
]
