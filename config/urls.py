from django.contrib import admin
from django.urls import include, path

admin.site.site_header = "Measurement Gateway"
admin.site.site_title = "Measurement Gateway"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", include("gateway.ingest.urls")),
    path("api/v1/partner/", include("gateway.partner_api.urls")),
    path("api/v1/", include("gateway.explain.urls")),
]
