"""The puller: list, download, verify digest and signature, store once."""

from __future__ import annotations

import gzip
import hashlib
import time
from pathlib import Path
from typing import Any

import pytest
import responses

from gateway.simulator.puller import (
    BATCHES_PATH,
    Puller,
    PullError,
    batch_list_next,
    batch_list_results,
)
from gateway.simulator.store import BatchStore
from tests.simulator.conftest import event, ndjson, new_secret, sign

GATEWAY = "http://127.0.0.1:8999"
LIST_URL = f"{GATEWAY}{BATCHES_PATH}"
BATCH_ID = "0b6f3c7e-0d4a-4a4e-9d5e-1f1f1f1f1f1f"


def _item(batch_id: str, body: bytes, **overrides: Any) -> dict[str, Any]:
    item = {
        "id": batch_id,
        "feed": "verification",
        "sequence": 1,
        "window_start": "2026-11-24T10:00:00Z",
        "window_end": "2026-11-24T10:00:20Z",
        "event_count": body.count(b"\n"),
        "body_sha256": hashlib.sha256(body).hexdigest(),
        "download_url": f"{LIST_URL}/{batch_id}/download",
    }
    item.update(overrides)
    return item


def _serve_batch(
    secret: str,
    batch_id: str,
    body: bytes,
    *,
    compress: bool = False,
    timestamp: int | None = None,
    digest: str | None = None,
    signed_body: bytes | None = None,
) -> None:
    stamp = int(time.time()) if timestamp is None else timestamp
    headers = {
        "webhook-id": batch_id,
        "webhook-timestamp": str(stamp),
        "webhook-signature": sign(
            secret, msg_id=batch_id, timestamp=stamp, body=signed_body or body
        ),
        "X-Content-SHA256": digest or hashlib.sha256(body).hexdigest(),
    }
    if compress:
        headers["Content-Encoding"] = "gzip"
    responses.get(
        f"{LIST_URL}/{batch_id}/download",
        body=gzip.compress(body) if compress else body,
        headers=headers,
        content_type="application/x-ndjson",
    )


def _puller(tmp_path: Path, secret: str | None) -> Puller:
    store = BatchStore(data_dir=tmp_path, time_zone="Europe/London")
    return Puller(store=store, gateway_url=GATEWAY, api_key="mgk_key", secret=secret)


@pytest.mark.parametrize("compress", [False, True])
@responses.activate
def test_it_downloads_verifies_and_stores_a_new_batch(tmp_path: Path, compress: bool) -> None:
    secret = new_secret()
    body = ndjson([event(event_id="1"), event(event_id="2")])
    responses.get(LIST_URL, json={"results": [_item(BATCH_ID, body)], "next": None})
    _serve_batch(secret, BATCH_ID, body, compress=compress)
    puller = _puller(tmp_path, secret)

    stored = puller.poll_once()

    assert stored == [BATCH_ID]
    assert (puller.store.batch_dir / f"{BATCH_ID}.ndjson").read_bytes() == body
    assert sum(puller.store.counts().values()) == 2
    assert all(c.request.headers["Authorization"] == "Bearer mgk_key" for c in responses.calls)
    assert responses.calls[0].request.url == f"{LIST_URL}?limit=100"


@responses.activate
def test_a_batch_already_stored_is_not_downloaded_again(tmp_path: Path) -> None:
    secret = new_secret()
    body = ndjson([event()])
    responses.get(LIST_URL, json={"results": [_item(BATCH_ID, body)], "next": None})
    _serve_batch(secret, BATCH_ID, body)
    puller = _puller(tmp_path, secret)

    puller.poll_once()
    second = puller.poll_once()

    assert second == []
    downloads = [c for c in responses.calls if c.request.url.endswith("/download")]
    assert len(downloads) == 1


@responses.activate
def test_a_body_that_does_not_match_its_digest_is_rejected_and_retried_later(
    tmp_path: Path,
) -> None:
    secret = new_secret()
    body = ndjson([event()])
    responses.get(LIST_URL, json={"results": [_item(BATCH_ID, body)], "next": None})
    _serve_batch(secret, BATCH_ID, body, digest="0" * 64)
    puller = _puller(tmp_path, secret)

    assert puller.poll_once() == []
    assert puller.store.batch_ids() == []


@responses.activate
def test_a_body_that_does_not_match_the_listed_digest_is_rejected(tmp_path: Path) -> None:
    secret = new_secret()
    body = ndjson([event()])
    listed = _item(BATCH_ID, body, body_sha256=hashlib.sha256(b"other").hexdigest())
    responses.get(LIST_URL, json={"results": [listed], "next": None})
    _serve_batch(secret, BATCH_ID, body)

    assert _puller(tmp_path, secret).poll_once() == []


@responses.activate
def test_a_bad_signature_is_rejected(tmp_path: Path) -> None:
    body = ndjson([event()])
    responses.get(LIST_URL, json={"results": [_item(BATCH_ID, body)], "next": None})
    _serve_batch(new_secret(), BATCH_ID, body)

    assert _puller(tmp_path, new_secret()).poll_once() == []


