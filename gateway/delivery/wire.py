"""What a batch body looks like on the wire, for pushes and pull downloads alike.

Plain feeds send the stored gzip body with ``Content-Encoding: gzip`` (or the
NDJSON itself), and the signature covers the NDJSON, which the reference
Standard Webhooks libraries need as text. Encrypted feeds send the JWE compact
serialisation of the gzip body (``gateway.delivery.encryption``), signed as
sent, so a partner verifies before it decrypts.
"""

from __future__ import annotations

from dataclasses import dataclass

from isal import igzip

from gateway.delivery.encryption import JOSE_CONTENT_TYPE, EncryptionError, encrypt_body
from gateway.errors import DeliveryError
from partners.models import Feed

NDJSON_CONTENT_TYPE = "application/x-ndjson"


@dataclass(frozen=True)
class WireBody:
    """The bytes to send, the bytes the signature covers, and the content headers."""

    content: bytes
    signed: bytes
    content_type: str
    content_encoding: str | None = None

    def headers(self) -> dict[str, str]:
        headers = {"Content-Type": self.content_type}
        if self.content_encoding:
            headers["Content-Encoding"] = self.content_encoding
        return headers


def wire_body(*, feed: Feed, compressed: bytes, plain: bytes | None = None) -> WireBody:
    """The wire form of a stored gzip body for ``feed``; ``plain`` saves inflating it again.

    Raises a permanent DeliveryError when the feed's key cannot encrypt: a
    body is never sent in clear to a feed that asked for encryption.
    """
    if feed.encryption != Feed.Encryption.NONE:
        try:
            token = encrypt_body(
                compressed,
                scheme=feed.encryption,
                public_key_pem=feed.encryption_public_key,
                key_id=feed.encryption_key_id,
            )
        except EncryptionError as exc:
            raise DeliveryError(f"cannot encrypt the body: {exc}", transient=False) from exc
        return WireBody(content=token, signed=token, content_type=JOSE_CONTENT_TYPE)
    # ISA-L inflates about twice as fast as zlib, and lets other threads run meanwhile.
    payload = igzip.decompress(compressed) if plain is None else plain
    if feed.gzip:
        return WireBody(
            content=compressed,
            signed=payload,
            content_type=NDJSON_CONTENT_TYPE,
            content_encoding="gzip",
        )
    return WireBody(content=payload, signed=payload, content_type=NDJSON_CONTENT_TYPE)
