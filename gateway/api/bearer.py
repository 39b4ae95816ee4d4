"""Parsing of ``Authorization: Bearer <token>`` headers."""

from __future__ import annotations

from rest_framework.request import Request

from gateway.errors import NotAuthenticated


def bearer_token(request: Request) -> str:
    """The bearer token of the request, or NotAuthenticated with a precise reason."""
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if not header:
        raise NotAuthenticated("Send 'Authorization: Bearer <token>'.", code="missing_credentials")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        raise NotAuthenticated(
            "The Authorization header must be 'Bearer <token>'.", code="malformed_credentials"
        )
    return token
