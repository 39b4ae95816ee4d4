"""The HTTP transport reports what happened and never raises for network trouble."""

from __future__ import annotations

import requests
import responses

from gateway.delivery.transport import EXCERPT_CHARS, NetworkError, post

URL = "http://127.0.0.1:9/ingest"


@responses.activate
def test_it_posts_the_body_and_headers_as_given():
    responses.add(responses.POST, URL, status=202, body="accepted")

    result = post(url=URL, body=b"abc", headers={"X-Test": "1"}, timeout=5)

    assert result.status == 202
    assert result.response_excerpt == "accepted"
    assert result.error == ""
    assert result.network_error is None
    request = responses.calls[0].request
    assert request.body == b"abc"
    assert request.headers["X-Test"] == "1"
    assert request.headers["User-Agent"].startswith("measurement-gateway/")


@responses.activate
def test_only_the_start_of_a_long_reply_is_kept():
    responses.add(responses.POST, URL, status=500, body="x" * 100_000)

    result = post(url=URL, body=b"", headers={}, timeout=5)

    assert result.response_excerpt == "x" * EXCERPT_CHARS


@responses.activate
def test_redirects_are_reported_not_followed():
    responses.add(
        responses.POST, URL, status=307, headers={"Location": "http://127.0.0.1:9/elsewhere"}
    )

    result = post(url=URL, body=b"", headers={}, timeout=5)

    assert result.status == 307
    assert len(responses.calls) == 1


@responses.activate
def test_a_timeout_is_a_network_error_without_status():
    responses.add(responses.POST, URL, body=requests.ReadTimeout("read timed out"))

    result = post(url=URL, body=b"", headers={}, timeout=5)

    assert result.status is None
    assert result.network_error == NetworkError.TIMEOUT
    assert "timed out" in result.error


@responses.activate
def test_a_refused_connection_is_a_network_error_without_status():
    responses.add(responses.POST, URL, body=requests.ConnectionError("connection refused"))

    result = post(url=URL, body=b"", headers={}, timeout=5)

    assert result.status is None
    assert result.network_error == NetworkError.CONNECTION


def test_a_malformed_url_is_an_invalid_request():
    result = post(url="http://", body=b"", headers={}, timeout=5)

    assert result.status is None
    assert result.network_error == NetworkError.INVALID_REQUEST


@responses.activate
def test_retry_after_is_passed_on_verbatim():
    responses.add(responses.POST, URL, status=429, headers={"Retry-After": "30"})

    result = post(url=URL, body=b"", headers={}, timeout=5)

    assert result.retry_after == "30"


def test_a_closed_local_port_is_reported_as_a_connection_error():
    # Port 9 (discard) on loopback: nothing listens in the test environment.
    result = post(url=URL, body=b"", headers={}, timeout=2)

    assert result.status is None
    assert result.network_error == NetworkError.CONNECTION
    assert result.duration_ms >= 0
