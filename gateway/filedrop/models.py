"""Where a file-drop feed's files go, and which windows missed their upload deadline.

Secrets (the S3 secret access key, the SFTP private key or password) are
Fernet-encrypted (``partners.secrets``) and set only through
``gateway.filedrop.services.file_destination_save``; no form ever shows them back.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from gateway.delivery.models import Batch
from partners.models import Feed


class FileDestination(models.Model):
    """The bucket or SFTP server of one file-drop feed, with its credentials."""

    class Kind(models.TextChoices):
        S3 = "s3", "S3-compatible object storage"
        SFTP = "sftp", "SFTP"

    feed = models.OneToOneField(
        Feed,
        on_delete=models.CASCADE,
        related_name="file_destination",
        limit_choices_to={"mode": Feed.Mode.FILE},
    )
    kind = models.CharField(max_length=8, choices=Kind.choices)
    # --- S3 -------------------------------------------------------------------------
    endpoint_url = models.URLField(
        max_length=300,
        blank=True,
        help_text="S3: empty = AWS. Any other S3-compatible store (MinIO, Ceph, R2...) by its "
        "URL, addressed path-style.",
    )
    bucket = models.CharField(max_length=63, blank=True)
    region = models.CharField(max_length=32, blank=True, help_text="S3: e.g. eu-west-1.")
    access_key_id = models.CharField(max_length=128, blank=True)
    secret_access_key_encrypted = models.TextField(blank=True, editable=False)
    # --- SFTP -------------------------------------------------------------------------
    host = models.CharField(max_length=253, blank=True)
    port = models.PositiveIntegerField(
        default=22, validators=[MinValueValidator(1), MaxValueValidator(65535)]
    )
    username = models.CharField(max_length=64, blank=True)
    private_key_encrypted = models.TextField(blank=True, editable=False)
    password_encrypted = models.TextField(blank=True, editable=False)
    host_key = models.TextField(
        blank=True,
        help_text="SFTP: the server's public host key as a known_hosts line "
        "(ssh-keyscan output, host names optional). Required: the gateway never connects "
        "to a server whose key does not match.",
    )
    remote_directory = models.CharField(
        max_length=300,
        blank=True,
        help_text="SFTP: base directory on the server; empty = the login directory.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.get_kind_display()} destination of {self.feed}"

    def clean(self) -> None:
        errors = {
            name: "Required for this kind of destination."
            for name in REQUIRED_FIELDS.get(self.kind, ())
            if not getattr(self, name).strip()
        }
        if self.kind == self.Kind.S3 and self.endpoint_url:
            # The same rules as push endpoints: https to public addresses in production.
            from partners.endpoints import validate_push_endpoint

            try:
                validate_push_endpoint(self.endpoint_url)
            except ValidationError as exc:
                errors.setdefault("endpoint_url", "; ".join(exc.messages))
        if self.kind == self.Kind.SFTP and self.host_key.strip() and "host_key" not in errors:
            # Imported here: paramiko is only needed by SFTP destinations.
            from gateway.filedrop.sftp import HostKeyError, host_key_parse

            try:
                host_key_parse(self.host_key)
            except HostKeyError as exc:
                errors["host_key"] = str(exc)
        if errors:
            raise ValidationError(errors)


# Settings each kind needs besides its secret (checked by the admin form).
REQUIRED_FIELDS: dict[str, tuple[str, ...]] = {
    FileDestination.Kind.S3: ("bucket", "access_key_id"),
    FileDestination.Kind.SFTP: ("host", "username", "host_key"),
}


class DeadlineMiss(models.Model):
    """A window batch whose file was not uploaded in time; at most one per batch.

    Its existence is what makes the periodic check notify once per batch.
    """

    batch = models.OneToOneField(Batch, on_delete=models.CASCADE, related_name="file_deadline_miss")
    deadline = models.DateTimeField()
    noticed_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-deadline"]

    def __str__(self) -> str:
        return f"deadline missed by batch {self.batch_id}"
