"""The destination admin: secrets go in encrypted and never come back out."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from gateway.filedrop.models import FileDestination
from partners.models import Feed
from partners.secrets import decrypt
from tests.filedrop.conftest import ssh_key

pytestmark = pytest.mark.django_db

HOST_KEY = f"sftp.example.com {ssh_key().public}"


@pytest.fixture
def staff_client() -> Client:
    client = Client()
    client.force_login(User.objects.create_superuser("ops", "ops@example.com", "pw-ops-1"))
    return client


def sftp_form(feed: Feed, **overrides: Any) -> dict[str, Any]:
    data = {
        "feed": feed.pk,
        "kind": FileDestination.Kind.SFTP,
        "host": "sftp.example.com",
        "port": 22,
        "username": "gateway",
        "host_key": HOST_KEY,
        "remote_directory": "/upload",
        "endpoint_url": "",
        "bucket": "",
        "region": "",
        "access_key_id": "",
        "secret_access_key": "",
        "private_key": "",
        "password": "",
    }
    data.update(overrides)
    return data


def test_a_private_key_is_stored_encrypted_and_never_shown_again(
    staff_client: Client, file_feed: Feed
):
    private_key = ssh_key().private

    response = staff_client.post(
        reverse("admin:filedrop_filedestination_add"),
        sftp_form(file_feed, private_key=private_key),
    )

    assert response.status_code == 302, response.content.decode()[:2000]
    destination = FileDestination.objects.get(feed=file_feed)
    assert private_key.strip() not in destination.private_key_encrypted
    assert decrypt(destination.private_key_encrypted).strip() == private_key.strip()
    page = staff_client.get(
        reverse("admin:filedrop_filedestination_change", args=[destination.pk])
    ).content.decode()
    assert "PRIVATE KEY" not in page
    assert destination.private_key_encrypted not in page
    assert "private key" in page  # only that one is stored


def test_saving_with_empty_secret_fields_keeps_the_stored_secret(
    staff_client: Client, file_feed: Feed
):
    staff_client.post(
        reverse("admin:filedrop_filedestination_add"),
        sftp_form(file_feed, password="s3cret-pass"),
    )
    destination = FileDestination.objects.get(feed=file_feed)

    response = staff_client.post(
        reverse("admin:filedrop_filedestination_change", args=[destination.pk]),
        sftp_form(file_feed, username="renamed"),
    )

    assert response.status_code == 302
    destination.refresh_from_db()
    assert destination.username == "renamed"
    assert decrypt(destination.password_encrypted) == "s3cret-pass"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"host_key": "", "password": "pw"}, "Required for this kind of destination."),
        ({"host_key": "not a key", "password": "pw"}, "known_hosts line"),
        ({}, "needs a private key or a password"),
        ({"private_key": "-----BEGIN NONSENSE-----"}, "not an unencrypted OpenSSH or PEM"),
    ],
    ids=["no host key", "bad host key", "no login", "bad private key"],
)
def test_an_sftp_destination_needs_a_valid_host_key_and_a_way_to_log_in(
    staff_client: Client, file_feed: Feed, overrides: dict[str, Any], message: str
):
    response = staff_client.post(
        reverse("admin:filedrop_filedestination_add"), sftp_form(file_feed, **overrides)
    )

    assert response.status_code == 200
    assert message in response.content.decode()
    assert not FileDestination.objects.exists()


def test_an_s3_destination_needs_a_bucket_and_a_secret(staff_client: Client, file_feed: Feed):
    response = staff_client.post(
        reverse("admin:filedrop_filedestination_add"),
        sftp_form(file_feed, kind=FileDestination.Kind.S3, access_key_id="AKIA1"),
    )

    page = response.content.decode()
    assert "An S3 destination needs a secret access key." in page
    assert "Required for this kind of destination." in page


def test_the_list_says_which_secrets_are_stored(staff_client: Client, file_feed: Feed):
    staff_client.post(
        reverse("admin:filedrop_filedestination_add"),
        sftp_form(file_feed, password="s3cret-pass"),
    )

    page = staff_client.get(reverse("admin:filedrop_filedestination_changelist")).content.decode()

    assert "sftp://gateway@sftp.example.com:22 in /upload" in page
    assert "s3cret-pass" not in page
