"""HTTP transport for push delivery: one POST in, one small result out. No Django import.

The transport never raises for network trouble and never decides about
retries: it reports what happened, and ``gateway.delivery.services`` turns
that into a state change.

Given a ``pinned_address``, the POST goes to exactly that IP address (the one
``partners.endpoints.resolve_and_check`` resolved and approved) while the
URL's host name is still used for TLS SNI, certificate verification and the
Host header. Without pinning, requests would resolve the name a second time,
and a DNS answer changed in between (DNS rebinding) could point the signed
POST at our own network.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import ModuleType
from typing import Any, Protocol
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from requests.exceptions import InvalidURL
from urllib3.connectionpool import HTTPConnectionPool

USER_AGENT = "measurement-gateway/0.1"
# Only the start of a partner's response is kept; reading stops there so a
# huge or endless response cannot exhaust a worker's memory.
EXCERPT_CHARS = 1000
_EXCERPT_READ_BYTES = EXCERPT_CHARS * 4
# A streamed body goes out in blocks of this size. urllib3 reads 16 KiB at a
# time: a half-megabyte batch would be 33 reads and sends, which cost about 1 %
# of its POST on loopback; 256 KiB blocks cost next to nothing in memory.
SEND_BLOCK_BYTES = 256 * 1024


class ReadableBody(Protocol):
    """A body to stream: a file opened for reading, or anything else that reads like one."""

    def read(self, size: int = -1, /) -> bytes: ...


class NetworkError(StrEnum):
    """Why no HTTP status came back."""

    TIMEOUT = "timeout"
    CONNECTION = "connection"
    # The request could not even be formed (bad URL, bad header): retrying is pointless.
    INVALID_REQUEST = "invalid_request"


@dataclass(frozen=True)
class TransportResult:
    """What one POST produced: a status, or a network error, plus timing and the reply's start."""

    status: int | None
    duration_ms: int
    response_excerpt: str = ""
    error: str = ""
    network_error: NetworkError | None = None
    retry_after: str | None = None


def _excerpt(response: requests.Response) -> tuple[str, str]:
    """The first characters of the body, and an error if reading it failed."""
    chunks: list[bytes] = []
    size = 0
    try:
        for chunk in response.iter_content(chunk_size=1024):
            chunks.append(chunk)
            size += len(chunk)
            if size >= _EXCERPT_READ_BYTES:
                break
    except requests.RequestException as exc:
        return b"".join(chunks).decode("utf-8", "replace")[:EXCERPT_CHARS], f"reading reply: {exc}"
    return b"".join(chunks).decode("utf-8", "replace")[:EXCERPT_CHARS], ""


class PinnedAddressAdapter(HTTPAdapter):
    """Sends every request for one host name to one fixed IP address.

    The connection pool is opened on the address, never on the name, so no
    second DNS lookup happens. For https the name goes into the pool as
    ``server_hostname`` (SNI) and ``assert_hostname`` (the certificate must be
    valid for the name, not the address), and every request carries the name
    in its Host header. Proxies are ignored: a proxy would resolve the name
    itself and undo the pinning.
    """

    def __init__(self, *, host: str, address: str) -> None:
        super().__init__()
        self.host = host.lower()
        # Validated here so a bad address is a clear error, not a failed connect.
        self.address = str(ipaddress.ip_address(address))

    def get_connection_with_tls_context(
        self,
        request: requests.PreparedRequest,
        verify: bool | str | None,
        proxies: Mapping[str, str] | None = None,
        cert: Any = None,
    ) -> HTTPConnectionPool:
        # requests resolves verify before it gets here; None would mean its default: verify.
        checked = True if verify is None else verify
        host_params, key_kwargs = self.build_connection_pool_key_attributes(request, checked, cert)
        pool_kwargs: dict[str, Any] = {**key_kwargs, "blocksize": SEND_BLOCK_BYTES}
        if host_params["host"] != self.host:
            # The adapter only knows one checked address; any other host
            # would be sent to it under a name nobody validated.
            raise InvalidURL(f"this connection is pinned to {self.host}", request=request)
        if host_params["scheme"] == "https":
            pool_kwargs.update(server_hostname=self.host, assert_hostname=self.host)
        return self.poolmanager.connection_from_host(
            host=self.address,
            port=host_params["port"],
            scheme=host_params["scheme"],
            pool_kwargs=pool_kwargs,
        )

    def add_headers(self, request: requests.PreparedRequest, **kwargs: Any) -> None:
        # Without it, http.client would put the IP address in the Host header.
        request.headers["Host"] = _host_header(request.url or "")


