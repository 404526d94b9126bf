from django.urls import path  # noqa: F401

app_name = "dashboard"
urlpatterns: list = []

from dashboard import batch  # noqa: E402

urlpatterns += [
    path("batch/", batch.BatchView.as_view(), name="batch"),
    path("batch/confirm/", batch.ConfirmBatchView.as_view(), name="batch_confirm"),
    path("batch/cancel/", batch.CancelBatchView.as_view(), name="batch_cancel"),
]

from dashboard import cache, jobs, queue, runs  # noqa: E402

urlpatterns += [
    path("runs/", runs.RunListView.as_view(), name="runs"),
    path("runs/<id:pk>/", runs.RunDetailView.as_view(), name="run_detail"),
    path("jobs/", jobs.JobListView.as_view(), name="jobs"),
    path("jobs/health/", queue.HealthPanelView.as_view(), name="jobs_health"),
    path("jobs/<id:pk>/", jobs.JobDetailView.as_view(), name="job_detail"),
    path("jobs/<id:pk>/retry/", jobs.JobRetryView.as_view(), name="job_retry"),
    path("cache/", cache.CacheListView.as_view(), name="cache"),
]

from dashboard import overview  # noqa: E402

urlpatterns += [
    path("", overview.DashboardView.as_view(), name="index"),
    path("dashboard.json", overview.DashboardJsonView.as_view(), name="json"),
    path("dashboard/panels/<slug:panel>/", overview.PanelView.as_view(), name="panel"),
]
