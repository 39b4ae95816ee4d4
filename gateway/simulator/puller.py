"""The pull side of a simulated partner: list new batches, download, verify, store.

The list format is read through two small functions (``batch_list_results``,
``batch_list_next``) so a change in the gateway's response shape is a one-line
fix here.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests

from gateway.simulator.bodies import (
    MAX_BODY_BYTES,
    BodyError,
    body_text,
    gunzip_limited,
    parse_ndjson,
)
from gateway.simulator.signatures import SignatureError, signature_verify
from gateway.simulator.store import BatchStore, batch_id_valid

logger = logging.getLogger("gateway.simulator")

BATCHES_PATH = "/api/v1/partner/batches"
# Used only when a list item carries no download_url.
FALLBACK_DOWNLOAD_PATH = BATCHES_PATH + "/{id}/download"


class PullError(RuntimeError):
    """A listed batch could not be downloaded or failed a check; it is retried next poll."""


def batch_list_results(payload: Any) -> list[Mapping[str, Any]]:
    """The batch items of a list response: ``{"results": [...]}``, a bare list, or similar."""
    if isinstance(payload, list):
        items = payload
    elif isinstance(payload, Mapping):
        items = next(
            (payload[key] for key in ("results", "batches", "data", "items") if key in payload),
            [],
        )
    else:
        items = []
    return [item for item in items if isinstance(item, Mapping)]


def batch_list_next(payload: Any) -> str | None:
    """The URL of the next page, from ``next`` or ``links.next``; None on the last page."""
    if not isinstance(payload, Mapping):
        return None
    links = payload.get("links")
    candidate = payload.get("next") or (links.get("next") if isinstance(links, Mapping) else None)
    return candidate if isinstance(candidate, str) and candidate else None


@dataclass(frozen=True)
class DownloadedBatch:
    """A verified batch body, ready to store."""

    batch_id: str
    text: str
    records: list[dict[str, Any]]


class Puller:
    """Polls the gateway's batch list and stores each new batch once.

    Checks, in order: the body's SHA-256 against ``X-Content-SHA256`` and the
    listed ``body_sha256``, then (when the headers carry one and a secret is
    configured) the Standard Webhooks signature.
    """

    def __init__(
        self,
        *,
        store: BatchStore,
        gateway_url: str,
        api_key: str,
        secret: str | None = None,
        session: requests.Session | None = None,
        page_size: int = 100,
        max_pages: int = 50,
        timeout: float = 30.0,
        max_body_bytes: int = MAX_BODY_BYTES,
    ) -> None:
        self.store = store
        self.gateway_url = gateway_url.rstrip("/")
        self.api_key = api_key
        self.secret = secret
        self.session = session or requests.Session()
        self.page_size = page_size
        self.max_pages = max_pages
        self.timeout = timeout
        self.max_body_bytes = max_body_bytes

    # --- one poll ---------------------------------------------------------------

    def poll_once(self) -> list[str]:
        """Download every listed batch not yet stored; returns the ids stored now."""
        stored: list[str] = []
        for item in self.listed_batches():
            batch_id = str(item.get("id", ""))
            if not batch_id_valid(batch_id) or self.store.contains(batch_id):
                continue
            try:
                batch = self.download(item)
            except PullError as exc:
                logger.warning("batch %s rejected error=%s", batch_id, exc)
                continue
            if self.store.add(
                batch_id=batch.batch_id,
                body=batch.text.encode(),
                records=batch.records,
                source="pull",
            ):
                logger.info("batch %s pulled events=%s", batch_id, len(batch.records))
                stored.append(batch_id)
        return stored

    def listed_batches(self) -> list[Mapping[str, Any]]:
        """Items across the list's pages, newest first, until a page holds nothing new.

        The gateway lists newest first, so once a whole page is already stored
        the older pages are too; ``max_pages`` bounds a first run's catch-up.
        """
        url: str | None = f"{self.gateway_url}{BATCHES_PATH}?limit={self.page_size}"
        items: list[Mapping[str, Any]] = []
        seen_urls: set[str] = set()
        while url and url not in seen_urls and len(seen_urls) < self.max_pages:
            seen_urls.add(url)
            payload = self._get_json(url)
            page = batch_list_results(payload)
            items.extend(page)
            if page and all(self.store.contains(str(item.get("id", ""))) for item in page):
                break
            next_url = batch_list_next(payload)
            url = urljoin(url, next_url) if next_url else None
        return items

    def _get_json(self, url: str) -> Any:
        response = self._get(url)
        try:
            return response.json()
        except ValueError as exc:
            raise PullError(f"batch list is not JSON: {exc}") from exc

    # --- one batch --------------------------------------------------------------

    def download(self, item: Mapping[str, Any]) -> DownloadedBatch:
        batch_id = str(item["id"])
        url = item.get("download_url") or FALLBACK_DOWNLOAD_PATH.format(id=batch_id)
        response = self._get(urljoin(self.gateway_url + "/", str(url)), stream=True)
        raw = self._read_raw(response)
        try:
            data = self._decompress(raw, response.headers.get("Content-Encoding", ""))
            text = body_text(data)
            _check_digest(data, response.headers.get("X-Content-SHA256"), item.get("body_sha256"))
            self._check_signature(text, response.headers)
            records = parse_ndjson(text)
        except (BodyError, SignatureError) as exc:
            raise PullError(str(exc)) from exc
        _warn_on_count_mismatch(batch_id, item.get("event_count"), len(records))
        return DownloadedBatch(batch_id=batch_id, text=text, records=records)

    def _read_raw(self, response: requests.Response) -> bytes:
        # Read the bytes as sent: requests would gunzip silently and unbounded.
        with response:
            raw = response.raw.read(self.max_body_bytes + 1, decode_content=False)
        if len(raw) > self.max_body_bytes:
            raise PullError(f"batch body exceeds {self.max_body_bytes} bytes")
        return raw

    def _decompress(self, raw: bytes, content_encoding: str) -> bytes:
        encoding = content_encoding.strip().lower()
        if encoding == "gzip":
            return gunzip_limited(raw, max_bytes=self.max_body_bytes)
        if encoding in ("", "identity"):
            return raw
        raise PullError(f"unsupported Content-Encoding {encoding!r}")

    def _check_signature(self, text: str, headers: Mapping[str, str]) -> None:
        if "webhook-signature" not in headers:
            return
        if self.secret is None:
            logger.debug("batch is signed but no secret is configured; signature not checked")
            return
        signature_verify(
            secret=self.secret, body=text, headers=dict(headers), check_timestamp=False
        )

    def _get(self, url: str, *, stream: bool = False) -> requests.Response:
        # The API key goes only to the gateway, whatever URL a response points to.
        if not _same_origin(url, self.gateway_url):
            raise PullError(f"refusing to send credentials to {url}")
        try:
            response = self.session.get(
                url,
                headers={"Authorization": f"Bearer {self.api_key}"},
                timeout=self.timeout,
                stream=stream,
            )
        except requests.RequestException as exc:
            raise PullError(f"GET {url} failed: {exc}") from exc
        if not response.ok:
            response.close()
            raise PullError(f"GET {url}: HTTP {response.status_code}")
        return response


def _check_digest(data: bytes, header_digest: str | None, listed_digest: Any) -> None:
    actual = hashlib.sha256(data).hexdigest()
    for expected in (header_digest, listed_digest):
        if expected and not hmac.compare_digest(actual, str(expected).strip().lower()):
            raise BodyError(f"SHA-256 mismatch: got {actual}, expected {expected}", code="digest")


def _warn_on_count_mismatch(batch_id: str, listed: Any, actual: int) -> None:
    if isinstance(listed, int) and listed != actual:
        logger.warning("batch %s lists %s events but holds %s", batch_id, listed, actual)


def _same_origin(url: str, base: str) -> bool:
    a, b = urlsplit(url), urlsplit(base)
    return (a.scheme, a.hostname, a.port) == (b.scheme, b.hostname, b.port)
