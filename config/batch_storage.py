"""Where batch bodies are stored: the "batches" entry of ``STORAGES``, from the environment.

``BATCH_STORAGE`` picks the backend:

- ``filesystem`` (the default): a directory, ``BATCH_STORAGE_DIR``. Every
  process that builds, sends or serves bodies must see the same directory
  (one machine, or a shared volume as in ``docker/compose.yaml``).
- ``s3``: an S3 bucket or any S3-compatible store (django-storages), for
  workers on several machines: ``BATCH_STORAGE_S3_BUCKET`` (required),
  ``BATCH_STORAGE_S3_PREFIX`` (default ``batches``),
  ``BATCH_STORAGE_S3_ENDPOINT_URL`` and ``BATCH_STORAGE_S3_REGION`` (optional).
  Credentials come from boto3's usual chain (``AWS_ACCESS_KEY_ID`` and
  ``AWS_SECRET_ACCESS_KEY``, a profile, an instance role), never from here.

Bodies are downloaded from S3 into a temporary file that spills to disk past
``S3_MEMORY_BYTES``: a send or download never holds a whole batch in memory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from config.env import ImproperlyConfiguredEnv, env_str

FILESYSTEM_BACKEND = "django.core.files.storage.FileSystemStorage"
S3_BACKEND = "storages.backends.s3.S3Storage"
# What an S3 body read keeps in memory before its temporary file goes to disk.
S3_MEMORY_BYTES = 1024 * 1024


def batch_storage_setting(var_dir: Path) -> dict[str, Any]:
    """The ``STORAGES["batches"]`` entry the environment asks for."""
    kind = env_str("BATCH_STORAGE", "filesystem")
    if kind == "filesystem":
        location = env_str("BATCH_STORAGE_DIR", str(var_dir / "batches"))
        return {"BACKEND": FILESYSTEM_BACKEND, "OPTIONS": {"location": location}}
    if kind == "s3":
        return {"BACKEND": S3_BACKEND, "OPTIONS": _s3_options()}
    raise ImproperlyConfiguredEnv(f"BATCH_STORAGE={kind!r} is not one of: filesystem, s3")


def _s3_options() -> dict[str, Any]:
    options: dict[str, Any] = {
        "bucket_name": env_str("BATCH_STORAGE_S3_BUCKET"),
        "location": env_str("BATCH_STORAGE_S3_PREFIX", "batches"),
        # A body's name is derived from its batch id: a build that runs again
        # replaces its own leftovers instead of getting a new name.
        "file_overwrite": True,
        "max_memory_size": S3_MEMORY_BYTES,
        # Bodies are read with the gateway's credentials only: no public URLs.
        "querystring_auth": True,
        "default_acl": None,
    }
    endpoint_url = env_str("BATCH_STORAGE_S3_ENDPOINT_URL", "")
    if endpoint_url:
        options["endpoint_url"] = endpoint_url
    region = env_str("BATCH_STORAGE_S3_REGION", "")
    if region:
        options["region_name"] = region
    return options
