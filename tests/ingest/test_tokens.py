"""Ingest tokens: issuing, authenticating, revoking, and the create_ingest_token command."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command

from gateway.errors import NotAuthenticated
from gateway.ingest.models import IngestToken
from gateway.ingest.selectors import ingest_token_authenticate
from gateway.ingest.services import ingest_token_create, ingest_tokens_revoke
from partners.secrets import token_issue

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def _auth_code(plaintext: str) -> str:
    with pytest.raises(NotAuthenticated) as caught:
        ingest_token_authenticate(plaintext=plaintext, now=NOW)
    assert caught.value.status == 401
    return caught.value.code


def test_a_new_token_is_returned_in_plaintext_once_and_stored_only_as_a_hash() -> None:
    token, plaintext = ingest_token_create(name="ad-server-eu")

    assert plaintext.startswith(f"mgi_{token.prefix}_")
    stored = IngestToken.objects.get(pk=token.pk)
    assert stored.name == "ad-server-eu"
    assert stored.token_hash != plaintext
    assert plaintext not in {stored.token_hash, stored.prefix, stored.name}
    assert stored.revoked_at is None


def test_a_token_needs_a_name() -> None:
    with pytest.raises(ValidationError):
        ingest_token_create(name="")
    assert not IngestToken.objects.exists()


def test_a_valid_token_authenticates_and_records_its_use() -> None:
    token, plaintext = ingest_token_create(name="ad-server")

    assert ingest_token_authenticate(plaintext=plaintext, now=NOW) == token
    token.refresh_from_db()
    assert token.last_used_at == NOW


def test_last_use_is_written_at_most_once_a_minute() -> None:
    token, plaintext = ingest_token_create(name="ad-server")
    ingest_token_authenticate(plaintext=plaintext, now=NOW)

    ingest_token_authenticate(plaintext=plaintext, now=NOW + timedelta(seconds=59))
    token.refresh_from_db()
    assert token.last_used_at == NOW

    later = NOW + timedelta(seconds=61)
    ingest_token_authenticate(plaintext=plaintext, now=later)
    token.refresh_from_db()
    assert token.last_used_at == later


def test_a_token_with_the_right_prefix_but_the_wrong_secret_is_invalid() -> None:
    token, _plaintext = ingest_token_create(name="ad-server")
    forged = f"mgi_{token.prefix}_{'A' * 43}"

    assert _auth_code(forged) == "invalid_token"
    token.refresh_from_db()
    assert token.last_used_at is None


@pytest.mark.parametrize(
    "plaintext",
    ["", "garbage", "mgi_short_secret", "mgi__", token_issue("mgi").plaintext],
)
def test_an_unknown_or_ill_shaped_token_is_invalid(plaintext: str) -> None:
    ingest_token_create(name="ad-server")

    assert _auth_code(plaintext) == "invalid_token"


def test_a_partner_api_key_is_not_an_ingest_token() -> None:
    _token, plaintext = ingest_token_create(name="ad-server")
    # Same prefix and secret under the partner-key kind: refused, not looked up.
    as_partner_key = "mgk" + plaintext[3:]

    assert _auth_code(as_partner_key) == "invalid_token"


def test_a_revoked_token_is_refused_with_its_own_code() -> None:
    token, plaintext = ingest_token_create(name="ad-server")
    ingest_tokens_revoke(token_ids=[token.pk], now=NOW)

    assert _auth_code(plaintext) == "revoked_token"


def test_revoking_only_touches_active_tokens_and_counts_them() -> None:
    active, _ = ingest_token_create(name="a")
    already, _ = ingest_token_create(name="b")
    untouched, _ = ingest_token_create(name="c")
    earlier = NOW - timedelta(days=3)
    ingest_tokens_revoke(token_ids=[already.pk], now=earlier)

    count = ingest_tokens_revoke(token_ids=[active.pk, already.pk], now=NOW)

    assert count == 1
    active.refresh_from_db()
    already.refresh_from_db()
    untouched.refresh_from_db()
    assert active.revoked_at == NOW
    assert already.revoked_at == earlier
    assert untouched.revoked_at is None


def test_the_command_prints_a_working_token_and_nothing_else_on_stdout() -> None:
    stdout, stderr = StringIO(), StringIO()

    call_command("create_ingest_token", "--name", "ad-server-us", stdout=stdout, stderr=stderr)

    plaintext = stdout.getvalue().strip()
    token = ingest_token_authenticate(plaintext=plaintext)
    assert token.name == "ad-server-us"
    assert "not shown again" in stderr.getvalue()
    assert plaintext not in stderr.getvalue()


def test_the_command_requires_a_non_blank_name() -> None:
    with pytest.raises(CommandError):
        call_command("create_ingest_token", "--name", "", stdout=StringIO(), stderr=StringIO())
    with pytest.raises(CommandError):
        call_command("create_ingest_token", stdout=StringIO(), stderr=StringIO())
