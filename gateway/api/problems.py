"""RFC 9457 problem details for every API error, from one exception handler."""

from __future__ import annotations

from typing import Any

from rest_framework import exceptions as drf
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from gateway.errors import GatewayError

PROBLEM_CONTENT_TYPE = "application/problem+json"
PROBLEM_TYPE_BASE = "https://measurement-gateway.invalid/problems/"

# DRF's own exceptions, mapped onto our codes so clients see one vocabulary.
_DRF_CODES: dict[type[drf.APIException], str] = {
    drf.ParseError: "malformed_body",
    drf.NotAuthenticated: "not_authenticated",
    drf.AuthenticationFailed: "not_authenticated",
    drf.PermissionDenied: "permission_denied",
    drf.NotFound: "not_found",
    drf.MethodNotAllowed: "method_not_allowed",
    drf.NotAcceptable: "not_acceptable",
    drf.UnsupportedMediaType: "unsupported_media_type",
    drf.Throttled: "throttled",
    drf.ValidationError: "validation_failed",
}


def problem_response(
    *, status: int, code: str, title: str, detail: str, extra: dict[str, Any] | None = None
) -> Response:
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_BASE + code,
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
    }
    body.update(extra or {})
    response = Response(body, status=status, content_type=PROBLEM_CONTENT_TYPE)
    if status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="measurement-gateway"'
    return response


def problem_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, GatewayError):
        return problem_response(
            status=exc.status, code=exc.code, title=exc.title, detail=exc.detail, extra=exc.extra
        )
    response = drf_exception_handler(exc, context)
    if response is None:
        return None  # unexpected: let Django's 500 handling and logging see it
    code = next((c for t, c in _DRF_CODES.items() if isinstance(exc, t)), "error")
    detail = exc.detail if isinstance(exc, drf.APIException) else str(exc)
    extra = {"errors": detail} if isinstance(exc, drf.ValidationError) else None
    problem = problem_response(
        status=response.status_code,
        code=code,
        title=response.status_text,
        detail=str(detail) if not isinstance(detail, (dict, list)) else "See errors.",
        extra=extra,
    )
    for header in ("Allow", "Retry-After"):
        if header in response:
            problem[header] = response[header]
    return problem
