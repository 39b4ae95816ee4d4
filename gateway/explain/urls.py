"""Routes under ``/api/v1/`` for explanations."""

from __future__ import annotations

from django.urls import path

from gateway.explain import apis

app_name = "explain"

urlpatterns = [
    path("explain", apis.ExplainView.as_view(), name="explain"),
]
