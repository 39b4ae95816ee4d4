"""moto's standalone S3 server on 127.0.0.1, for file drops and S3 batch storage.

The fixtures (``s3_endpoint``, ``s3_client``, ``bucket``) are in tests/conftest.py.
"""

from __future__ import annotations

from typing import Any

import boto3

S3_KEY_ID, S3_SECRET = "AKIAFILEDROPTEST", "filedrop-test-secret"
S3_REGION = "us-east-1"


def s3_client_for(endpoint: str) -> Any:
    """A boto3 S3 client of moto's server at ``endpoint`` (the tests' credentials)."""
    return boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint,
        region_name=S3_REGION,
        aws_access_key_id=S3_KEY_ID,
        aws_secret_access_key=S3_SECRET,
    )
