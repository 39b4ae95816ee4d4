"""Where batch bodies live: the "batches" storage of ``settings.STORAGES``.

A build streams its body into a temporary file and hands it to the storage in
one call, so no process ever holds a whole batch in memory; sends and
downloads open it again as a file. The name is derived from the batch id, so
a build that crashed half-way and runs again overwrites its own leftovers.
"""

from __future__ import annotations

import uuid
from typing import IO

from django.core.files import File
from django.core.files.storage import Storage, storages

BatchId = uuid.UUID | str


def batch_storage() -> Storage:
    return storages["batches"]


def body_name(*, feed_id: int, batch_id: BatchId, suffix: str = "ndjson.gz") -> str:
    return f"feed-{feed_id}/{batch_id}.{suffix}"


def body_save(*, name: str, content: IO[bytes]) -> str:
    """Store ``content`` (a file positioned anywhere) under ``name``; returns the stored name."""
    storage = batch_storage()
    # In a directory the old body is removed first (a reader still holding it keeps
    # reading it); S3 replaces an object in one request (file_overwrite).
    if not getattr(storage, "file_overwrite", False) and storage.exists(name):
        storage.delete(name)
    content.seek(0)
    return storage.save(name, File(content))


def body_open(name: str) -> IO[bytes]:
    """The stored body, opened for binary reading; the caller closes it."""
    return batch_storage().open(name, "rb")


def body_read(name: str) -> bytes:
    with body_open(name) as body:
        return body.read()


def body_delete(name: str) -> None:
    if name:
        batch_storage().delete(name)
