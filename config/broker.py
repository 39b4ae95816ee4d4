"""The embedded broker: kombu's filesystem transport, with messages that appear whole.

Without ``REDIS_URL`` (a newcomer's first run) Celery passes messages through
files in ``var/broker``. kombu's own transport creates a message's file under
its final name and then writes it, and a worker polling the folder can move
and read the file in between: it reads nothing, fails to decode it, and the
worker dies with an unrecoverable error (``make run`` met that after a few
minutes of demo traffic). Here a message is written under a name no reader
takes (``.part`` after ``.msg``) and linked to its name once complete, which
POSIX makes atomic within a folder, so a reader finds a whole message or none.

An exchange's table of bound queues (``control/<exchange>.exchange``) had the
same flaw when first made: created empty, then written, while another process
(web, worker and beat start together) read it. It is now written in full
under a name of its own and linked to its name, which fails if another
process made it first; kombu's locked update then adds the binding.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from time import monotonic
from typing import Any

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps

# Appended to a message's final name while it is written: kombu's reader takes
# only names whose part after the first dot is exactly "<queue>.msg".
PARTIAL_SUFFIX = ".part"


class Channel(filesystem.Channel):
    # kombu's own two classes name the second parameter differently (message, payload).
    def _put(self, queue: Any, message: Any, **kwargs: Any) -> None:  # type: ignore[override]
        """Put ``message`` onto ``queue``: written in full, then given its name."""
        # kombu's name: readers take messages in the order of their names.
        name = f"{round(monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        try:
            created = _file_create(
                Path(final),
                str_to_bytes(dumps(message)),
                partial=Path(final + PARTIAL_SUFFIX),  # the name is unique already
            )
        except OSError as exc:
            raise ChannelError(f"Cannot add file {final!r} to directory") from exc
        if not created:  # a unique name already taken: never expected
            raise ChannelError(f"Cannot add file {final!r} to directory: it exists")

    def _queue_bind(self, exchange: str, routing_key: str, pattern: str, queue: str) -> None:
        table = self._exchange_file(exchange)
        self.control_folder.mkdir(exist_ok=True)
        binding = filesystem.exchange_queue_t(routing_key or "", pattern or "", queue or "")
        if not table.exists():
            # Other processes may make the same table at once: a partial name each.
            partial = table.with_name(f"{table.name}.{uuid.uuid4()}{PARTIAL_SUFFIX}")
            try:
                if _file_create(table, str_to_bytes(dumps([binding])), partial=partial):
                    return
            except OSError as exc:
                raise ChannelError(f"Cannot create {table}") from exc
        # The table exists: kombu reads and rewrites it under an exclusive lock.
        super()._queue_bind(exchange, routing_key, pattern, queue)


def _file_create(path: Path, data: bytes, *, partial: Path) -> bool:
    """Create ``path`` holding ``data``, whole from its first moment; False if it exists.

    Written as ``partial``, a name no reader takes, then linked to ``path``:
    unlike a rename, a link never replaces a file another process made meanwhile.
    """
    try:
        partial.write_bytes(data)
        os.link(partial, path)
        return True
    except FileExistsError:
        return False
    finally:
        partial.unlink(missing_ok=True)


class Transport(filesystem.Transport):
    Channel = Channel
