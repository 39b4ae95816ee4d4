"""The push receiver, over real HTTP on 127.0.0.1: signatures, gzip, dedupe, faults, counts."""

from __future__ import annotations

import gzip
import json
import socket
import time
from datetime import date
from pathlib import Path

import pytest
import requests

from gateway.simulator.server import HEALTH_PATH, STATS_PATH, PartnerSimulator
from tests.simulator.conftest import event, ndjson, new_secret, push, sign, signed_headers


def test_it_accepts_a_correctly_signed_batch_and_stores_it_on_disk(
    simulator: PartnerSimulator, secret: str
) -> None:
    records = [event(event_id="a"), event(event_id="b")]

    response = push(simulator.url, secret, records, msg_id="batch-ok")

    assert response.status_code == 200
    assert response.json() == {"status": "accepted", "events": 2}
    stored = simulator.store.batch_dir / "batch-ok.ndjson"
    assert stored.read_bytes() == ndjson(records)
    assert simulator.stats().batch_ids == ["batch-ok"]


def test_it_accepts_a_gzipped_batch_whose_signature_covers_the_uncompressed_bytes(
    simulator: PartnerSimulator, secret: str
) -> None:
    response = push(simulator.url, secret, [event()], msg_id="batch-gz", compress=True)

    assert response.status_code == 200
    assert simulator.stats().requests[-1].headers["content-encoding"] == "gzip"
    # Stored decompressed, exactly the bytes that were signed.
    assert (simulator.store.batch_dir / "batch-gz.ndjson").read_bytes() == ndjson([event()])


def test_it_rejects_a_signature_made_with_another_secret_with_401(
    simulator: PartnerSimulator,
) -> None:
    response = push(simulator.url, new_secret(), [event()])

    assert response.status_code == 401
    assert response.json()["code"] == "invalid_signature"
    assert simulator.stats().batch_ids == []
    assert simulator.stats().requests[-1].outcome == "rejected"


def test_it_rejects_a_body_tampered_with_after_signing(
    simulator: PartnerSimulator, secret: str
) -> None:
    body = ndjson([event(campaign_id="cmp-1")])
    headers = signed_headers(secret, body)
    tampered = body.replace(b"cmp-1", b"cmp-2")

    response = requests.post(f"{simulator.url}/x", data=tampered, headers=headers, timeout=10)

    assert response.status_code == 401
    assert simulator.store.counts() == {}


def test_it_rejects_a_signature_computed_over_the_compressed_bytes(
    simulator: PartnerSimulator, secret: str
) -> None:
    compressed = gzip.compress(ndjson([event()]))
    headers = signed_headers(secret, compressed) | {"Content-Encoding": "gzip"}

    response = requests.post(f"{simulator.url}/x", data=compressed, headers=headers, timeout=10)

    assert response.status_code == 401


def test_it_rejects_a_timestamp_older_than_five_minutes(
    simulator: PartnerSimulator, secret: str
) -> None:
    response = push(simulator.url, secret, [event()], timestamp=int(time.time()) - 600)

    assert response.status_code == 401
    assert "too old" in response.json()["error"]


def test_it_rejects_a_timestamp_from_the_future(simulator: PartnerSimulator, secret: str) -> None:
    response = push(simulator.url, secret, [event()], timestamp=int(time.time()) + 600)

    assert response.status_code == 401


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_it_rejects_a_request_missing_a_signature_header(
    simulator: PartnerSimulator, secret: str, missing: str
) -> None:
    body = ndjson([event()])
    headers = signed_headers(secret, body)
    del headers[missing]

    response = requests.post(f"{simulator.url}/x", data=body, headers=headers, timeout=10)

    assert response.status_code == 401


@pytest.mark.parametrize("signature", ["garbage", "v1,not*base64", "v1", ""])
def test_it_rejects_a_malformed_signature_header_without_crashing(
    simulator: PartnerSimulator, secret: str, signature: str
) -> None:
    body = ndjson([event()])
    headers = signed_headers(secret, body) | {"webhook-signature": signature}

    response = requests.post(f"{simulator.url}/x", data=body, headers=headers, timeout=10)

    assert response.status_code == 401


def test_it_accepts_when_one_of_several_signatures_matches(
    simulator: PartnerSimulator, secret: str
) -> None:
    # During secret rotation a sender signs with the old and the new secret.
    body = ndjson([event()])
    headers = signed_headers(secret, body)
    other = sign(
        new_secret(), msg_id="batch-1", timestamp=int(headers["webhook-timestamp"]), body=body
    )
    headers["webhook-signature"] = f"{other} {headers['webhook-signature']}"

    response = requests.post(f"{simulator.url}/x", data=body, headers=headers, timeout=10)

    assert response.status_code == 200


