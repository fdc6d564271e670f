"""Hold Ctrl-C (SIGINT) over a short critical section, then deliver it.

Python raises ``KeyboardInterrupt`` between any two bytecodes, so a Ctrl-C that lands inside a
temp-file write can leave the temp file behind (after ``mkstemp`` created it, before the
``try`` that removes it). :func:`deferred_interrupt` records the signal instead and hands it to
the previous handler when the section ends, so the section always runs whole.
"""
from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

__all__ = ["deferred_interrupt"]


@contextmanager
def deferred_interrupt() -> Iterator[None]:
    """Run the block with SIGINT held; a SIGINT that arrived meanwhile is delivered afterwards.

    Only the main thread receives signals (and may install handlers); elsewhere, or when SIGINT
    has no Python handler (ignored, or the process default), the block runs unchanged.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)
    if not callable(previous):
        yield
        return
    caught: list[tuple[int, FrameType | None]] = []

    def hold(signum: int, frame: FrameType | None) -> None:
        caught.append((signum, frame))

    signal.signal(signal.SIGINT, hold)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if caught:
            previous(*caught[0])
