"""What a file-drop destination must do: store a file under a relative path, atomically.

``gateway.filedrop.s3`` and ``gateway.filedrop.sftp`` implement it. Each
translates its library's errors into ``DeliveryError`` with ``transient`` set:
only the transport knows which of its failures a later attempt can fix.
"""

from __future__ import annotations

from typing import IO, Protocol


class FileDrop(Protocol):
    """An open connection to one destination; used for one batch's files, then closed."""

    @property
    def location(self) -> str:
        """Where the files go, for logs and the attempt row (never a secret)."""
        ...

    def put(self, *, path: str, file: IO[bytes], size: int, content_type: str) -> None:
        """Store ``size`` bytes read from ``file`` under ``path``, replacing any file there.

        A reader never sees a partial file: it sees the old file, or the new one.
        """
        ...

    def close(self) -> None: ...
