"""How much work a call does, counted rather than timed.

Tests that guard against hostile input (a consent string built to make the
decoder expand a billion ids, a vendor list of real size) must not assert on
wall time: a loaded CI machine is many times slower than an idle laptop, and
the guide keeps timing in ``bench/``. Two counts are the same on both:

* the Python lines the call executes (a loop that runs per bit, per id or per
  section shows up here), and
* the peak memory it allocates (expanding ranges into sets in C shows up here,
  even when it takes a single Python line).

A call over its line budget is stopped at once, so a regression fails quickly
instead of running for minutes under the tracer.
"""

from __future__ import annotations

import sys
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class WorkBudgetExceeded(BaseException):
    """Raised inside the traced call; a BaseException so ``except Exception`` in
    the code under test cannot swallow it."""


@dataclass(frozen=True)
class Work:
    lines: int
    peak_bytes: int


@dataclass(frozen=True)
class Measured(Generic[T]):
    work: Work
    result: T | None = None
    raised: Exception | None = None


def measure_work(call: Callable[[], T], *, max_lines: int = 10_000_000) -> Measured[T]:
    """Run ``call`` and count its Python lines and peak allocation.

    An exception the call raises is returned, not propagated, so a test can
    check both what went wrong and what it cost.
    """
    lines = 0

    def on_line(frame: FrameType, event: str, arg: Any) -> Callable[..., Any]:
        nonlocal lines
        if event == "line":
            lines += 1
            if lines > max_lines:
                raise WorkBudgetExceeded(f"more than {max_lines} Python lines")
        return on_line

    tracemalloc.start()
    sys.settrace(on_line)
    try:
        result, raised = call(), None
    except Exception as error:
        result, raised = None, error
    finally:
        sys.settrace(None)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return Measured(work=Work(lines=lines, peak_bytes=peak), result=result, raised=raised)
