"""The one error hierarchy of the gateway.

Every error that reaches a client carries a stable machine-readable ``code``;
the API renders it as RFC 9457 problem+json (see ``gateway.api.problems``).
"""

from __future__ import annotations

from typing import Any


class GatewayError(Exception):
    """Base class: an error with a code, an HTTP status and a human title."""

    status: int = 500
    code: str = "internal_error"
    title: str = "Internal error"

    def __init__(self, detail: str = "", *, code: str | None = None, **extra: Any) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        if code is not None:
            self.code = code
        self.extra = extra


class InvalidRequest(GatewayError):
    status = 400
    code = "invalid_request"
    title = "The request is not valid"


class MalformedBody(InvalidRequest):
    code = "malformed_body"
    title = "The request body cannot be parsed"


class ValidationFailed(InvalidRequest):
    status = 422
    code = "validation_failed"
    title = "The request body failed validation"


class NotAuthenticated(GatewayError):
    status = 401
    code = "not_authenticated"
    title = "Missing or invalid credentials"


class PermissionDenied(GatewayError):
    status = 403
    code = "permission_denied"
    title = "Not allowed"


class NotFound(GatewayError):
    status = 404
    code = "not_found"
    title = "Not found"


class Gone(GatewayError):
    status = 410
    code = "gone"
    title = "No longer available"


class PayloadTooLarge(GatewayError):
    status = 413
    code = "payload_too_large"
    title = "The request body is too large"


class UnsupportedMediaType(GatewayError):
    status = 415
    code = "unsupported_media_type"
    title = "Unsupported content type or encoding"


class DeliveryError(GatewayError):
    """A delivery attempt failed; ``transient`` says whether a retry may succeed."""

    code = "delivery_failed"
    title = "Delivery failed"

    def __init__(self, detail: str = "", *, transient: bool, **extra: Any) -> None:
        super().__init__(detail, **extra)
        self.transient = transient


class KeyPublicationError(GatewayError):
    """A key source offered something that must not be published as a public key."""

    code = "key_publication_failed"
    title = "The verification keys cannot be published"
