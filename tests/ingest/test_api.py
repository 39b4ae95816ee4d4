"""POST /api/v1/exposures, end to end through HTTP."""

from __future__ import annotations

import gzip
import io
import json
import secrets
import zlib
from datetime import timedelta
from typing import Any

import pytest
from django.core.handlers.wsgi import WSGIRequest
from django.test import Client
from django.utils import timezone
from pytest_django.fixtures import Settings

from gateway.errors import PayloadTooLarge
from gateway.ingest.apis import request_body_read
from gateway.ingest.models import Exposure
from gateway.ingest.services import ingest_token_create, ingest_tokens_revoke
from tests.factories import exposure_payload, make_api_key, make_partner

pytestmark = pytest.mark.django_db

URL = "/api/v1/exposures"
JSON = "application/json"
NDJSON = "application/x-ndjson"


@pytest.fixture
def token() -> str:
    _token, plaintext = ingest_token_create(name="ad-server")
    return plaintext


def _record(**overrides: Any) -> dict[str, Any]:
    # Relative to the real clock: the API judges occurred_at against now.
    overrides.setdefault("occurred_at", (timezone.now() - timedelta(minutes=5)).isoformat())
    return exposure_payload(**overrides)


def _ndjson(records: list[Any]) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in records)


def _post(
    body: bytes,
    *,
    token: str | None,
    content_type: str = JSON,
    encoding: str | None = None,
    authorization: str | None = None,
) -> Any:
    headers: dict[str, str] = {}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    if authorization is not None:
        headers["Authorization"] = authorization
    if encoding is not None:
        headers["Content-Encoding"] = encoding
    # CONTENT_TYPE again: the test client drops the header when the body is empty.
    return Client().post(
        URL, data=body, content_type=content_type, headers=headers, CONTENT_TYPE=content_type
    )


def _assert_problem(response: Any, *, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == status
    assert problem["code"] == code
    assert problem["type"].endswith(f"/problems/{code}")
    assert problem["title"] and problem["detail"]
    return problem


# --- Accepted batches -----------------------------------------------------------------


def test_a_json_array_is_accepted_and_stored(token: str) -> None:
    records = [_record(), _record(event_type="click")]

    response = _post(json.dumps(records).encode(), token=token)

    assert response.status_code == 202
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"accepted": 2, "duplicate": 0, "rejected": 0, "errors": []}
    assert set(Exposure.objects.values_list("event_id", flat=True)) == {
        r["event_id"] for r in records
    }


def test_ndjson_is_accepted_with_blank_lines_ignored(token: str) -> None:
    body = json.dumps(_record()).encode() + b"\n\n" + json.dumps(_record()).encode()

    response = _post(body, token=token, content_type=NDJSON)

    assert response.status_code == 202
    assert response.json()["accepted"] == 2


@pytest.mark.parametrize("content_type", [JSON, NDJSON])
def test_a_gzipped_body_is_accepted(token: str, content_type: str) -> None:
    records = [_record() for _ in range(3)]
    raw = json.dumps(records).encode() if content_type == JSON else _ndjson(records)

    response = _post(gzip.compress(raw), token=token, content_type=content_type, encoding="gzip")

    assert response.status_code == 202
    assert response.json()["accepted"] == 3
    assert Exposure.objects.count() == 3


def test_an_ndjson_line_that_is_not_json_is_a_rejected_row_with_its_index(token: str) -> None:
    good = [_record(), _record()]
    body = json.dumps(good[0]).encode() + b"\n\n{not json}\n" + json.dumps(good[1]).encode()

    response = _post(body, token=token, content_type=NDJSON)

    assert response.status_code == 202
    result = response.json()
    assert (result["accepted"], result["rejected"]) == (2, 1)
    [error] = result["errors"]
    assert (error["index"], error["event_id"]) == (1, None)
    assert error["problems"][0]["code"] == "invalid_json"


def test_a_repeated_event_id_within_a_request_is_a_duplicate(token: str) -> None:
    record = _record()

    response = _post(json.dumps([record, record]).encode(), token=token)

    assert response.json() == {"accepted": 1, "duplicate": 1, "rejected": 0, "errors": []}
    assert Exposure.objects.count() == 1