@pytest.mark.parametrize(
    "payload",
    [b"this is not gzip", gzip.compress(b'{"a": 1}\n')[:-6], b""],
    ids=["not-gzip", "truncated", "empty"],
)
def test_it_rejects_a_body_that_is_not_valid_gzip_with_400(
    simulator: PartnerSimulator, secret: str, payload: bytes
) -> None:
    headers = signed_headers(secret, payload) | {"Content-Encoding": "gzip"}

    response = requests.post(f"{simulator.url}/x", data=payload, headers=headers, timeout=10)

    assert response.status_code == 400
    assert response.json()["code"] == "bad_gzip"


def test_it_rejects_an_unknown_content_encoding_with_415(
    simulator: PartnerSimulator, secret: str
) -> None:
    body = ndjson([event()])
    headers = signed_headers(secret, body) | {"Content-Encoding": "br"}

    response = requests.post(f"{simulator.url}/x", data=body, headers=headers, timeout=10)

    assert response.status_code == 415


def test_it_rejects_a_signed_body_that_is_not_ndjson_and_stores_nothing(
    simulator: PartnerSimulator, secret: str
) -> None:
    body = b'{"event_id": "a"}\nnot json\n'

    response = requests.post(
        f"{simulator.url}/x", data=body, headers=signed_headers(secret, body), timeout=10
    )

    assert response.status_code == 400
    assert response.json()["code"] == "bad_ndjson"
    assert simulator.stats().batch_ids == []


@pytest.mark.parametrize("batch_id", ["../escape", ".hidden", "a/b", "x" * 200])
def test_it_refuses_a_webhook_id_that_is_unsafe_as_a_file_name(
    simulator: PartnerSimulator, secret: str, batch_id: str
) -> None:
    response = push(simulator.url, secret, [event()], msg_id=batch_id)

    assert response.status_code == 400
    assert list(simulator.store.batch_dir.iterdir()) == []


def test_it_rejects_a_body_over_the_size_limit_with_413_before_reading_it(
    tmp_path: Path, secret: str
) -> None:
    with PartnerSimulator(data_dir=tmp_path, secret=secret, max_body_bytes=1000) as sim:
        response = push(sim.url, secret, [event(event_id=f"e{i}") for i in range(50)])

    assert response.status_code == 413


def test_it_rejects_gzip_that_expands_beyond_the_size_limit_with_413(
    tmp_path: Path, secret: str
) -> None:
    with PartnerSimulator(data_dir=tmp_path, secret=secret, max_body_bytes=10_000) as sim:
        body = b"\n" * 50_000
        headers = signed_headers(secret, body) | {"Content-Encoding": "gzip"}
        response = requests.post(sim.url, data=gzip.compress(body), headers=headers, timeout=10)

    assert response.status_code == 413


def test_a_repeated_webhook_id_is_acknowledged_but_stored_and_counted_once(
    simulator: PartnerSimulator, secret: str
) -> None:
    first = push(simulator.url, secret, [event()], msg_id="batch-dup")
    retry = push(simulator.url, secret, [event()], msg_id="batch-dup", compress=True)

    assert (first.status_code, retry.status_code) == (200, 200)
    assert retry.json()["status"] == "duplicate"
    stats = simulator.stats()
    assert stats.batch_ids == ["batch-dup"]
    assert stats.event_total == 1
    assert [r.outcome for r in stats.requests] == ["accepted", "duplicate"]


def test_the_response_plan_answers_the_first_requests_in_order_without_storing(
    tmp_path: Path, secret: str
) -> None:
    with PartnerSimulator(data_dir=tmp_path, secret=secret, respond=[500, 503, 200]) as sim:
        statuses = [push(sim.url, secret, [event()], msg_id="b1").status_code for _ in range(4)]
        stats = sim.stats()

    assert statuses == [500, 503, 200, 200]
    assert [r.outcome for r in stats.requests] == [
        "planned_failure",
        "planned_failure",
        "accepted",
        "duplicate",
    ]
    assert stats.batch_ids == ["b1"]


def test_a_planned_failure_answers_even_an_unsigned_request(tmp_path: Path, secret: str) -> None:
    with PartnerSimulator(data_dir=tmp_path, secret=secret, respond=[429]) as sim:
        response = requests.post(sim.url, data=b"x", timeout=10)

    assert response.status_code == 429


