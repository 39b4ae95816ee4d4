"""A pinned POST goes to the checked address, while TLS and Host still use the URL's name.

Every server here listens on loopback and every made-up name is answered by a
fake resolver (or never looked up at all), so no packet leaves the machine.
"""

from __future__ import annotations

import datetime as dt
import io
import ipaddress
import socket
import ssl
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from gateway.delivery.transport import SEND_BLOCK_BYTES, NetworkError, pinned_session, post
from partners.endpoints import resolve_and_check

NAME = "partner.test"
GOOD, EVIL = "127.0.0.1", "127.0.0.2"

_real_getaddrinfo = socket.getaddrinfo


# --- a recording partner server ------------------------------------------------------


@dataclass
class Seen:
    """What a test server received."""

    hosts: list[str] = field(default_factory=list)
    bodies: list[bytes] = field(default_factory=list)
    sni: list[str | None] = field(default_factory=list)


class _Handler(BaseHTTPRequestHandler):
    server: _RecordingServer

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        self.server.seen.bodies.append(self.rfile.read(length))
        self.server.seen.hosts.append(self.headers.get("Host", ""))
        self.send_response(202)
        self.end_headers()
        self.wfile.write(b"accepted by " + self.server.server_address[0].encode())

    def log_message(self, format: str, *args: object) -> None:
        pass


class _RecordingServer(ThreadingHTTPServer):
    seen: Seen


@contextmanager
def serving(
    address: str, *, port: int = 0, tls: ssl.SSLContext | None = None
) -> Iterator[_RecordingServer]:
    server = _RecordingServer((address, port), _Handler)
    server.seen = Seen()
    if tls is not None:
        tls.sni_callback = lambda sock, name, ctx: server.seen.sni.append(name)
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


# --- a fake resolver ------------------------------------------------------------------


@dataclass
class RebindingResolver:
    """Answers ``first`` for NAME once, then ``later`` on every further lookup (DNS rebinding)."""

    first: str
    later: str
    asked: list[str] = field(default_factory=list)

    def getaddrinfo(self, host: str, port: int, *args: object, **kwargs: object) -> list:
        if host != NAME:
            # Numeric addresses (the pinned connection) resolve locally as usual.
            return _real_getaddrinfo(host, port, *args, **kwargs)
        self.asked.append(host)
        address = self.first if len(self.asked) == 1 else self.later
        return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (address, port))]


@pytest.fixture
def rebinding_dns(monkeypatch: pytest.MonkeyPatch) -> RebindingResolver:
    resolver = RebindingResolver(first=GOOD, later=EVIL)
    monkeypatch.setattr(socket, "getaddrinfo", resolver.getaddrinfo)
    return resolver


