from django.contrib import admin
from django.urls import include, path

from gateway.delivery.metrics import MetricsView
from gateway.partner_api.jwks import PartnerJwksView

admin.site.site_header = "Measurement Gateway"
admin.site.site_title = "Measurement Gateway"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", include("gateway.ingest.urls")),
    path("api/v1/partner/", include("gateway.partner_api.urls")),
    path("api/v1/", include("gateway.explain.urls")),
    path(
        ".well-known/partners/<str:partner_slug>/jwks.json",
        PartnerJwksView.as_view(),
        name="partner-jwks",
    ),
    path("metrics", MetricsView.as_view(), name="metrics"),
]
