"""The threads a push send works on beside its own: one small pool per process.

A send overlaps three pieces of its work with round trips it waits on anyway:
- asking the shared store for its permit (``health.send_permit``: the feed's
  slow-down, the endpoint's breaker, a concurrency slot, the rates) and
- preparing the request's body and signatures (``preparation``), both while
  the attempt is claimed and recorded in PostgreSQL;
- noting the outcome in the shared store (``health.outcome_note``: the
  breaker's count, a slow-down, the slot given back) while PostgreSQL
  records the outcome.

None touches the database from these threads: Django's connections are
per thread, and these threads must not open their own.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

# A worker process sends one batch at a time, and each send has at most two
# of these pieces of work in flight at once.
SEND_THREADS = 2

_pool: tuple[int, ThreadPoolExecutor] | None = None
_pool_lock = threading.Lock()


def send_executor() -> ThreadPoolExecutor:
    """This process's pool; a forked child (a Celery pool process) makes its own."""
    global _pool
    with _pool_lock:
        if _pool is None or _pool[0] != os.getpid():
            executor = ThreadPoolExecutor(max_workers=SEND_THREADS, thread_name_prefix="push-send")
            _pool = (os.getpid(), executor)
        return _pool[1]
