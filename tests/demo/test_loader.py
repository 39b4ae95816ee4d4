"""The demo's ingest client: gzip NDJSON chunks through the real ingest API contract."""

from __future__ import annotations

import gzip
import json

import pytest
import responses

from gateway.demo.loader import (
    INGEST_PATH,
    IngestClient,
    IngestFailed,
    exposures_load,
    ndjson_gzip,
)

GATEWAY = "http://127.0.0.1:8999"
URL = GATEWAY + INGEST_PATH


def _records(n: int) -> list[dict]:
    return [{"event_id": f"e{i}", "n": i} for i in range(n)]


def test_ndjson_gzip_is_one_compact_json_object_per_line() -> None:
    text = gzip.decompress(ndjson_gzip(_records(2))).decode()

    assert text == '{"event_id":"e0","n":0}\n{"event_id":"e1","n":1}\n'


@responses.activate
def test_each_chunk_is_posted_gzipped_with_the_ingest_token() -> None:
    responses.post(URL, status=202, json={"accepted": 2, "duplicate": 0, "rejected": 0})
    client = IngestClient(gateway_url=GATEWAY + "/", token="mgi_token")

    totals = exposures_load(client=client, records=_records(5), chunk_size=2)

    assert (totals.requests, totals.accepted) == (3, 6)
    request = responses.calls[0].request
    assert request.headers["Authorization"] == "Bearer mgi_token"
    assert request.headers["Content-Type"] == "application/x-ndjson"
    assert request.headers["Content-Encoding"] == "gzip"
    lines = gzip.decompress(request.body).decode().splitlines()
    assert [json.loads(line)["event_id"] for line in lines] == ["e0", "e1"]


@responses.activate
def test_totals_add_up_and_keep_the_first_few_row_errors() -> None:
    errors = [{"index": i, "event_id": None, "problems": []} for i in range(4)]
    answer = {"accepted": 1, "duplicate": 2, "rejected": 4, "errors": errors}
    responses.post(URL, status=202, json=answer)

    totals = exposures_load(
        client=IngestClient(gateway_url=GATEWAY, token="t"), records=_records(4), chunk_size=2
    )

    assert (totals.accepted, totals.duplicate, totals.rejected) == (2, 4, 8)
    assert len(totals.errors) == 5


@responses.activate
def test_a_refused_request_raises_with_the_status() -> None:
    responses.post(URL, status=401, json={"code": "invalid_token"})

    with pytest.raises(IngestFailed, match="401"):
        IngestClient(gateway_url=GATEWAY, token="t").post(_records(1))


def test_an_unreachable_gateway_raises_ingest_failed() -> None:
    # Port 9 (discard) is closed on loopback: the connection is refused at once.
    with pytest.raises(IngestFailed):
        IngestClient(gateway_url="http://127.0.0.1:9", token="t", timeout=2).post(_records(1))


@responses.activate
def test_loading_stops_between_chunks_when_asked() -> None:
    responses.post(URL, status=202, json={"accepted": 1})
    calls: list[int] = []

    def should_stop() -> bool:
        calls.append(1)
        return len(calls) > 1

    totals = exposures_load(
        client=IngestClient(gateway_url=GATEWAY, token="t"),
        records=_records(10),
        chunk_size=2,
        should_stop=should_stop,
    )

    assert totals.requests == 1
