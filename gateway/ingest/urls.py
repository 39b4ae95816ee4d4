from django.urls import URLPattern, path

from gateway.ingest.apis import ExposureIngestApi

urlpatterns: list[URLPattern] = [
    path("exposures", ExposureIngestApi.as_view(), name="exposures-ingest"),
]
