"""The embedded broker writes each message whole before a worker can see it (config/broker.py)."""

from __future__ import annotations

import multiprocessing
import os
from pathlib import Path
from typing import Any

import pytest
from kombu import Connection
from kombu.exceptions import ChannelError

from config import broker

QUEUE = "delivery"


def connection(folder: Path) -> Connection:
    return Connection(
        transport=broker.Transport,
        transport_options={
            "data_folder_in": str(folder),
            "data_folder_out": str(folder),
            "control_folder": str(folder / "control"),
            "store_processed": False,
            "polling_interval": 0.01,
        },
    )


def names_while_writing(folder: Path, monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """The names in ``folder`` each time a file written whole is about to get its name."""
    seen: list[list[str]] = []
    link = os.link

    def look_and_link(source: Any, destination: Any) -> None:
        seen.append(sorted(os.listdir(folder)))
        link(source, destination)

    monkeypatch.setattr(broker.os, "link", look_and_link)
    return seen


def test_a_message_has_no_name_a_reader_takes_until_it_is_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen_while_writing = names_while_writing(tmp_path, monkeypatch)
    with connection(tmp_path) as conn:
        conn.default_channel._put(QUEUE, {"task": "delivery.send_batch", "n": 1})
        names = os.listdir(tmp_path)

        assert [len(names_then) for names_then in seen_while_writing] == [1]
        (written_as,) = seen_while_writing[0]
        assert written_as.endswith(f".{QUEUE}.msg{broker.PARTIAL_SUFFIX}")
        assert names == [written_as.removesuffix(broker.PARTIAL_SUFFIX)]
        assert conn.default_channel._get(QUEUE) == {"task": "delivery.send_batch", "n": 1}
    assert os.listdir(tmp_path) == []


def test_an_exchange_table_has_no_name_a_reader_takes_until_it_is_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    control = tmp_path / "control"
    seen_while_writing = names_while_writing(control, monkeypatch)
    with connection(tmp_path) as conn:
        conn.SimpleQueue(QUEUE).consumer.declare()
        # Written in full under a partial name before it has its own.
        assert [len(names_then) for names_then in seen_while_writing] == [1]
        (written_as,) = seen_while_writing[0]
        assert written_as.startswith(f"{QUEUE}.exchange.")
        assert written_as.endswith(broker.PARTIAL_SUFFIX)
        assert os.listdir(control) == [f"{QUEUE}.exchange"]
        # A second binding goes kombu's way: read and rewritten under an exclusive lock.
        channel = conn.default_channel
        channel.queue_declare("stream")
        channel.queue_bind("stream", exchange=QUEUE, routing_key="stream")
        assert sorted(binding.queue for binding in channel.get_table(QUEUE)) == [QUEUE, "stream"]
        assert os.listdir(control) == [f"{QUEUE}.exchange"]


def produce(folder: Path, count: int) -> None:
    """Another process's messages, as the web process and beat queue tasks for the worker."""
    with connection(folder) as conn:
        queue = conn.SimpleQueue(QUEUE)
        for n in range(count):
            queue.put({"n": n, "padding": "x" * (n % 700)})


def test_a_worker_polling_while_another_process_puts_gets_each_message_once_and_whole(
    tmp_path: Path,
) -> None:
    count = 2000
    received: list[Any] = []
    with connection(tmp_path) as conn:
        queue = conn.SimpleQueue(QUEUE)
        queue.consumer.declare()  # bound before anything is sent, as Celery's queues are
        producer = multiprocessing.get_context("spawn").Process(
            target=produce, args=(tmp_path, count)
        )
        producer.start()
        try:
            while len(received) < count:
                message = queue.get(timeout=30)
                received.append(message.payload)
                message.ack()
        finally:
            producer.join(timeout=30)

    assert producer.exitcode == 0
    assert sorted(payload["n"] for payload in received) == list(range(count))
    assert all(payload["padding"] == "x" * (payload["n"] % 700) for payload in received)
    assert sorted(os.listdir(tmp_path)) == ["control"]


def test_a_message_that_cannot_be_written_raises_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full_disk(source: str, destination: str) -> None:
        raise OSError(28, "No space left on device")

    with connection(tmp_path) as conn:
        channel = conn.default_channel
        monkeypatch.setattr(broker.os, "link", full_disk)
        with pytest.raises(ChannelError, match="Cannot add file"):
            channel._put(QUEUE, {"n": 1})
        monkeypatch.undo()
        with pytest.raises(ChannelError, match="Cannot add file"):
            conn.default_channel.data_folder_out = str(tmp_path / "missing")
            channel._put(QUEUE, {"n": 2})
    assert os.listdir(tmp_path) == []