def test_a_planned_2xx_status_is_returned_for_an_accepted_batch(
    tmp_path: Path, secret: str
) -> None:
    with PartnerSimulator(data_dir=tmp_path, secret=secret, respond=[202]) as sim:
        response = push(sim.url, secret, [event()])
        assert sim.stats().batch_ids == ["batch-1"]

    assert response.status_code == 202


def test_the_delay_holds_every_answer(tmp_path: Path, secret: str) -> None:
    with PartnerSimulator(data_dir=tmp_path, secret=secret, delay=0.3) as sim:
        started = time.monotonic()
        push(sim.url, secret, [event()])

        assert time.monotonic() - started >= 0.3


def test_a_delay_longer_than_the_client_timeout_makes_the_client_time_out(
    tmp_path: Path, secret: str
) -> None:
    with PartnerSimulator(data_dir=tmp_path, secret=secret, delay=1.0) as sim:
        body = ndjson([event()])
        with pytest.raises(requests.Timeout):
            requests.post(sim.url, data=body, headers=signed_headers(secret, body), timeout=0.2)


def test_it_counts_events_by_campaign_and_day_in_the_partner_time_zone(
    simulator: PartnerSimulator, secret: str
) -> None:
    records = [
        # 03:00 UTC on the 25th is still the 24th in New York.
        event(event_id="1", occurred_at="2026-11-25T03:00:00Z"),
        event(event_id="2", occurred_at="2026-11-25T05:30:00Z"),
        event(event_id="3", occurred_at="2026-11-25T04:59:59.999Z", campaign_id="cmp-2"),
        event(event_id="4", occurred_at="2026-11-25T00:30:00-05:00", event_type="midpoint"),
    ]

    push(simulator.url, secret, records)

    assert simulator.stats().counts == {
        ("cmp-1", date(2026, 11, 24)): 1,
        ("cmp-1", date(2026, 11, 25)): 2,
        ("cmp-2", date(2026, 11, 24)): 1,
    }
    assert simulator.store.counts(event_types={"impression"}) == {
        ("cmp-1", date(2026, 11, 24)): 1,
        ("cmp-1", date(2026, 11, 25)): 1,
        ("cmp-2", date(2026, 11, 24)): 1,
    }


def test_events_without_a_campaign_or_time_are_stored_but_not_counted(
    simulator: PartnerSimulator, secret: str
) -> None:
    push(simulator.url, secret, [{"event_id": "x"}, event(occurred_at="yesterday")])

    stats = simulator.stats()
    assert stats.event_total == 2
    assert stats.counts == {}
    assert stats.uncounted_events == 2


def test_a_restarted_simulator_reloads_its_batches_and_still_dedupes(
    tmp_path: Path, secret: str
) -> None:
    with PartnerSimulator(data_dir=tmp_path, secret=secret) as first:
        push(first.url, secret, [event()], msg_id="kept")
    with PartnerSimulator(data_dir=tmp_path, secret=secret) as second:
        again = push(second.url, secret, [event()], msg_id="kept")
        stats = second.stats()

    assert again.json()["status"] == "duplicate"
    assert stats.batch_ids == ["kept"]
    assert sum(stats.counts.values()) == 1


def test_stats_and_health_are_served_as_json(simulator: PartnerSimulator, secret: str) -> None:
    push(simulator.url, secret, [event()], msg_id="b-stats")

    stats = requests.get(simulator.url + STATS_PATH, timeout=5).json()
    health = requests.get(simulator.url + HEALTH_PATH, timeout=5)

    assert stats["batch_ids"] == ["b-stats"]
    assert stats["counts"] == {"cmp-1|2026-11-24": 1}
    assert stats["requests"][0]["headers"]["webhook-id"] == "b-stats"
    assert stats["requests"][0]["status"] == 200
    assert health.json() == {"status": "ok"}
    assert requests.get(simulator.url + "/nope", timeout=5).status_code == 404


def test_a_simulator_without_a_secret_refuses_pushes(tmp_path: Path, secret: str) -> None:
    with PartnerSimulator(data_dir=tmp_path) as sim:
        response = push(sim.url, secret, [event()])

    assert response.status_code == 401
    assert response.json()["code"] == "no_secret"


def test_it_refuses_to_start_with_a_secret_that_is_not_whsec(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="whsec_"):
        PartnerSimulator(data_dir=tmp_path, secret="whsec_")


def test_port_zero_picks_a_free_port_on_loopback_only(tmp_path: Path) -> None:
    with PartnerSimulator(data_dir=tmp_path) as one, PartnerSimulator(data_dir=tmp_path) as two:
        assert one.port != two.port
        assert one.url.startswith("http://127.0.0.1:")


