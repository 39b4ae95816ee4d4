"""``GET /.well-known/partners/<slug>/jwks.json``: a partner's Ed25519 verification keys.

A JWK Set (RFC 7517) of OKP/Ed25519 keys (RFC 8037), one per v1a signing key
that signs now or will (active, in a rotation's overlap, or not yet active);
retired and revoked keys are left out. HMAC secrets are shared secrets and are
never published, so a partner with only v1 keys gets an empty ``keys`` list.

The keys come from the source the ``SIGNING_PUBLIC_KEYS`` setting names (the
database by default; a KMS-backed deployment plugs its own), checked to be
Ed25519 public keys before anything is published: a source that offers
anything else, a private key above all, gets a problem+json 500 and is logged.

Public keys are public: no authentication, and shared caches may keep the
document for a few minutes. That is safe because a rotation keeps the old key
signing for an overlap far longer than the cache lifetime.
"""

from __future__ import annotations

import logging

from django.utils import timezone
from django.utils.cache import patch_cache_control
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from gateway.delivery.signers import published_public_keys
from gateway.errors import KeyPublicationError, NotFound
from partners.models import Partner

logger = logging.getLogger(__name__)

JWKS_CONTENT_TYPE = "application/jwk-set+json"
JWKS_MAX_AGE_SECONDS = 300


class JwkSetRenderer(JSONRenderer):
    """Renders the document as ``application/jwk-set+json`` (RFC 7517 section 8.5).

    First in the view's list, so it is the default; clients asking for
    ``application/json`` get the same document under that type.
    """

    media_type = JWKS_CONTENT_TYPE
    format = "jwks"


class PartnerJwksView(APIView):
    """The JWK Set of one partner's v1a public keys; unknown partners get a problem+json 404."""

    authentication_classes = []
    permission_classes = []
    renderer_classes = [JwkSetRenderer, JSONRenderer]
    http_method_names = ["get", "head", "options"]

    def get(self, request: Request, partner_slug: str) -> Response:
        partner = Partner.objects.filter(slug=partner_slug).first()
        if partner is None:
            raise NotFound("No partner has this slug.", code="partner_not_found")
        try:
            keys = published_public_keys(partner=partner, at=timezone.now())
        except KeyPublicationError as exc:
            logger.error("JWKS of partner %s not published: %s", partner.slug, exc.detail)
            raise
        response = Response({"keys": keys})
        patch_cache_control(response, public=True, max_age=JWKS_MAX_AGE_SECONDS)
        return response
