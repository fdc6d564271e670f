"""Atomic writes: never a half-written file, never a temp file left behind, even on Ctrl-C."""
from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from acezoo.io.atomic import atomic_write, atomic_write_text
from acezoo.io.interrupts import deferred_interrupt


@pytest.fixture
def python_sigint_handler() -> Iterator[None]:
    """SIGINT raises KeyboardInterrupt, whatever the test runner installed."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def _leftovers(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_ctrl_c_during_a_write_is_delivered_after_the_file_is_in_place(tmp_path: Path, python_sigint_handler: None) -> None:
    target = tmp_path / "history.json"

    def write(tmp: str) -> None:
        with open(tmp, "w") as f:
            f.write("first half ")
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C in the middle of the write
            f.write("second half")

    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, write)
    assert target.read_text() == "first half second half"
    assert _leftovers(tmp_path) == []
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # the handler is restored


def test_a_failed_write_leaves_the_old_file_and_no_temp_file(tmp_path: Path) -> None:
    target = atomic_write_text(tmp_path / "metrics.json", "old")

    def write(tmp: str) -> None:
        Path(tmp).write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(target, write)
    assert target.read_text() == "old"
    assert _leftovers(tmp_path) == []


def test_deferred_interrupt_without_a_signal_changes_nothing(python_sigint_handler: None) -> None:
    with deferred_interrupt():
        assert signal.getsignal(signal.SIGINT) is not signal.default_int_handler  # held meanwhile
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_deferred_interrupt_runs_the_block_in_other_threads(python_sigint_handler: None) -> None:
    ran: list[bool] = []

    def worker() -> None:
        with deferred_interrupt():  # no handler can be installed off the main thread
            ran.append(True)

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    assert ran == [True]


def test_cached_arrays_are_written_whole_under_their_own_name(tmp_path: Path) -> None:
    from acezoo.data import cache

    path = tmp_path / "nbody" / "draw_abc.npz"
    made = cache.cached_arrays(path, lambda: {"x": np.arange(6.0).reshape(2, 3)})
    again = cache.cached_arrays(path, lambda: pytest.fail("the cache was not used"))
    np.testing.assert_array_equal(again["x"], made["x"])
    assert sorted(p.name for p in path.parent.iterdir()) == ["draw_abc.npz"]
