"""The ingest API our ad servers call: ``POST /api/v1/exposures``."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from gateway.api.bearer import bearer_token
from gateway.errors import PayloadTooLarge
from gateway.ingest.parsing import body_format_negotiate, records_parse
from gateway.ingest.selectors import ingest_token_authenticate
from gateway.ingest.services import exposures_ingest


class ExposureIngestApi(APIView):
    """Accept a batch of exposures as a JSON array or NDJSON, optionally gzipped.

    Answers 202 with per-row outcomes; errors of the request as a whole
    (credentials, framing, size) are problem+json.
    """

    # The body is read and parsed here, not by DRF: DRF would buffer it whole
    # without our limits and knows neither NDJSON nor gzip.
    parser_classes = ()

    def post(self, request: Request) -> Response:
        ingest_token_authenticate(plaintext=bearer_token(request))
        body_format = body_format_negotiate(
            content_type=request.META.get("CONTENT_TYPE", ""),
            content_encoding=request.META.get("HTTP_CONTENT_ENCODING", ""),
        )
        records = records_parse(
            body=request_body_read(request._request, max_bytes=settings.INGEST_MAX_BODY_BYTES),
            body_format=body_format,
            max_decompressed_bytes=settings.INGEST_MAX_DECOMPRESSED_BYTES,
            max_events=settings.INGEST_MAX_EVENTS,
        )
        result = exposures_ingest(records=records)
        return Response(result.as_json(), status=202)


def request_body_read(request: HttpRequest, *, max_bytes: int) -> bytes:
    """The raw body, refusing (413) one larger than ``max_bytes`` before reading it."""
    too_large = PayloadTooLarge(
        f"The request body may be at most {max_bytes} bytes as sent.",
        code="body_too_large",
        max_bytes=max_bytes,
    )
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0  # as Django does: an unreadable length reads as an empty body
    if declared > max_bytes:
        raise too_large
    try:
        body = request.body
    except RequestDataTooBig as exc:  # past DATA_UPLOAD_MAX_MEMORY_SIZE
        raise too_large from exc
    # Django reads no more than Content-Length; this guards a server that does not.
    if len(body) > max_bytes:
        raise too_large
    return body