def test_resending_a_batch_counts_every_record_as_a_duplicate(token: str) -> None:
    body = json.dumps([_record(), _record()]).encode()
    _post(body, token=token)

    response = _post(body, token=token)

    assert response.status_code == 202
    assert response.json() == {"accepted": 0, "duplicate": 2, "rejected": 0, "errors": []}
    assert Exposure.objects.count() == 2


def test_valid_records_are_kept_when_others_in_the_batch_are_rejected(token: str) -> None:
    good = _record()
    bad = _record(geo={"country": "US", "lat": 123.0}, tracking_pixel="x")

    response = _post(json.dumps([bad, good]).encode(), token=token)

    assert response.status_code == 202
    result = response.json()
    assert (result["accepted"], result["duplicate"], result["rejected"]) == (1, 0, 1)
    [error] = result["errors"]
    assert error["index"] == 0
    assert error["event_id"] == bad["event_id"]
    assert {(p["field"], p["code"]) for p in error["problems"]} == {
        ("geo.lat", "out_of_range"),
        ("tracking_pixel", "unknown_field"),
    }
    assert list(Exposure.objects.values_list("event_id", flat=True)) == [good["event_id"]]


def test_strings_postgresql_cannot_store_reject_their_row_not_the_batch(token: str) -> None:
    good = _record()
    nul = _record(campaign_id="cmp\x00")
    surrogate = _record(user_id="\ud800")
    odd_key = _record(**{"\ud800": 1})

    response = _post(json.dumps([nul, surrogate, odd_key, good]).encode(), token=token)

    assert response.status_code == 202
    result = response.json()
    assert (result["accepted"], result["rejected"]) == (1, 3)
    assert [e["problems"][0]["code"] for e in result["errors"]] == [
        "invalid_character",
        "invalid_character",
        "unknown_field",
    ]
    assert list(Exposure.objects.values_list("event_id", flat=True)) == [good["event_id"]]


# --- Bodies refused as a whole ------------------------------------------------------------


@pytest.mark.parametrize("body", [b'[{"event_id": "a"', b"[1,]", b"\xff\xfe", b'[{"lat": NaN}]'])
def test_a_json_body_that_does_not_parse_is_a_malformed_body(token: str, body: bytes) -> None:
    _assert_problem(_post(body, token=token), status=400, code="malformed_body")


def test_a_json_object_instead_of_an_array_is_a_malformed_body(token: str) -> None:
    problem = _assert_problem(
        _post(json.dumps(_record()).encode(), token=token), status=400, code="malformed_body"
    )
    assert "array" in problem["detail"]
    assert not Exposure.objects.exists()


@pytest.mark.parametrize(
    ("body", "content_type", "code"),
    [(b"", JSON, "empty_body"), (b"[]", JSON, "empty_batch"), (b"\n\n", NDJSON, "empty_batch")],
)
def test_an_empty_body_or_batch_is_refused(
    token: str, body: bytes, content_type: str, code: str
) -> None:
    _assert_problem(_post(body, token=token, content_type=content_type), status=400, code=code)


def test_invalid_gzip_is_refused(token: str) -> None:
    body = json.dumps([_record()]).encode()

    response = _post(body, token=token, encoding="gzip")

    _assert_problem(response, status=400, code="invalid_gzip")


def test_a_compressed_body_larger_than_the_limit_as_sent_is_refused(
    token: str, settings: Settings
) -> None:
    settings.INGEST_MAX_BODY_BYTES = 2048
    # Random ids, so that gzip cannot shrink the body below the limit.
    records = [_record(event_id=secrets.token_hex(60)) for _ in range(30)]
    body = gzip.compress(json.dumps(records).encode())
    assert len(body) > 2048

    response = _post(body, token=token, encoding="gzip")

    problem = _assert_problem(response, status=413, code="body_too_large")
    assert problem["max_bytes"] == 2048
    assert not Exposure.objects.exists()


def test_a_declared_length_over_the_limit_is_refused_without_reading_the_body() -> None:
    class Unreadable(io.RawIOBase):
        def read(self, size: int = -1) -> bytes:
            raise AssertionError("the body was read")

    request = WSGIRequest(
        {
            "REQUEST_METHOD": "POST",
            "PATH_INFO": URL,
            "CONTENT_TYPE": JSON,
            "CONTENT_LENGTH": "4097",
            "wsgi.input": Unreadable(),
        }
    )

    with pytest.raises(PayloadTooLarge) as caught:
        request_body_read(request, max_bytes=4096)

    assert caught.value.code == "body_too_large"


