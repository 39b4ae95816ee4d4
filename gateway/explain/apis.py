"""``GET /api/v1/explain?event_id=...&partner=<slug>[&feed=<name>]`` for engineers (staff)."""

from __future__ import annotations

from rest_framework.authentication import SessionAuthentication
from rest_framework.permissions import IsAdminUser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from gateway.errors import InvalidRequest
from gateway.explain.selectors import (
    explain_feed,
    explanation_for,
    exposure_payload,
    partner_by_slug,
)


class ExplainView(APIView):
    """How one stored exposure is decided and shaped for one partner; staff sessions only."""

    authentication_classes = [SessionAuthentication]
    permission_classes = [IsAdminUser]

    def get(self, request: Request) -> Response:
        event_id = request.query_params.get("event_id", "").strip()
        slug = request.query_params.get("partner", "").strip()
        if not event_id or not slug:
            raise InvalidRequest(
                "Both event_id and partner are required.", code="missing_parameter"
            )
        partner = partner_by_slug(slug=slug)
        payload = exposure_payload(event_id=event_id)
        feed = explain_feed(partner=partner, name=request.query_params.get("feed"))
        explanation = explanation_for(partner=partner, payload=payload, feed=feed)
        return Response({"event_id": event_id, **explanation})
