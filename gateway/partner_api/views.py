"""Partner API endpoints: thin views that parse, call one selector or service, serialise."""

from __future__ import annotations

import uuid

from django.http import FileResponse
from django.urls import reverse
from django.utils import timezone
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from gateway.errors import NotFound
from gateway.partner_api.auth import PartnerApiKeyAuthentication, request_partner
from gateway.partner_api.params import batch_list_params
from gateway.partner_api.representations import batch_data
from gateway.partner_api.selectors import batch_for_partner, batch_page
from gateway.partner_api.services import batch_download, partner_reports_upsert

NDJSON_CONTENT_TYPE = "application/x-ndjson"


class NdjsonRenderer(JSONRenderer):
    """Lets clients send ``Accept: application/x-ndjson`` to the download endpoint.

    DRF negotiates before the view runs, so without it such a request would get
    406. Errors are still JSON objects (one line) with a problem+json type.
    """

    media_type = NDJSON_CONTENT_TYPE
    format = "ndjson"


class PartnerView(APIView):
    """Base of every partner endpoint: API key authentication, nothing else."""

    authentication_classes = [PartnerApiKeyAuthentication]
    permission_classes = []


class BatchListView(PartnerView):
    """``GET /batches``: the partner's ready pull batches, newest first, by cursor."""

    def get(self, request: Request) -> Response:
        params = batch_list_params(request.query_params.lists())
        page = batch_page(partner=request_partner(request), params=params)
        next_url = None
        if page.next_cursor is not None:
            query = request.query_params.copy()
            query["cursor"] = page.next_cursor.encode()
            next_url = request.build_absolute_uri(
                f"{reverse('partner_api:batch-list')}?{query.urlencode()}"
            )
        return Response(
            {
                "results": [batch_data(batch=batch, request=request) for batch in page.batches],
                "next_cursor": page.next_cursor.encode() if page.next_cursor else None,
                "next": next_url,
            }
        )


class BatchDetailView(PartnerView):
    """``GET /batches/<id>``: one batch's metadata."""

    def get(self, request: Request, batch_id: str) -> Response:
        batch = batch_for_partner(partner=request_partner(request), batch_id=_uuid(batch_id))
        return Response(batch_data(batch=batch, request=request))


class BatchDownloadView(PartnerView):
    """``GET /batches/<id>/download``: the NDJSON body with signature and digest headers."""

    renderer_classes = [JSONRenderer, NdjsonRenderer]
    # No HEAD: Django would run GET for it and mark the batch as downloaded.
    http_method_names = ["get", "options"]

    def get(self, request: Request, batch_id: str) -> FileResponse:
        download = batch_download(
            partner=request_partner(request), batch_id=_uuid(batch_id), now=timezone.now()
        )
        body = download.body
        # Streamed, sized by Content-Length, and closed (a made body deleted) once sent.
        response = FileResponse(body.file(), content_type=body.content_type)
        for name, value in body.headers().items():
            response[name] = value
        response["X-Content-SHA256"] = download.body_sha256
        for name, value in download.webhook_headers.items():
            response[name] = value
        batch = download.batch
        filename = f"{batch.feed.name}-{batch.sequence:08d}.ndjson"
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        response["Cache-Control"] = "private, no-store"
        return response


class ReportUploadView(PartnerView):
    """``POST /reports``: counts the partner measured, all rows stored or none."""

    def post(self, request: Request) -> Response:
        result = partner_reports_upsert(
            partner=request_partner(request), body=request.data, now=timezone.now()
        )
        return Response({"created": result.created, "updated": result.updated})


def _uuid(value: str) -> uuid.UUID:
    # The URL takes any string so a malformed id is a problem+json 404, not Django's HTML page.
    try:
        return uuid.UUID(value)
    except ValueError as exc:
        raise NotFound("No such batch.", code="batch_not_found") from exc
