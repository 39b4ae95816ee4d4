"""Fixtures for simulator tests: a running simulator and a sender that signs by hand.

The sender signs with plain ``hmac`` rather than the standardwebhooks package,
so the tests check the simulator against the specification, not against the
library it uses.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from gateway.simulator.server import PartnerSimulator


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def sign(secret: str, *, msg_id: str, timestamp: int, body: bytes) -> str:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def ndjson(records: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(record) + "\n" for record in records).encode()


def event(**overrides: Any) -> dict[str, Any]:
    record = {
        "event_id": "evt-1",
        "occurred_at": "2026-11-24T15:00:00Z",
        "event_type": "impression",
        "campaign_id": "cmp-1",
    }
    record.update(overrides)
    return record


def signed_headers(
    secret: str, body: bytes, *, msg_id: str = "batch-1", timestamp: int | None = None
) -> dict[str, str]:
    stamp = int(time.time()) if timestamp is None else timestamp
    return {
        "Content-Type": "application/x-ndjson",
        "webhook-id": msg_id,
        "webhook-timestamp": str(stamp),
        "webhook-signature": sign(secret, msg_id=msg_id, timestamp=stamp, body=body),
    }


def push(
    url: str,
    secret: str,
    records: list[dict[str, Any]],
    *,
    msg_id: str = "batch-1",
    compress: bool = False,
    timestamp: int | None = None,
    timeout: float = 10,
) -> requests.Response:
    """POST a batch the way the gateway does: signature over the uncompressed body."""
    body = ndjson(records)
    headers = signed_headers(secret, body, msg_id=msg_id, timestamp=timestamp)
    if compress:
        body = gzip.compress(body)
        headers["Content-Encoding"] = "gzip"
    return requests.post(f"{url}/exposures", data=body, headers=headers, timeout=timeout)


@pytest.fixture
def secret() -> str:
    return new_secret()


@pytest.fixture
def simulator(tmp_path: Path, secret: str) -> Iterator[PartnerSimulator]:
    with PartnerSimulator(
        data_dir=tmp_path / "sim", secret=secret, time_zone="America/New_York"
    ) as sim:
        yield sim
