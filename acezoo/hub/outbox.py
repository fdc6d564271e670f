"""A background sender for tracking calls, so that a slow or absent server never holds up training.

The training loop puts items (a batch of metrics, or a call such as "upload the artifacts") and
goes on at once; one daemon thread sends them in order, merging consecutive metric items into
one request. An item that fails stays at the head of the queue and is retried after growing
pauses until the server answers again; one the server refuses for good (see ``permanent``) is
dropped and reported. :meth:`Outbox.close` keeps trying for a grace period and returns what is
still unsent.
"""
from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Item", "Outbox"]

_FIRST_PAUSE_S = 0.5
_MAX_PAUSE_S = 15.0  # between retries while training goes on
_MAX_CLOSING_PAUSE_S = 2.0  # between retries during the grace period


@dataclass
class Item:
    """One thing to send: ``send()`` for a call, else ``metrics`` (sent with the other metric items)."""

    what: str
    send: Callable[[], None] | None = None
    metrics: list[Any] = field(default_factory=list)


class Outbox:
    """Sends items from a background thread in order; keeps and retries what fails."""

    def __init__(
        self,
        send_metrics: Callable[[list[Any]], None],
        *,
        permanent: Callable[[BaseException], bool],
        on_down: Callable[[BaseException], None],
        on_up: Callable[[], None],
        max_batch: int = 1000,
        name: str = "acezoo-tracking",
    ) -> None:
        self._send_metrics = send_metrics
        self._permanent = permanent
        self._on_down, self._on_up = on_down, on_up
        self._max_batch = max_batch
        self._queue: collections.deque[Item] = collections.deque()
        self._cond = threading.Condition()
        self._wake = threading.Event()  # set by close(): retry at once
        self._closing = False
        self._deadline = float("inf")
        self._down = False
        self._pause = _FIRST_PAUSE_S
        self.last_error: BaseException | None = None
        self.refused: list[tuple[str, str]] = []  # (what, reason) of dropped items
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def put(self, item: Item) -> None:
        """Queue ``item`` (returns at once)."""
        with self._cond:
            if self._closing:
                raise RuntimeError("the outbox is closed")
            self._queue.append(item)
            self._cond.notify()

    def close(self, grace_s: float) -> list[str]:
        """Send what is queued, retrying for up to ``grace_s`` seconds; return what is still unsent."""
        with self._cond:
            self._closing = True
            self._deadline = time.monotonic() + max(0.0, grace_s)
            self._cond.notify_all()
        self._wake.set()
        self._thread.join(max(0.0, grace_s) + 1.0)  # a call in flight at the deadline is not waited for
        with self._cond:
            self._deadline = -1.0  # a thread still in a call stops after it
            return [item.what for item in self._queue]

    # -- the sending thread ---------------------------------------------------------------------
    def _head(self) -> list[Item]:
        first = self._queue[0]
        if first.send is not None:
            return [first]
        batch: list[Item] = []
        count = 0
        for item in self._queue:
            if item.send is not None or (batch and count + len(item.metrics) > self._max_batch):
                break
            batch.append(item)
            count += len(item.metrics)
        return batch

    def _deliver(self, batch: list[Item]) -> None:
        if batch[0].send is not None:
            batch[0].send()
        else:
            self._send_metrics([m for item in batch for m in item.metrics])

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closing:
                    self._cond.wait()
                if not self._queue or time.monotonic() > self._deadline:
                    return
                batch = self._head()
            try:
                self._deliver(batch)
            except Exception as exc:  # noqa: BLE001 - kept and retried, or reported at the end
                if self._permanent(exc):
                    self._settle(batch, refused=exc)
                    continue
                if self._fail(exc):
                    return
                continue
            self._settle(batch)

    def _settle(self, batch: list[Item], refused: BaseException | None = None) -> None:
        from acezoo.hub.store import describe_failure

        with self._cond:
            for _ in batch:
                self._queue.popleft()
            if refused is not None:
                self.refused += [(item.what, describe_failure(refused)) for item in batch]
            was_down, self._down = self._down, False
            self._pause = _FIRST_PAUSE_S
        if was_down:
            self._on_up()

    def _fail(self, exc: BaseException) -> bool:
        """Note a failed send and pause; True when the grace period is over."""
        with self._cond:
            self.last_error = exc
            first, self._down = not self._down, True
        if first:
            self._on_down(exc)
        with self._cond:
            closing, left = self._closing, self._deadline - time.monotonic()
        if closing and left <= 0:
            return True
        wait = min(self._pause, _MAX_CLOSING_PAUSE_S if closing else _MAX_PAUSE_S, left)
        self._pause = min(self._pause * 2, _MAX_PAUSE_S)
        if self._wake.wait(wait):
            self._wake.clear()  # one immediate retry when close() is called
        return False