@pytest.fixture
def no_dns_for_the_name(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if anything looks the made-up name up."""

    def getaddrinfo(host: str, *args: object, **kwargs: object) -> list:
        assert host != NAME, "the pinned name was resolved again"
        return _real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


# --- plain http ------------------------------------------------------------------------


@pytest.mark.usefixtures("no_dns_for_the_name")
def test_the_post_goes_to_the_pinned_address_with_the_name_as_host(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A proxy from the environment would resolve the name itself: it is ignored.
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    with serving(GOOD) as server:
        port = server.server_address[1]
        result = post(
            url=f"http://{NAME}:{port}/in",
            body=b"payload",
            headers={},
            timeout=5,
            pinned_address=GOOD,
        )

    assert result.status == 202, result.error
    assert server.seen.hosts == [f"{NAME}:{port}"]
    assert server.seen.bodies == [b"payload"]


class ReadSizes(io.BytesIO):
    """A body that notes the size of each read the transport asks for."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.asked: list[int] = []

    def read(self, size: int | None = -1, /) -> bytes:
        self.asked.append(-1 if size is None else size)
        return super().read(size)


def test_a_streamed_body_goes_out_in_large_blocks() -> None:
    data = bytes(range(256)) * (SEND_BLOCK_BYTES // 256) * 2 + b"tail"
    body = ReadSizes(data)
    with serving(GOOD) as server:
        port = server.server_address[1]
        result = post(
            url=f"http://{GOOD}:{port}/in", body=body, headers={}, timeout=5, pinned_address=GOOD
        )

    assert result.status == 202, result.error
    assert server.seen.bodies == [data]
    assert set(body.asked) == {SEND_BLOCK_BYTES}
    assert len(body.asked) == 4  # two full blocks, the tail, and the empty read at the end


def test_a_rebinding_answer_after_the_check_is_never_used(
    rebinding_dns: RebindingResolver, settings
) -> None:
    settings.ALLOW_PRIVATE_ENDPOINTS = True
    with serving(GOOD) as good:
        port = good.server_address[1]
        with serving(EVIL, port=port) as evil:
            url = f"http://{NAME}:{port}/in"
            pinned = resolve_and_check(url)
            result = post(url=url, body=b"x", headers={}, timeout=5, pinned_address=pinned.address)

    assert pinned.address == GOOD
    assert result.status == 202, result.error
    assert result.response_excerpt == f"accepted by {GOOD}"
    assert good.seen.hosts == [f"{NAME}:{port}"]
    assert evil.seen.hosts == []
    assert rebinding_dns.asked == [NAME]


def test_without_a_pinned_address_the_second_answer_would_win(
    rebinding_dns: RebindingResolver, settings
) -> None:
    # The attack the pinning prevents, shown with the same servers and resolver.
    settings.ALLOW_PRIVATE_ENDPOINTS = True
    with serving(GOOD) as good:
        port = good.server_address[1]
        with serving(EVIL, port=port) as evil:
            url = f"http://{NAME}:{port}/in"
            resolve_and_check(url)
            post(url=url, body=b"x", headers={}, timeout=5)

    assert good.seen.hosts == []
    assert len(evil.seen.hosts) == 1


@pytest.mark.usefixtures("no_dns_for_the_name")
@pytest.mark.parametrize("address", ["203.0.113.7", "2001:db8::7"])
def test_the_socket_is_opened_on_the_pinned_address(
    monkeypatch: pytest.MonkeyPatch, address: str
) -> None:
    # Stands in for the network: records where urllib3 connects, connects nowhere.
    targets: list[tuple[str, int]] = []

    def create_connection(target: tuple[str, int], *args: object, **kwargs: object) -> None:
        targets.append(target)
        raise ConnectionRefusedError("not in tests")

    monkeypatch.setattr("urllib3.util.connection.create_connection", create_connection)

    result = post(url=f"https://{NAME}/in", body=b"", headers={}, timeout=5, pinned_address=address)

    assert targets == [(address, 443)]
    assert result.network_error == NetworkError.CONNECTION


def test_a_pinned_session_refuses_other_hosts() -> None:
    with (
        pinned_session(url=f"http://{NAME}/in", address=GOOD) as session,
        pytest.raises(requests.exceptions.InvalidURL, match="pinned"),
    ):
        session.post("http://elsewhere.test/in", data=b"")


def test_a_session_and_a_pinned_address_do_not_mix() -> None:
    with requests.Session() as session, pytest.raises(ValueError, match="either"):
        post(url="http://x/", body=b"", headers={}, timeout=1, session=session, pinned_address=GOOD)


# --- https ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pki:
    ca_file: str
    server: ssl.SSLContext


def _pki(tmp_path: Path, *, names: Sequence[str] = (), addresses: Sequence[str] = ()) -> Pki:
    """A throwaway CA and a server certificate it signed for ``names`` / ``addresses``."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test CA")])
    ca = (
        _builder(ca_name, ca_name, ca_key.public_key(), now)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    sans = [x509.DNSName(n) for n in names] + [
        x509.IPAddress(ipaddress.ip_address(a)) for a in addresses
    ]
    leaf = (
        _builder(x509.Name([]), ca_name, key.public_key(), now)
        .add_extension(x509.SubjectAlternativeName(sans), critical=True)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_file = tmp_path / "ca.pem"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    chain_file = tmp_path / "server.pem"
    chain_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        + leaf.public_bytes(serialization.Encoding.PEM)
    )
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(chain_file)
    return Pki(ca_file=str(ca_file), server=server)


def _builder(
    subject: x509.Name, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey, now: dt.datetime
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
    )


@pytest.mark.usefixtures("no_dns_for_the_name")
def test_https_to_a_pinned_address_sends_the_name_as_sni_and_verifies_it(tmp_path: Path) -> None:
    pki = _pki(tmp_path, names=[NAME])
    with serving(GOOD, tls=pki.server) as server:
        port = server.server_address[1]
        result = post(
            url=f"https://{NAME}:{port}/in",
            body=b"secret",
            headers={},
            timeout=5,
            pinned_address=GOOD,
            ca_bundle=pki.ca_file,
        )

    assert result.status == 202, result.error
    assert server.seen.sni == [NAME]
    assert server.seen.hosts == [f"{NAME}:{port}"]
    assert server.seen.bodies == [b"secret"]


@pytest.mark.usefixtures("no_dns_for_the_name")
@pytest.mark.parametrize(
    "certified",
    [
        {"names": ["other.test"]},
        # Valid for the address we connect to, but not for the name: still refused.
        {"addresses": [GOOD]},
    ],
    ids=["another-name", "only-the-address"],
)
def test_https_refuses_a_certificate_not_valid_for_the_name(
    tmp_path: Path, certified: dict[str, list[str]]
) -> None:
    pki = _pki(tmp_path, **certified)
    with serving(GOOD, tls=pki.server) as server:
        port = server.server_address[1]
        result = post(
            url=f"https://{NAME}:{port}/in",
            body=b"secret",
            headers={},
            timeout=5,
            pinned_address=GOOD,
            ca_bundle=pki.ca_file,
        )

    assert result.status is None
    assert result.network_error == NetworkError.CONNECTION
    assert NAME in result.error
    assert server.seen.bodies == []


@pytest.mark.usefixtures("no_dns_for_the_name")
def test_https_refuses_a_certificate_from_an_untrusted_ca(tmp_path: Path) -> None:
    pki = _pki(tmp_path, names=[NAME])
    (tmp_path / "other").mkdir()
    other_ca = _pki(tmp_path / "other", names=[NAME])
    with serving(GOOD, tls=pki.server) as server:
        port = server.server_address[1]
        result = post(
            url=f"https://{NAME}:{port}/in",
            body=b"secret",
            headers={},
            timeout=5,
            pinned_address=GOOD,
            ca_bundle=other_ca.ca_file,
        )

    assert result.network_error == NetworkError.CONNECTION
    assert "certificate verify failed" in result.error
    assert server.seen.bodies == []
