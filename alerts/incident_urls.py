from django.urls import path

from alerts import incident_views

app_name = "incidents"
urlpatterns = [
    path("", incident_views.IncidentListView.as_view(), name="list"),
    path("<id:pk>/ack/", incident_views.IncidentAckView.as_view(), name="acknowledge"),
]