def test_a_body_past_djangos_upload_limit_is_a_413_not_a_400(
    token: str, settings: Settings
) -> None:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    body = json.dumps([_record() for _ in range(5)]).encode()
    assert len(body) > 1024

    _assert_problem(_post(body, token=token), status=413, code="body_too_large")


def test_a_gzip_bomb_is_refused(token: str, settings: Settings) -> None:
    settings.INGEST_MAX_DECOMPRESSED_BYTES = 64 * 1024
    # A megabyte of spaces inside a valid array compresses to about a kilobyte.
    body = gzip.compress(b"[" + b" " * (1024 * 1024) + b"]")
    assert len(body) < 4096

    response = _post(body, token=token, encoding="gzip")

    _assert_problem(response, status=413, code="decompressed_body_too_large")


@pytest.mark.parametrize("content_type", [JSON, NDJSON])
def test_more_records_than_the_event_limit_are_refused_and_none_stored(
    token: str, settings: Settings, content_type: str
) -> None:
    settings.INGEST_MAX_EVENTS = 2
    records = [_record() for _ in range(3)]
    body = json.dumps(records).encode() if content_type == JSON else _ndjson(records)

    response = _post(body, token=token, content_type=content_type)

    problem = _assert_problem(response, status=413, code="too_many_events")
    assert problem["max_events"] == 2
    assert not Exposure.objects.exists()


@pytest.mark.parametrize(
    ("content_type", "encoding", "code"),
    [
        ("text/plain", None, "unsupported_content_type"),
        ("application/x-www-form-urlencoded", None, "unsupported_content_type"),
        ("text/csv", "gzip", "unsupported_content_type"),
        (JSON, "br", "unsupported_content_encoding"),
        (JSON, "deflate", "unsupported_content_encoding"),
    ],
)
def test_unsupported_content_types_and_encodings_are_a_415(
    token: str, content_type: str, encoding: str | None, code: str
) -> None:
    body = json.dumps([_record()]).encode()

    response = _post(body, token=token, content_type=content_type, encoding=encoding)

    _assert_problem(response, status=415, code=code)


def test_only_post_is_allowed(token: str) -> None:
    response = Client().get(URL, headers={"Authorization": f"Bearer {token}"})

    _assert_problem(response, status=405, code="method_not_allowed")


# --- Credentials -----------------------------------------------------------------------


def test_a_request_without_credentials_is_a_401_with_a_bearer_challenge() -> None:
    response = _post(json.dumps([_record()]).encode(), token=None)

    _assert_problem(response, status=401, code="missing_credentials")
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert not Exposure.objects.exists()


@pytest.mark.parametrize("authorization", ["Basic dXNlcjpwdw==", "Bearer", "Bearer a b", "mgi_x"])
def test_a_malformed_authorization_header_is_a_401(authorization: str) -> None:
    response = _post(b"[]", token=None, authorization=authorization)

    _assert_problem(response, status=401, code="malformed_credentials")


def test_a_wrong_token_is_a_401(token: str) -> None:
    wrong = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")

    response = _post(json.dumps([_record()]).encode(), token=wrong)

    _assert_problem(response, status=401, code="invalid_token")
    assert not Exposure.objects.exists()


def test_a_partner_api_key_does_not_open_the_ingest_api() -> None:
    api_key = make_api_key(partner=make_partner())

    response = _post(json.dumps([_record()]).encode(), token=api_key)

    _assert_problem(response, status=401, code="invalid_token")


def test_a_revoked_token_is_a_401_with_its_own_code() -> None:
    token, plaintext = ingest_token_create(name="retired")
    ingest_tokens_revoke(token_ids=[token.pk])

    response = _post(json.dumps([_record()]).encode(), token=plaintext)

    _assert_problem(response, status=401, code="revoked_token")
    assert not Exposure.objects.exists()


def test_credentials_are_checked_before_the_body_is_looked_at(settings: Settings) -> None:
    settings.INGEST_MAX_BODY_BYTES = 1024
    huge_and_wrong = zlib.compress(b"x" * 10_000) * 10

    response = _post(huge_and_wrong, token=None, content_type="text/plain", encoding="br")

    _assert_problem(response, status=401, code="missing_credentials")
