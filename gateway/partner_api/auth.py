"""Authentication of partner API calls with ``Authorization: Bearer <api key>``."""

from __future__ import annotations

from rest_framework.authentication import BaseAuthentication
from rest_framework.request import Request

from gateway.api.bearer import bearer_token
from gateway.errors import NotAuthenticated, PermissionDenied
from partners.models import ApiKey, Partner
from partners.selectors import api_key_authenticate


class PartnerApiKeyAuthentication(BaseAuthentication):
    """Bearer API key authentication: ``request.user`` is the Partner, ``request.auth`` the key.

    Every partner endpoint needs a key, so a request without one fails here
    with 401 problem+json instead of falling through to an anonymous user.
    """

    def authenticate(self, request: Request) -> tuple[Partner, ApiKey]:
        api_key = api_key_authenticate(plaintext=bearer_token(request))
        if api_key is None:
            # One message for unknown, mistyped and revoked keys: telling them
            # apart would help someone guessing keys, not the partner.
            raise NotAuthenticated(
                "The API key is not valid or has been revoked.", code="invalid_credentials"
            )
        partner = api_key.partner
        if partner.status == Partner.Status.OFFBOARDED:
            raise PermissionDenied("This partner has been offboarded.", code="partner_offboarded")
        return partner, api_key

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="measurement-gateway"'


def request_partner(request: Request) -> Partner:
    """The partner authenticated by ``PartnerApiKeyAuthentication`` for this request."""
    partner = request.user
    if not isinstance(partner, Partner):
        # Only reachable if a view forgot the authentication class: fail closed.
        raise NotAuthenticated(code="missing_credentials")
    return partner
