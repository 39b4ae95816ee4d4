"""BATCH_STORAGE picks where batch bodies live: a directory, or an S3 bucket."""

from __future__ import annotations

from pathlib import Path

import pytest

from config.batch_storage import (
    FILESYSTEM_BACKEND,
    S3_BACKEND,
    S3_MEMORY_BYTES,
    batch_storage_setting,
)
from config.env import ImproperlyConfiguredEnv

VARIABLES = (
    "BATCH_STORAGE",
    "BATCH_STORAGE_DIR",
    "BATCH_STORAGE_S3_BUCKET",
    "BATCH_STORAGE_S3_PREFIX",
    "BATCH_STORAGE_S3_ENDPOINT_URL",
    "BATCH_STORAGE_S3_REGION",
)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)


def test_by_default_bodies_go_to_the_var_directory(tmp_path: Path) -> None:
    assert batch_storage_setting(tmp_path) == {
        "BACKEND": FILESYSTEM_BACKEND,
        "OPTIONS": {"location": str(tmp_path / "batches")},
    }


def test_a_directory_can_be_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BATCH_STORAGE_DIR", "/srv/bodies")
    assert batch_storage_setting(tmp_path)["OPTIONS"] == {"location": "/srv/bodies"}


def test_s3_takes_the_bucket_prefix_and_endpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BATCH_STORAGE", "s3")
    monkeypatch.setenv("BATCH_STORAGE_S3_BUCKET", "gateway-bodies")
    monkeypatch.setenv("BATCH_STORAGE_S3_PREFIX", "prod/batches")
    monkeypatch.setenv("BATCH_STORAGE_S3_ENDPOINT_URL", "https://minio.internal:9000")
    monkeypatch.setenv("BATCH_STORAGE_S3_REGION", "eu-west-1")

    setting = batch_storage_setting(tmp_path)

    assert setting["BACKEND"] == S3_BACKEND
    options = setting["OPTIONS"]
    assert options["bucket_name"] == "gateway-bodies"
    assert options["location"] == "prod/batches"
    assert options["endpoint_url"] == "https://minio.internal:9000"
    assert options["region_name"] == "eu-west-1"
    # A re-build replaces its own body; reads spill to disk instead of memory.
    assert options["file_overwrite"] is True
    assert options["max_memory_size"] == S3_MEMORY_BYTES
    # Credentials are boto3's business (environment, profile, role), never settings.
    assert not {"access_key", "secret_key"} & options.keys()


def test_s3_without_a_bucket_stops_the_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BATCH_STORAGE", "s3")
    with pytest.raises(ImproperlyConfiguredEnv, match="BATCH_STORAGE_S3_BUCKET must be set"):
        batch_storage_setting(tmp_path)


def test_an_unknown_storage_stops_the_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BATCH_STORAGE", "gcs")
    with pytest.raises(ImproperlyConfiguredEnv, match="not one of: filesystem, s3"):
        batch_storage_setting(tmp_path)
