"""Fixtures of the file-drop tests: real servers on loopback, and file-drop batches.

The S3 tests talk to moto's standalone server, the SFTP tests to a real
OpenSSH ``sshd`` started here with throwaway keys; neither ever leaves
127.0.0.1. Without ``sshd`` the SFTP tests are skipped, except under
``GATEWAY_TEST_REQUIRE_SERVICES`` (CI), where they fail.
"""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from config.env import env_bool
from gateway.delivery.body import BodyWriter
from gateway.delivery.models import Batch, DeliveryAttempt
from gateway.delivery.storage import body_name, body_save
from gateway.filedrop.models import FileDestination
from gateway.filedrop.parquet import writer_for_feed
from gateway.filedrop.services import file_destination_save
from partners.models import Feed, Partner
from tests.factories import make_feed, make_partner
from tests.s3 import S3_KEY_ID, S3_SECRET

SSHD = "/usr/sbin/sshd"
# A whole UTC hour, so an hourly window starts exactly here.
WINDOW_START = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
CLAIM_ALL = 2**62


def require_service(reason: str) -> None:
    """Skip the test, or fail it where the suite must use real services (CI)."""
    if env_bool("GATEWAY_TEST_REQUIRE_SERVICES", False):
        pytest.fail(f"GATEWAY_TEST_REQUIRE_SERVICES: {reason}")
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# --- Keys ------------------------------------------------------------------------------


@dataclass(frozen=True)
class SshKey:
    private: str  # OpenSSH PEM
    public: str  # "ssh-ed25519 AAAA..."


def ssh_key() -> SshKey:
    key = ed25519.Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    return SshKey(private=private.decode(), public=public.decode())


# --- A real sshd ------------------------------------------------------------------------


@dataclass(frozen=True)
class SshServer:
    """A running sshd: where it listens, its host key as a known_hosts line, who may log in."""

    port: int
    known_hosts_line: str
    client_key: SshKey
    username: str
    root: Path  # a directory the tests upload into


def _sshd_start(tmp: Path, *, read_only: bool) -> Iterator[SshServer]:
    if not os.access(SSHD, os.X_OK):
        require_service(f"{SSHD} is not installed (apt-get install openssh-server)")
    host_key, client_key = ssh_key(), ssh_key()
    (tmp / "host_ed25519").write_text(host_key.private)
    (tmp / "host_ed25519").chmod(0o600)  # sshd ignores a readable host key
    (tmp / "authorized_keys").write_text(client_key.public + "\n")
    root = tmp / "drops"
    root.mkdir()
    port = free_port()
    sftp = "internal-sftp -R" if read_only else "internal-sftp"
    config = tmp / "sshd_config"
    config.write_text(
        f"Port {port}\n"
        "ListenAddress 127.0.0.1\n"
        f"HostKey {tmp / 'host_ed25519'}\n"
        f"AuthorizedKeysFile {tmp / 'authorized_keys'}\n"
        "PubkeyAuthentication yes\n"
        "PasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\n"
        "PermitRootLogin prohibit-password\n"
        "UsePAM no\n"
        "StrictModes no\n"
        f"Subsystem sftp {sftp}\n"
        f"PidFile {tmp / 'sshd.pid'}\n"
    )
    # Privilege separation needs this directory (normally made by the service unit).
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    log = (tmp / "sshd.log").open("wb")
    process = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)], stderr=log, stdout=log)
    try:
        _wait_for_banner(port, process, log_path=tmp / "sshd.log")
        yield SshServer(
            port=port,
            known_hosts_line=f"[127.0.0.1]:{port} {host_key.public}",
            client_key=client_key,
            username=getpass.getuser(),
            root=root,
        )
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def _wait_for_banner(port: int, process: subprocess.Popen[bytes], *, log_path: Path) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"sshd exited with {process.returncode}: {log_path.read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                if sock.recv(4).startswith(b"SSH-"):
                    return
        except OSError:
            time.sleep(0.1)
    pytest.fail(f"sshd did not answer on port {port}: {log_path.read_text()}")


