"""Django admin for file-drop destinations: secrets are write-only.

The secret fields are always empty when the form is shown; typing one replaces
the stored value, leaving it empty keeps it. The list and the form only say
whether a secret is stored, never what it is.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest

from gateway.filedrop.models import DeadlineMiss, FileDestination
from gateway.filedrop.services import file_destination_save

KEEP_HINT = "Write-only: leave empty to keep the stored value."


class FileDestinationForm(forms.ModelForm):
    """The destination's settings plus its secrets, which are never rendered back."""

    secret_access_key = forms.CharField(
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False),
        help_text=f"S3. {KEEP_HINT}",
    )
    private_key = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 4, "autocomplete": "off"}),
        help_text="SFTP: an unencrypted OpenSSH or PEM private key (replaces a stored "
        f"password). {KEEP_HINT}",
    )
    password = forms.CharField(
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False),
        help_text=f"SFTP, when the server takes no key (replaces a stored key). {KEEP_HINT}",
    )

    class Meta:
        model = FileDestination
        fields = [
            "feed",
            "kind",
            "endpoint_url",
            "bucket",
            "region",
            "access_key_id",
            "host",
            "port",
            "username",
            "host_key",
            "remote_directory",
        ]

    def clean_private_key(self) -> str:
        private_key = self.cleaned_data["private_key"].strip()
        if private_key:
            from gateway.filedrop.sftp import PrivateKeyError, private_key_parse

            try:
                private_key_parse(private_key)
            except PrivateKeyError as exc:
                raise forms.ValidationError(str(exc)) from exc
        return private_key

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data
        kind = cleaned.get("kind")
        stored = self.instance
        if (
            kind == FileDestination.Kind.S3
            and not cleaned.get("secret_access_key")
            and not stored.secret_access_key_encrypted
        ):
            self.add_error("secret_access_key", "An S3 destination needs a secret access key.")
        has_login = (
            cleaned.get("private_key")
            or cleaned.get("password")
            or stored.private_key_encrypted
            or stored.password_encrypted
        )
        if kind == FileDestination.Kind.SFTP and not has_login:
            self.add_error("private_key", "An SFTP destination needs a private key or a password.")
        return cleaned


@admin.register(FileDestination)
class FileDestinationAdmin(admin.ModelAdmin):
    """One destination per file-drop feed: a bucket or an SFTP server with a pinned host key."""

    form = FileDestinationForm
    list_display = ["feed", "kind", "target", "secrets", "updated_at"]
    list_filter = ["kind"]
    list_select_related = ["feed__partner"]
    search_fields = ["feed__name", "feed__partner__slug", "bucket", "host"]
    raw_id_fields = ["feed"]
    readonly_fields = ["secrets", "created_at", "updated_at"]
    fieldsets = [
        (None, {"fields": ["feed", "kind"]}),
        (
            "S3-compatible object storage",
            {"fields": ["endpoint_url", "bucket", "region", "access_key_id", "secret_access_key"]},
        ),
        (
            "SFTP",
            {
                "fields": [
                    "host",
                    "port",
                    "username",
                    "host_key",
                    "remote_directory",
                    "private_key",
                    "password",
                ]
            },
        ),
        ("Stored secrets", {"fields": ["secrets", "created_at", "updated_at"]}),
    ]

    @admin.display(description="Target")
    def target(self, obj: FileDestination) -> str:
        if obj.kind == FileDestination.Kind.S3:
            return f"s3://{obj.bucket}" + (f" at {obj.endpoint_url}" if obj.endpoint_url else "")
        folder = f" in {obj.remote_directory}" if obj.remote_directory else ""
        return f"sftp://{obj.username}@{obj.host}:{obj.port}{folder}"

    @admin.display(description="Secrets stored")
    def secrets(self, obj: FileDestination) -> str:
        stored = [
            label
            for label, ciphertext in (
                ("secret access key", obj.secret_access_key_encrypted),
                ("private key", obj.private_key_encrypted),
                ("password", obj.password_encrypted),
            )
            if ciphertext
        ]
        return ", ".join(stored) or "none"

    def save_model(
        self, request: HttpRequest, obj: FileDestination, form: forms.ModelForm, change: bool
    ) -> None:
        file_destination_save(
            destination=obj,
            secret_access_key=form.cleaned_data.get("secret_access_key", ""),
            private_key=form.cleaned_data.get("private_key", ""),
            password=form.cleaned_data.get("password", ""),
        )


@admin.register(DeadlineMiss)
class DeadlineMissAdmin(admin.ModelAdmin):
    """Window batches whose file missed its deadline (each also raised a feed notice)."""

    list_display = ["batch", "deadline", "noticed_at"]
    list_select_related = ["batch__feed__partner"]
    raw_id_fields = ["batch"]
    readonly_fields = ["batch", "deadline", "noticed_at"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: DeadlineMiss | None = None) -> bool:
        return False
