"""A background thread that runs one action on an interval until stopped."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

logger = logging.getLogger("gateway.simulator")


class Periodic:
    """Calls ``action`` every ``interval`` seconds in a daemon thread.

    A failing action is logged and tried again on the next tick: a gateway
    that is still starting up must not end the reporter or the puller.
    """

    def __init__(self, *, name: str, interval: float, action: Callable[[], object]) -> None:
        if interval <= 0:
            raise ValueError("interval must be positive")
        self.name = name
        self.interval = interval
        self.action = action
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> Periodic:
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()
        return self

    def stop(self, *, run_last: bool = False) -> None:
        """Stop the loop; ``run_last`` runs the action once more (e.g. a final report)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.interval + 30)
        if run_last:
            self._tick()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._tick()

    def _tick(self) -> None:
        try:
            self.action()
        except Exception:
            logger.exception("%s failed; will try again in %ss", self.name, self.interval)
