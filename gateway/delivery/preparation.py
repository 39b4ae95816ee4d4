"""A push attempt's body and signatures, made ready on a thread while the attempt is recorded.

Signing a body costs about as much as the bookkeeping around a send (the
claim and the attempt row, the feed's limits, the endpoint check): the v1
signature covers the NDJSON, which ``WireBody.signed_chunks`` inflates from
storage piece by piece, one piece ahead on a thread of its own. ISA-L and
hashlib release the GIL, so ``request_prepare`` starts that work on a thread
and the send path does its bookkeeping meanwhile; ``PreparedRequest.result``
then waits for what is left, if anything. A gzip body itself is not read
here: the POST streams it from storage (``WireBody.opened``).

The signer is made on the caller's thread before the thread starts (the
default one from the signing keys that came with the batch,
``statements.batch_for_send``); the thread touches neither the database nor
Django's connections.

A batch's first attempt usually sends the signatures its build made
(``gateway.delivery.first_signature``), dated when the build signed: the
thread then only checks that the stored body is the one signed, and the
attempt's ``webhook-timestamp`` is the build's (``PreparedRequest.timestamp``).
"""

from __future__ import annotations

from concurrent.futures import Future
from dataclasses import dataclass

from gateway.delivery import signing
from gateway.delivery.first_signature import (
    FirstSignature,
    first_signature_for_attempt,
    stored_body_sha256,
)
from gateway.delivery.models import Batch
from gateway.delivery.retention import attempt_body_error
from gateway.delivery.send_threads import send_executor
from gateway.delivery.signers import Signer, attempt_signer, stream_signed_headers
from gateway.delivery.wire import DAMAGED_BODY_ERRORS, StoredBody, WireBody, wire_body
from gateway.errors import DeliveryError
from partners.models import Feed


@dataclass(frozen=True)
class SignedRequest:
    """The signature headers of one attempt, and the body they sign (``body.opened()`` to send)."""

    headers: dict[str, str]
    body: WireBody


class PreparedRequest:
    """The outcome of ``request_prepare``: the request, or the error that prevented it.

    ``timestamp`` is the attempt's ``webhook-timestamp``: the one asked for, or
    that of the build's signatures when the attempt sends them.
    """

    def __init__(
        self,
        *,
        future: Future[SignedRequest] | None,
        error: DeliveryError | None,
        timestamp: int,
    ):
        self._future = future
        self._error = error
        self.timestamp = timestamp

    def result(self) -> SignedRequest:
        """The signed request, once ready; raises what preparing it raised."""
        if self._error is not None:
            raise self._error
        assert self._future is not None
        return self._future.result()

    def close(self) -> None:
        """Close the body once preparing it is done: after the attempt, or instead of it.

        Closing a body already closed (sent) does nothing.
        """
        if self._future is not None:
            self._future.add_done_callback(_body_close)


def _body_close(future: Future[SignedRequest]) -> None:
    if not future.cancelled() and future.exception() is None:
        future.result().body.close()


def request_prepare(*, batch: Batch, timestamp: int) -> PreparedRequest:
    """Start making ``batch``'s body and signatures for an attempt dated ``timestamp``.

    Failures that no retry mends are permanent DeliveryErrors, raised by
    ``result()`` inside the attempt, so they are recorded like any other.
    """
    feed: Feed = batch.feed
    body_error = attempt_body_error(batch)
    if body_error is not None:
        return PreparedRequest(future=None, error=body_error, timestamp=timestamp)
    try:
        # The keys in use at this attempt's timestamp: during a rotation's
        # overlap that is the old and the new key, each adding a signature.
        signer = attempt_signer(partner=feed.partner, timestamp=timestamp)
    except DeliveryError as exc:
        return PreparedRequest(future=None, error=exc, timestamp=timestamp)
    first = first_signature_for_attempt(batch=batch, signer=signer, now=timestamp)
    if first is not None:
        future = send_executor().submit(
            _first_signed_request, feed=feed, body_path=batch.body_path, msg_id=str(batch.pk),
            first=first,
        )  # fmt: skip
        return PreparedRequest(future=future, error=None, timestamp=first.timestamp)
    future = send_executor().submit(
        _signed_request, feed=feed, body_path=batch.body_path, msg_id=str(batch.pk),
        timestamp=timestamp, signer=signer,
    )  # fmt: skip
    return PreparedRequest(future=future, error=None, timestamp=timestamp)


def _first_signed_request(
    *, feed: Feed, body_path: str, msg_id: str, first: FirstSignature
) -> SignedRequest:
    """The stored body with the build's signatures, if it is still the body they sign."""
    # Opened once: checked here, then sent from the same file (one download from S3).
    stored = StoredBody(body_path)
    try:
        if stored_body_sha256(stored.rewound()) != first.stored_sha256:
            raise DeliveryError(
                "the stored body is not the one its build signed (changed or damaged); not sent",
                transient=False,
            )
    except BaseException:
        stored.close()
        raise
    wire = wire_body(feed=feed, body_path=body_path, stored=stored)
    signature = signing.signature_headers(
        msg_id=msg_id, timestamp=first.timestamp, signatures=first.signatures
    )
    return SignedRequest(headers={**wire.headers(), **signature}, body=wire)


def _signed_request(
    *, feed: Feed, body_path: str, msg_id: str, timestamp: int, signer: Signer
) -> SignedRequest:
    # Opened once: signed (or made for the wire) here, then sent from the same file.
    stored = StoredBody(body_path)
    wire: WireBody | None = None
    try:
        wire = wire_body(feed=feed, body_path=body_path, stored=stored)
        # The batch id is the webhook id on every attempt, so partners can drop
        # a duplicate when a "failed" attempt had in fact arrived.
        signature = stream_signed_headers(
            signer=signer, msg_id=msg_id, timestamp=timestamp, chunks=wire.signed_chunks()
        )
    except BaseException as exc:
        stored.close()
        if wire is not None:
            wire.close()
        if isinstance(exc, DAMAGED_BODY_ERRORS):
            # The gzip CRC caught it: no retry mends a damaged body, and nothing was sent.
            raise DeliveryError(
                f"the stored body is damaged ({type(exc).__name__}: {exc}); not sent",
                transient=False,
            ) from exc
        raise
    return SignedRequest(headers={**wire.headers(), **signature}, body=wire)
