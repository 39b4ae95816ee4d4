"""Read queries of the ingest side."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.utils import timezone

from gateway.errors import NotAuthenticated
from gateway.ingest.models import IngestToken
from gateway.ingest.services import INGEST_TOKEN_KIND
from partners.secrets import token_matches, token_prefix

# How stale last_used_at may get: writing it on every request would serialise them.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def ingest_token_authenticate(*, plaintext: str, now: datetime | None = None) -> IngestToken:
    """The active ingest token matching ``plaintext``; NotAuthenticated (401) otherwise.

    A revoked token gets its own code only when the caller proved it holds the
    real token, so the code tells a guesser nothing.
    """
    prefix = token_prefix(plaintext, INGEST_TOKEN_KIND)
    token = IngestToken.objects.filter(prefix=prefix).first() if prefix else None
    if token is None or not token_matches(plaintext, token.token_hash):
        raise NotAuthenticated("The ingest token is not valid.", code="invalid_token")
    if token.revoked_at is not None:
        raise NotAuthenticated("The ingest token has been revoked.", code="revoked_token")
    now = now or timezone.now()
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
        token.last_used_at = now
        IngestToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token
