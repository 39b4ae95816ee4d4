"""Uploads to an SFTP server, with paramiko. No Django.

Fail closed: the server must present exactly the host key configured for the
destination, or nothing is sent (there is no "trust on first use"). Each file
is written under a temporary name (``.<name>.part``) and renamed into place,
so a partner scanning the directory never picks up half a file.
"""

from __future__ import annotations

import base64
import binascii
import io
import posixpath
import socket
from dataclasses import dataclass, field
from typing import IO

import paramiko
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from gateway.errors import DeliveryError

PRIVATE_KEY_CLASSES: tuple[tuple[type, type[paramiko.PKey]], ...] = (
    (ed25519.Ed25519PrivateKey, paramiko.Ed25519Key),
    (ec.EllipticCurvePrivateKey, paramiko.ECDSAKey),
    (rsa.RSAPrivateKey, paramiko.RSAKey),
)


class HostKeyError(ValueError):
    """A configured host key is not a public key paramiko can check."""


class PrivateKeyError(ValueError):
    """A configured private key cannot be loaded (wrong format, or protected by a passphrase)."""


@dataclass(frozen=True)
class SftpTarget:
    """A server, its pinned host key, and how to log in.

    ``address`` is where to connect (the host name's checked address);
    ``host`` only names the server in messages.
    """

    host: str
    address: str
    port: int
    username: str
    host_key: str
    directory: str = ""
    private_key: str = field(default="", repr=False)
    password: str = field(default="", repr=False)


def host_key_parse(line: str) -> paramiko.PKey:
    """The public key in a known_hosts line (``[host] type base64 [comment]``)."""
    fields = line.strip().split()
    if fields and fields[0].startswith("@"):
        raise HostKeyError("known_hosts markers (@cert-authority, @revoked) are not supported")
    known_types = {
        name
        for key_class in paramiko.key_classes
        for name in key_class.identifiers()
        if "-cert-" not in name
    }
    for index, key_type in enumerate(fields[:-1]):
        if key_type in known_types:
            try:
                data = base64.b64decode(fields[index + 1], validate=True)
                return paramiko.PKey.from_type_string(key_type, data)
            except (binascii.Error, ValueError, paramiko.SSHException) as exc:
                raise HostKeyError(f"the {key_type} host key cannot be read: {exc}") from exc
    raise HostKeyError(
        "expected a known_hosts line such as 'sftp.example.com ssh-ed25519 AAAA...' "
        f"with a key type of {', '.join(sorted(known_types))}"
    )


def private_key_parse(text: str) -> paramiko.PKey:
    """An unencrypted OpenSSH or PEM private key (Ed25519, ECDSA or RSA)."""
    data = text.strip().encode() + b"\n"
    loaded: PrivateKeyTypes
    try:
        try:
            loaded = serialization.load_ssh_private_key(data, password=None)
        except ValueError:
            loaded = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        # TypeError: the key is encrypted. Never echo the key, even in part.
        raise PrivateKeyError(f"not an unencrypted OpenSSH or PEM private key ({exc})") from exc
    for crypto_class, key_class in PRIVATE_KEY_CLASSES:
        if isinstance(loaded, crypto_class):
            # paramiko reads every key type in the OpenSSH format, PKCS #8 not always.
            openssh = loaded.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.OpenSSH,
                serialization.NoEncryption(),
            )
            return key_class.from_private_key(io.StringIO(openssh.decode()))
    raise PrivateKeyError(f"unsupported private key type {type(loaded).__name__}")


def fingerprint(key: paramiko.PKey) -> str:
    return f"{key.get_name()} {key.fingerprint}"