def test_wait_for_batches_times_out_when_nothing_arrives(simulator: PartnerSimulator) -> None:
    assert simulator.wait_for_batches(1, timeout=0.1) is False


def test_keep_alive_connections_serve_several_batches(
    simulator: PartnerSimulator, secret: str
) -> None:
    with requests.Session() as session:
        for n in range(3):
            body = ndjson([event(event_id=str(n))])
            headers = signed_headers(secret, body, msg_id=f"ka-{n}")
            assert session.post(simulator.url, data=body, headers=headers, timeout=5).ok

    assert sorted(simulator.stats().batch_ids) == ["ka-0", "ka-1", "ka-2"]
    assert json.loads((simulator.store.batch_dir / "ka-2.ndjson").read_text())["event_id"] == "2"


def test_a_failure_while_storing_answers_500_so_the_gateway_retries(
    simulator: PartnerSimulator, secret: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def disk_full(**_: object) -> bool:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(simulator.store, "add", disk_full)

    response = push(simulator.url, secret, [event()])

    assert response.status_code == 500
    assert response.json()["code"] == "internal_error"
    assert simulator.stats().requests[-1].outcome == "rejected"


def test_stopping_and_starting_the_same_simulator_does_not_count_twice(
    tmp_path: Path, secret: str
) -> None:
    sim = PartnerSimulator(data_dir=tmp_path, secret=secret)
    with sim:
        push(sim.url, secret, [event()])
    with sim:
        assert sim.stats().event_total == 1
        assert sum(sim.stats().counts.values()) == 1


# --- Fault steps ------------------------------------------------------------------------


def test_a_planned_429_carries_its_retry_after(secret: str, tmp_path: Path) -> None:
    with PartnerSimulator(data_dir=tmp_path, secret=secret, respond=["429:7"]) as sim:
        response = push(sim.url, secret, [event()], msg_id="b1")

    assert response.status_code == 429
    assert response.headers["Retry-After"] == "7"


def test_a_planned_reset_drops_the_connection_and_stores_nothing(
    secret: str, tmp_path: Path
) -> None:
    with PartnerSimulator(data_dir=tmp_path, secret=secret, respond=["reset"]) as sim:
        with pytest.raises(requests.ConnectionError):
            push(sim.url, secret, [event()], msg_id="b1")
        assert sim.stats().batch_ids == []
        assert push(sim.url, secret, [event()], msg_id="b1").status_code == 200


def test_stored_then_reset_keeps_the_batch_and_the_retry_is_a_duplicate(
    secret: str, tmp_path: Path
) -> None:
    with PartnerSimulator(data_dir=tmp_path, secret=secret, respond=["stored-reset"]) as sim:
        with pytest.raises(requests.ConnectionError):
            push(sim.url, secret, [event()], msg_id="b1")
        retry = push(sim.url, secret, [event()], msg_id="b1")
        stats = sim.stats()

    assert retry.status_code == 200
    assert stats.batch_ids == ["b1"]
    assert stats.event_total == 1
    assert [r.outcome for r in stats.requests] == ["accepted_then_reset", "duplicate"]


def test_a_planned_sleep_answers_late(secret: str, tmp_path: Path) -> None:
    with (
        PartnerSimulator(data_dir=tmp_path, secret=secret, respond=["sleep:0.5"]) as sim,
        pytest.raises(requests.Timeout),
    ):
        push(sim.url, secret, [event()], msg_id="b1", timeout=0.2)


@pytest.mark.parametrize("step", ["abc", "429:x", "sleep:-2", "700"])
def test_unknown_steps_are_refused_at_construction(secret: str, step: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        PartnerSimulator(data_dir=tmp_path, secret=secret, respond=[step])


def test_stopping_ends_the_connections_kept_open_between_requests(
    tmp_path: Path, secret: str
) -> None:
    """A client keeping connections (the gateway does) must not reach a stopped simulator."""
    simulator = PartnerSimulator(data_dir=tmp_path, secret=secret).start()
    with socket.create_connection(("127.0.0.1", simulator.port), timeout=5) as client:
        client.sendall(f"GET {HEALTH_PATH} HTTP/1.1\r\nHost: partner\r\n\r\n".encode())
        answer = b""
        while not answer.endswith(b"}"):
            answer += client.recv(4096)
        assert answer.startswith(b"HTTP/1.0 200") or answer.startswith(b"HTTP/1.1 200")
        # Kept open for the next request, until the simulator stops.
        simulator.stop()
        assert client.recv(1) == b""
