"""Fixtures of the delivery tests: a partner with a push feed, and a stand-in for the broker."""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from gateway.delivery import tasks, wire
from partners.models import Feed, Partner
from tests.factories import make_feed, make_partner


def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> bool:
    """Whether ``condition`` holds within ``timeout`` s (a send thread may still be at it)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


@dataclass
class QueuedTasks:
    """Task messages the code under test queued, by task name, instead of reaching a broker."""

    calls: list[tuple[str, list[Any], dict[str, Any]]] = field(default_factory=list)

    def ids(self, name: str) -> list[str]:
        return [args[0] for task, args, _ in self.calls if task == name]

    def options(self, name: str) -> list[dict[str, Any]]:
        return [options for task, _, options in self.calls if task == name]


@pytest.fixture
def queued(monkeypatch: pytest.MonkeyPatch) -> QueuedTasks:
    """Record apply_async calls of the delivery tasks; nothing is sent to a broker."""
    record = QueuedTasks()
    for task in (tasks.build_batch, tasks.send_batch, tasks.dispatch_due_windows):

        def fake_apply_async(
            args: Any = None, kwargs: Any = None, _name: str = task.name, **options: Any
        ) -> None:
            record.calls.append((_name, list(args or []), options))

        monkeypatch.setattr(task, "apply_async", fake_apply_async)
    return record


@pytest.fixture
def partner(db: None) -> Partner:
    return make_partner(slug="nielsen", campaigns=("cmp-1", "cmp-2"))


@pytest.fixture
def push_feed(partner: Partner) -> Feed:
    return make_feed(partner=partner, name="exposures", mode=Feed.Mode.PUSH)


@pytest.fixture
def opened_bodies(monkeypatch: pytest.MonkeyPatch) -> list[io.BufferedReader]:
    """The stored bodies opened during the test, noted as they are opened.

    The list keeps them alive: one still open at the end was never closed.
    """
    opened: list[io.BufferedReader] = []
    original = wire.body_open

    def noting_open(name: str) -> io.BufferedReader:
        file = original(name)
        opened.append(file)
        return file

    monkeypatch.setattr(wire, "body_open", noting_open)
    return opened
