"""The manifest of an uploaded batch file and its detached Standard Webhooks signature.

The manifest names the data file and carries its size and SHA-256 as
uploaded; the partner treats it as the commit marker, so it is uploaded after
the file it describes. When the feed encrypts, the uploaded file is the JWE
and the manifest also says how it is encrypted (``encryption``); manifests of
other feeds have no such key at all. Its signature file holds the three Standard Webhooks
headers, one per line, over the manifest's exact bytes::

    webhook-id: 6f1c...            (the batch id, the same on every upload)
    webhook-timestamp: 1764000000  (when the manifest was made)
    webhook-signature: v1,... v1a,...

so any Standard Webhooks library verifies it: read the lines as headers and
the manifest file as the body (without its five-minute freshness check: a file
may be picked up hours later).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from gateway.delivery.signers import Signer, signed_headers

MANIFEST_VERSION = 1
SIGNATURE_HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")


@dataclass(frozen=True)
class Manifest:
    """What a partner needs to check and load one batch file."""

    batch_id: str
    partner: str
    feed: str
    sequence: int
    kind: str
    window_start: datetime
    window_end: datetime
    row_count: int
    file_name: str
    file_path: str
    format: str
    byte_size: int
    sha256: str
    created_at: datetime
    # {"alg", "enc", "kid"} of the JWE the data file is; None: the file is in clear.
    encryption: dict[str, str | None] | None = None
    # {"part", "part_count", "first_part"} of a claim delivered in parts; None: one part.
    parts: dict[str, Any] | None = None

    def to_bytes(self) -> bytes:
        """Pretty, sorted JSON with a final newline: the exact bytes that are signed."""
        document: dict[str, Any] = {"manifest_version": MANIFEST_VERSION, **asdict(self)}
        if self.encryption is None:
            # Left out, not null: a clear feed's manifest is what it always was.
            del document["encryption"]
        parts = document.pop("parts")
        if parts is not None:
            # Flat, like the other fields; left out for the usual single part.
            document.update(parts)
        for name in ("window_start", "window_end", "created_at"):
            document[name] = rfc3339(document[name])
        return (json.dumps(document, indent=2, sort_keys=True) + "\n").encode("utf-8")


def rfc3339(instant: datetime) -> str:
    """``YYYY-MM-DDTHH:MM:SS[.ffffff]Z`` in UTC."""
    return instant.astimezone(UTC).replace(tzinfo=None).isoformat() + "Z"


def signature_file(*, signer: Signer, batch_id: str, timestamp: int, manifest: bytes) -> bytes:
    """The detached signature of ``manifest``: one ``name: value`` line per header."""
    headers = signed_headers(signer=signer, msg_id=batch_id, timestamp=timestamp, payload=manifest)
    return "".join(f"{name}: {headers[name]}\n" for name in SIGNATURE_HEADERS).encode("ascii")


def signature_file_parse(content: bytes) -> dict[str, str]:
    """The headers of a signature file, as a verifier takes them; ValueError if malformed."""
    headers: dict[str, str] = {}
    for line in content.decode("ascii").splitlines():
        name, separator, value = line.partition(":")
        if not separator:
            raise ValueError(f"not a 'name: value' line: {line!r}")
        headers[name.strip().lower()] = value.strip()
    missing = [name for name in SIGNATURE_HEADERS if name not in headers]
    if missing:
        raise ValueError(f"signature file lacks {', '.join(missing)}")
    return headers
