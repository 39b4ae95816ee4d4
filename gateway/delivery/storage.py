"""Where batch bodies live: the "batches" storage of ``settings.STORAGES``.

A build streams its body into a temporary file and hands it to the storage in
one call, so no process ever holds a whole batch in memory; sends and
downloads open it again as a file. The name is derived from the batch id, so
a build that crashed half-way and runs again overwrites its own leftovers.
"""

from __future__ import annotations

import logging
import sys
import uuid
from collections.abc import Sequence
from typing import IO, Any

from django.core.files import File
from django.core.files.storage import Storage, storages

logger = logging.getLogger(__name__)

# The most keys one S3 DeleteObjects request takes.
S3_DELETE_MAX_KEYS = 1000

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


def bodies_delete(names: Sequence[str]) -> set[str]:
    """Delete the stored bodies ``names``; returns those deleted (or found gone already).

    In S3 a request deletes up to a thousand objects: retention deletes the
    bodies of a streaming feed (a batch every quarter of a second or so) in
    a few requests instead of one each. Elsewhere one at a time. A body that
    could not be deleted is logged and left out of the answer, for the caller
    to try again later.
    """
    storage = batch_storage()
    names = [name for name in names if name]
    if _is_s3(storage):
        return _s3_objects_delete(storage, names)
    deleted = set()
    for name in names:
        try:
            storage.delete(name)
        except Exception:
            logger.exception("batch body %s not deleted", name)
        else:
            deleted.add(name)
    return deleted


def _is_s3(storage: Storage) -> bool:
    # Not imported here: boto3 is loaded only where the storage is S3 (then it is loaded).
    s3 = sys.modules.get("storages.backends.s3")
    return s3 is not None and isinstance(storage, s3.S3Storage)


def _s3_objects_delete(storage: Any, names: Sequence[str]) -> set[str]:
    from storages.utils import clean_name

    # The storage's own mapping from a name to its key (under the prefix), as its delete() does.
    keys = {storage._normalize_name(clean_name(name)): name for name in names}
    deleted: set[str] = set()
    listed = list(keys)
    for start in range(0, len(listed), S3_DELETE_MAX_KEYS):
        chunk = listed[start : start + S3_DELETE_MAX_KEYS]
        try:
            answer = storage.bucket.delete_objects(
                Delete={"Objects": [{"Key": key} for key in chunk], "Quiet": True}
            )
        except Exception:
            logger.exception("%d batch bodies not deleted (from %s)", len(chunk), keys[chunk[0]])
            continue
        # Quiet: the answer lists only the keys that could not be deleted.
        failed = {error["Key"]: error for error in answer.get("Errors", [])}
        for key, error in failed.items():
            logger.error("batch body %s not deleted: %s", keys.get(key, key), error.get("Code"))
        deleted.update(keys[key] for key in chunk if key not in failed)
    return deleted
