"""Fetching the next chunk of rows on a thread while the caller works on the current one.

A server-side cursor answers each ``fetchmany`` with one round trip, and the
database computes the rows only when asked: read in turn, the database waits
while Python filters a chunk, then Python waits while the database produces
the next. ``prefetched_chunks`` keeps one fetch in flight on a background
thread, so both work at once (psycopg releases the GIL while it waits for the
server). A bounded queue keeps memory to a few chunks.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

# Chunks fetched ahead of the one being worked on.
CHUNKS_AHEAD = 2
# How often a blocked fetcher looks whether the consumer has gone.
_STOP_POLL_SECONDS = 0.1

Chunk = Sequence[Any]


class _End:
    """What the fetcher queues after the last chunk, or with the error that ended it."""

    __slots__ = ("error",)

    def __init__(self, error: BaseException | None = None) -> None:
        self.error = error


@contextmanager
def prefetched_chunks(fetch: Callable[[], Chunk]) -> Iterator[Iterator[Chunk]]:
    """Chunks from ``fetch()`` (until it returns an empty one), fetched on a thread.

    ``fetch`` is only ever called from that thread, and never after the block
    ends: leaving the block early (an exception in the caller) stops the
    thread and waits for it, so the cursor behind ``fetch`` can be closed.
    An error raised by ``fetch`` is raised again to the caller.
    """
    chunks: queue.Queue[Chunk | _End] = queue.Queue(maxsize=CHUNKS_AHEAD)
    stop = threading.Event()

    def hand_over(item: Chunk | _End) -> bool:
        while not stop.is_set():
            try:
                chunks.put(item, timeout=_STOP_POLL_SECONDS)
            except queue.Full:
                continue
            return True
        return False

    def run() -> None:
        try:
            while chunk := fetch():
                if not hand_over(chunk):
                    return
        except BaseException as exc:  # handed to the consumer, raised there
            hand_over(_End(exc))
            return
        hand_over(_End())

    thread = threading.Thread(target=run, name="rows-prefetch", daemon=True)
    thread.start()

    def consume() -> Iterator[Chunk]:
        while True:
            item = chunks.get()
            if isinstance(item, _End):
                if item.error is not None:
                    raise item.error
                return
            yield item

    try:
        yield consume()
    finally:
        stop.set()
        thread.join()