@responses.activate
def test_a_signature_over_a_different_body_is_rejected(tmp_path: Path) -> None:
    secret = new_secret()
    body = ndjson([event()])
    responses.get(LIST_URL, json={"results": [_item(BATCH_ID, body)], "next": None})
    _serve_batch(secret, BATCH_ID, body, signed_body=b"something else\n")

    assert _puller(tmp_path, secret).poll_once() == []


@responses.activate
def test_an_old_signature_timestamp_is_accepted_for_a_pulled_batch(tmp_path: Path) -> None:
    secret = new_secret()
    body = ndjson([event()])
    responses.get(LIST_URL, json={"results": [_item(BATCH_ID, body)], "next": None})
    _serve_batch(secret, BATCH_ID, body, timestamp=int(time.time()) - 7200)

    assert _puller(tmp_path, secret).poll_once() == [BATCH_ID]


@responses.activate
def test_without_a_secret_the_digest_is_still_checked(tmp_path: Path) -> None:
    body = ndjson([event()])
    responses.get(LIST_URL, json={"results": [_item(BATCH_ID, body)], "next": None})
    _serve_batch(new_secret(), BATCH_ID, body)

    assert _puller(tmp_path, None).poll_once() == [BATCH_ID]


@responses.activate
def test_bad_gzip_in_a_download_is_rejected(tmp_path: Path) -> None:
    secret = new_secret()
    body = ndjson([event()])
    responses.get(LIST_URL, json={"results": [_item(BATCH_ID, body)], "next": None})
    responses.get(
        f"{LIST_URL}/{BATCH_ID}/download", body=b"not gzip", headers={"Content-Encoding": "gzip"}
    )

    assert _puller(tmp_path, secret).poll_once() == []


@responses.activate
def test_it_follows_next_pages_until_a_page_holds_nothing_new(tmp_path: Path) -> None:
    secret = new_secret()
    ids = [f"b{n}" for n in range(3)]
    bodies = {batch_id: ndjson([event(event_id=batch_id)]) for batch_id in ids}
    page_2 = f"{LIST_URL}?limit=100&cursor=abc"
    responses.get(
        f"{LIST_URL}?limit=100",
        json={"results": [_item("b0", bodies["b0"])], "next": page_2},
        match=[responses.matchers.query_param_matcher({"limit": "100"})],
    )
    responses.get(
        page_2,
        json={"results": [_item("b1", bodies["b1"]), _item("b2", bodies["b2"])], "next": None},
        match=[responses.matchers.query_param_matcher({"limit": "100", "cursor": "abc"})],
    )
    for batch_id in ids:
        _serve_batch(secret, batch_id, bodies[batch_id])
    puller = _puller(tmp_path, secret)

    assert sorted(puller.poll_once()) == ids
    list_calls_before = len([c for c in responses.calls if "download" not in c.request.url])
    puller.poll_once()
    list_calls_after = len([c for c in responses.calls if "download" not in c.request.url])

    # The first page is all known now: older pages are not fetched again.
    assert list_calls_after - list_calls_before == 1


@responses.activate
def test_it_refuses_to_send_the_api_key_to_another_host(tmp_path: Path) -> None:
    body = ndjson([event()])
    item = _item(BATCH_ID, body, download_url="https://elsewhere.example/steal")
    responses.get(LIST_URL, json={"results": [item], "next": None})

    assert _puller(tmp_path, None).poll_once() == []
    assert all(c.request.url.startswith(GATEWAY) for c in responses.calls)


@responses.activate
def test_a_relative_download_url_is_resolved_against_the_gateway(tmp_path: Path) -> None:
    secret = new_secret()
    body = ndjson([event()])
    item = _item(BATCH_ID, body, download_url=f"{BATCHES_PATH}/{BATCH_ID}/download")
    responses.get(LIST_URL, json={"results": [item], "next": None})
    _serve_batch(secret, BATCH_ID, body)

    assert _puller(tmp_path, secret).poll_once() == [BATCH_ID]


@responses.activate
def test_a_failing_list_raises_so_the_periodic_loop_logs_it(tmp_path: Path) -> None:
    responses.get(LIST_URL, status=401, json={"code": "invalid_credentials"})

    with pytest.raises(PullError, match="401"):
        _puller(tmp_path, None).poll_once()


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({"results": [{"id": "a"}]}, [{"id": "a"}]),
        ({"batches": [{"id": "a"}]}, [{"id": "a"}]),
        ([{"id": "a"}, "junk"], [{"id": "a"}]),
        ({"unexpected": 1}, []),
        ("text", []),
    ],
)
def test_list_results_are_read_from_the_usual_shapes(payload: Any, expected: list) -> None:
    assert batch_list_results(payload) == expected


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({"next": "http://x/2"}, "http://x/2"),
        ({"links": {"next": "/2"}}, "/2"),
        ({"next": None}, None),
        ({"next": ""}, None),
        ([], None),
    ],
)
def test_the_next_page_is_read_from_next_or_links(payload: Any, expected: str | None) -> None:
    assert batch_list_next(payload) == expected