def _host_header(url: str) -> str:
    """The Host header value for ``url``: the name, with the port only when not the default."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    default_port = 443 if parts.scheme == "https" else 80
    return host if parts.port in (None, default_port) else f"{host}:{parts.port}"


def pinned_session(*, url: str, address: str) -> requests.Session:
    """A session whose requests for ``url``'s host all go to ``address``."""
    session = requests.Session()
    # The environment must not add a proxy, which would do its own DNS lookup.
    session.trust_env = False
    adapter = PinnedAddressAdapter(host=urlsplit(url).hostname or "", address=address)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


def post(
    *,
    url: str,
    body: bytes | ReadableBody,
    headers: Mapping[str, str],
    timeout: float,
    session: requests.Session | None = None,
    pinned_address: str | None = None,
    ca_bundle: str | None = None,
) -> TransportResult:
    """POST ``body`` to ``url`` without following redirects; never raises for network errors.

    ``body`` may be a file opened for reading: it is streamed, with its size
    as Content-Length.

    ``pinned_address``: connect to this IP instead of resolving the URL's host
    (see ``PinnedAddressAdapter``); it cannot be combined with ``session``.
    ``ca_bundle``: a PEM file of trusted CAs instead of the default bundle.
    """
    request = _Request(url=url, body=body, headers=headers, timeout=timeout, verify=ca_bundle)
    if pinned_address is None:
        return _send(request, sender=session or requests)
    if session is not None:
        raise ValueError("pass either a session or a pinned address, not both")
    with pinned_session(url=url, address=pinned_address) as pinned:
        return _send(request, sender=pinned)


@dataclass(frozen=True)
class _Request:
    url: str
    body: bytes | ReadableBody
    headers: Mapping[str, str]
    timeout: float
    # None keeps requests' default: the session's, else the certifi bundle.
    verify: str | None


def _send(request: _Request, *, sender: requests.Session | ModuleType) -> TransportResult:
    all_headers = {"User-Agent": USER_AGENT, **request.headers}
    started = time.monotonic()

    def elapsed_ms() -> int:
        return int((time.monotonic() - started) * 1000)

    try:
        # A redirect is reported as its 3xx status: following it could carry
        # signed data to a host nobody validated.
        response = sender.post(
            request.url,
            data=request.body,
            headers=all_headers,
            timeout=request.timeout,
            allow_redirects=False,
            stream=True,
            verify=request.verify,
        )
    except requests.Timeout as exc:
        return TransportResult(
            status=None,
            duration_ms=elapsed_ms(),
            error=str(exc),
            network_error=NetworkError.TIMEOUT,
        )
    except requests.ConnectionError as exc:
        return TransportResult(
            status=None,
            duration_ms=elapsed_ms(),
            error=str(exc),
            network_error=NetworkError.CONNECTION,
        )
    except (requests.RequestException, ValueError) as exc:
        return TransportResult(
            status=None,
            duration_ms=elapsed_ms(),
            error=str(exc),
            network_error=NetworkError.INVALID_REQUEST,
        )
    with response:
        excerpt, read_error = _excerpt(response)
    return TransportResult(
        status=response.status_code,
        duration_ms=elapsed_ms(),
        response_excerpt=excerpt,
        error=read_error,
        retry_after=response.headers.get("Retry-After"),
    )