class SftpDrop:
    """One SSH connection, checked against the pinned host key, for one batch's uploads."""

    def __init__(self, target: SftpTarget, *, timeout: float) -> None:
        self._directory = target.directory
        folder = f" in {target.directory}" if target.directory else ""
        self.location = f"sftp://{target.username}@{target.host}:{target.port}{folder}"
        try:
            expected = host_key_parse(target.host_key)
            login_key = private_key_parse(target.private_key) if target.private_key else None
        except (HostKeyError, PrivateKeyError) as exc:
            raise DeliveryError(f"SFTP destination misconfigured: {exc}", transient=False) from exc
        if login_key is None and not target.password:
            raise DeliveryError("SFTP destination has no private key or password", transient=False)
        self._transport = self._connect(target, expected=expected, timeout=timeout)
        try:
            self._sftp = self._login(target, login_key=login_key, timeout=timeout)
        except Exception as exc:
            self._transport.close()
            raise sftp_error(exc, where=self.location) from exc

    def _connect(
        self, target: SftpTarget, *, expected: paramiko.PKey, timeout: float
    ) -> paramiko.Transport:
        """Open the SSH transport and check the server's key before anything is sent."""
        try:
            sock = socket.create_connection((target.address, target.port), timeout=timeout)
        except OSError as exc:
            raise sftp_error(exc, where=self.location) from exc
        transport = paramiko.Transport(sock)
        transport.banner_timeout = transport.auth_timeout = timeout
        # Ask for the configured key's type only, so a server with several
        # host keys shows the one we can compare.
        transport.get_security_options().key_types = _host_key_algorithms(expected)
        try:
            transport.start_client(timeout=timeout)
            presented = transport.get_remote_server_key()
        except Exception as exc:
            transport.close()
            raise sftp_error(exc, where=self.location) from exc
        if presented.asbytes() != expected.asbytes():
            transport.close()
            raise DeliveryError(
                f"SFTP host key mismatch for {target.host}:{target.port}: the server presented "
                f"{fingerprint(presented)}, the destination expects {fingerprint(expected)}; "
                "nothing was sent",
                transient=False,
            )
        return transport

    def _login(
        self, target: SftpTarget, *, login_key: paramiko.PKey | None, timeout: float
    ) -> paramiko.SFTPClient:
        if login_key is not None:
            self._transport.auth_publickey(target.username, login_key)
        else:
            self._transport.auth_password(target.username, target.password)
        sftp = paramiko.SFTPClient.from_transport(self._transport)
        if sftp is None:
            raise paramiko.SSHException("the server refused the sftp subsystem")
        channel = sftp.get_channel()
        if channel is not None:  # always, for a client made from a transport
            channel.settimeout(timeout)
        return sftp

    def put(self, *, path: str, file: IO[bytes], size: int, content_type: str) -> None:
        remote = posixpath.join(self._directory, path) if self._directory else path
        folder, name = posixpath.split(remote)
        partial = posixpath.join(folder, f".{name}.part")
        try:
            self._makedirs(folder)
            self._sftp.putfo(file, partial, file_size=size, confirm=True)
            self._replace(partial, remote)
        except Exception as exc:
            raise sftp_error(exc, where=f"{self.location}, file {remote}") from exc

    def close(self) -> None:
        self._sftp.close()
        self._transport.close()

    def _makedirs(self, folder: str) -> None:
        if not folder or folder == "/" or self._exists(folder):
            return
        self._makedirs(posixpath.dirname(folder))
        try:
            self._sftp.mkdir(folder)
        except OSError:
            # Another upload may have made it meanwhile; anything else is a real error.
            if not self._exists(folder):
                raise

    def _exists(self, path: str) -> bool:
        try:
            self._sftp.stat(path)
        except FileNotFoundError:
            return False
        return True

    def _replace(self, source: str, target: str) -> None:
        try:
            # OpenSSH's extension replaces the target in one step.
            self._sftp.posix_rename(source, target)
        except OSError:
            if not self._exists(source):
                raise
            # Servers without it refuse to rename over a file: remove it first.
            if self._exists(target):
                self._sftp.remove(target)
            self._sftp.rename(source, target)


def _host_key_algorithms(key: paramiko.PKey) -> tuple[str, ...]:
    if isinstance(key, paramiko.RSAKey):
        # An RSA host key signs with SHA-2 (RFC 8332); SHA-1 "ssh-rsa" is not offered.
        return ("rsa-sha2-512", "rsa-sha2-256")
    return (key.get_name(),)


def sftp_error(exc: Exception, *, where: str) -> DeliveryError:
    """The DeliveryError for a failed SFTP step: permanent for credentials and permissions."""
    if isinstance(exc, DeliveryError):
        return exc
    if isinstance(exc, paramiko.AuthenticationException):
        return DeliveryError(f"SFTP login refused at {where}: {exc}", transient=False)
    if isinstance(exc, PermissionError | FileNotFoundError):
        # The account may not write there, or the base directory is not there.
        return DeliveryError(f"SFTP {exc.strerror or exc} at {where}", transient=False)
    # Timeouts, refused or dropped connections, a full disk ("Failure"): try later.
    detail = str(exc) or type(exc).__name__
    return DeliveryError(f"SFTP error at {where}: {detail}", transient=True)
