"""Routes under ``/api/v1/partner/``."""

from __future__ import annotations

from django.urls import path

from gateway.partner_api import views

app_name = "partner_api"

urlpatterns = [
    path("batches", views.BatchListView.as_view(), name="batch-list"),
    path("batches/<str:batch_id>", views.BatchDetailView.as_view(), name="batch-detail"),
    path(
        "batches/<str:batch_id>/download",
        views.BatchDownloadView.as_view(),
        name="batch-download",
    ),
    path("reports", views.ReportUploadView.as_view(), name="report-upload"),
]
