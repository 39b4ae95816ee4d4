"""prefetched_chunks: chunks in order, errors handed over, nothing fetched after the block."""

from __future__ import annotations

import threading

import pytest

from gateway.delivery.prefetch import CHUNKS_AHEAD, prefetched_chunks


class Source:
    """fetch() gives chunks of a list, noting the thread it runs on and calls after close."""

    def __init__(self, chunks: list[list[int]], *, fail_at: int | None = None) -> None:
        self.chunks = list(chunks)
        self.fail_at = fail_at
        self.calls = 0
        self.threads: set[int] = set()
        self.closed = False
        self.called_after_close = False

    def fetch(self) -> list[int]:
        self.threads.add(threading.get_ident())
        if self.closed:
            self.called_after_close = True
        self.calls += 1
        if self.fail_at is not None and self.calls == self.fail_at:
            raise RuntimeError("connection lost")
        return self.chunks.pop(0) if self.chunks else []


def test_every_chunk_arrives_in_order_fetched_on_another_thread():
    source = Source([[1, 2], [3], [4, 5, 6]])

    with prefetched_chunks(source.fetch) as chunks:
        received = [list(chunk) for chunk in chunks]

    assert received == [[1, 2], [3], [4, 5, 6]]
    assert source.threads and threading.get_ident() not in source.threads


def test_no_rows_give_no_chunks():
    with prefetched_chunks(Source([]).fetch) as chunks:
        assert list(chunks) == []


def test_an_error_while_fetching_reaches_the_consumer_after_the_chunks_before_it():
    source = Source([[1], [2], [3]], fail_at=3)
    received = []

    with (
        pytest.raises(RuntimeError, match="connection lost"),
        prefetched_chunks(source.fetch) as chunks,
    ):
        for chunk in chunks:
            received.append(list(chunk))

    assert received == [[1], [2]]


def test_leaving_early_stops_the_fetcher_before_the_cursor_closes():
    source = Source([[n] for n in range(100)])

    with pytest.raises(ValueError), prefetched_chunks(source.fetch) as chunks:
        next(iter(chunks))
        raise ValueError("the filter failed")
    source.closed = True

    # The fetcher ran at most a few chunks ahead, and has ended.
    assert source.calls <= 1 + CHUNKS_AHEAD + 1
    assert not source.called_after_close
    assert not any(thread.name == "rows-prefetch" for thread in threading.enumerate())