@pytest.fixture(scope="session")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshServer]:
    yield from _sshd_start(tmp_path_factory.mktemp("sshd"), read_only=False)


@pytest.fixture(scope="session")
def read_only_sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshServer]:
    """An sshd whose sftp server refuses every write (``internal-sftp -R``)."""
    yield from _sshd_start(tmp_path_factory.mktemp("sshd-ro"), read_only=True)


@pytest.fixture
def sftp_root(sshd: SshServer) -> Iterator[Path]:
    """A fresh directory on the server for one test."""
    root = sshd.root / uuid.uuid4().hex
    root.mkdir()
    yield root
    shutil.rmtree(root, ignore_errors=True)


# --- Partners, feeds, destinations and batches -----------------------------------------


@pytest.fixture
def partner(db: None) -> Partner:
    return make_partner(slug="nielsen", campaigns=("cmp-1",))


def make_file_feed(*, partner: Partner, **fields: Any) -> Feed:
    fields.setdefault("name", "hourly")
    fields.setdefault("file_path_prefix", "incoming/gateway")
    fields.setdefault("batch_window_seconds", 3600)
    return make_feed(partner=partner, mode=Feed.Mode.FILE, **fields)


@pytest.fixture
def file_feed(partner: Partner) -> Feed:
    return make_file_feed(partner=partner)


def s3_destination(*, feed: Feed, endpoint: str, bucket: str, **fields: Any) -> FileDestination:
    secret = fields.pop("secret_access_key", S3_SECRET)
    fields.setdefault("access_key_id", S3_KEY_ID)
    destination = FileDestination(
        feed=feed,
        kind=FileDestination.Kind.S3,
        endpoint_url=endpoint,
        bucket=bucket,
        region="us-east-1",
        **fields,
    )
    return file_destination_save(destination=destination, secret_access_key=secret)


def sftp_destination(
    *, feed: Feed, server: SshServer, directory: Path | str, **fields: Any
) -> FileDestination:
    private_key = fields.pop("private_key", server.client_key.private)
    fields.setdefault("host_key", server.known_hosts_line)
    destination = FileDestination(
        feed=feed,
        kind=FileDestination.Kind.SFTP,
        host="127.0.0.1",
        port=server.port,
        username=server.username,
        remote_directory=str(directory),
        **fields,
    )
    return file_destination_save(destination=destination, private_key=private_key)


def stored_batch(
    *,
    feed: Feed,
    records: list[dict[str, Any]],
    sequence: int = 1,
    window_start: datetime = WINDOW_START,
    **fields: Any,
) -> Batch:
    """A ready batch of ``feed`` whose body holds ``records`` in the feed's format."""
    writer = writer_for_feed(feed) if feed.format == Feed.Format.PARQUET else BodyWriter()
    for record in records:
        writer.write(record)
    body = writer.finish()
    batch_id = fields.setdefault("id", uuid.uuid4())
    with closing(body):
        path = body_save(name=body_name(feed_id=feed.pk, batch_id=batch_id), content=body.file)
    fields.setdefault("status", Batch.Status.READY)
    return Batch.objects.create(
        feed=feed,
        sequence=sequence,
        window_start=window_start,
        window_end=window_start + timedelta(seconds=feed.batch_window_seconds),
        claim_to=CLAIM_ALL,
        body_path=path,
        body_sha256=body.sha256,
        body_bytes=body.uncompressed_bytes,
        delivered_count=body.records,
        **fields,
    )


def attempt_for(batch: Batch, *, at: datetime | None = None) -> DeliveryAttempt:
    """The attempt row the send path writes before calling ``batch_upload``."""
    at = at or datetime.now(tz=UTC)
    return DeliveryAttempt.objects.create(
        batch=batch,
        number=batch.attempts.count() + 1,
        started_at=at,
        webhook_timestamp=int(at.timestamp()),
    )
