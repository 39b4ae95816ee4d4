"""Where a batch's three files go: ``<prefix>/<feed>/yyyy/mm/dd/hh/<batch>.<ext>``. No Django.

The hour is the UTC hour the batch's window starts in. A late batch (late
exposures of windows already closed) covers no single window, so it goes to
the hour it was created in. The names depend only on the batch, so uploading
a batch again overwrites its own files and nothing else. The data file of a
feed with payload encryption is the JWE of the file: its name gets ``.jwe``
(``<batch>.jsonl.gz.jwe``, ``<batch>.parquet.jwe``).
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from datetime import UTC, datetime

DATA_EXTENSIONS = {"ndjson": "jsonl.gz", "parquet": "parquet"}
CONTENT_TYPES = {"ndjson": "application/gzip", "parquet": "application/vnd.apache.parquet"}
ENCRYPTED_SUFFIX = ".jwe"
MANIFEST_SUFFIX = ".manifest.json"
SIGNATURE_SUFFIX = ".manifest.json.sig"


@dataclass(frozen=True)
class FileLayout:
    """The relative paths of a batch's data file, manifest and signature, '/'-separated."""

    directory: str
    data_name: str
    manifest_name: str
    signature_name: str

    @property
    def data(self) -> str:
        return posixpath.join(self.directory, self.data_name)

    @property
    def manifest(self) -> str:
        return posixpath.join(self.directory, self.manifest_name)

    @property
    def signature(self) -> str:
        return posixpath.join(self.directory, self.signature_name)


def file_layout(
    *,
    prefix: str,
    feed_name: str,
    batch_id: str,
    file_format: str,
    hour: datetime,
    encrypted: bool = False,
) -> FileLayout:
    """The layout of one batch; ``hour`` is any instant in the hour the files belong to."""
    if hour.tzinfo is None:
        raise ValueError("hour must be timezone-aware")
    utc = hour.astimezone(UTC)
    parts = [part for part in prefix.split("/") if part]
    if any(part in {".", ".."} for part in parts):
        # A prefix is a folder under the destination's root, never a way out of it.
        raise ValueError(f"file path prefix {prefix!r} may not contain '.' or '..'")
    directory = "/".join([*parts, feed_name, f"{utc:%Y/%m/%d/%H}"])
    suffix = ENCRYPTED_SUFFIX if encrypted else ""
    return FileLayout(
        directory=directory,
        data_name=f"{batch_id}.{DATA_EXTENSIONS[file_format]}{suffix}",
        manifest_name=f"{batch_id}{MANIFEST_SUFFIX}",
        signature_name=f"{batch_id}{SIGNATURE_SUFFIX}",
    )
