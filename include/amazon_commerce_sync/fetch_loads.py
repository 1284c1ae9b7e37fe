"""The loads an event run makes while it is still fetching (``pipelines/order_events.fetch_orders``).

A burst reaches Commerce as it is fetched, and a trickle within seconds: one thread of the run calls the import's
loader whenever :data:`LOAD_EVERY` orders were staged since its last load (full pages for the loader), or when
the oldest order staged since then has waited :data:`LOAD_AFTER` seconds (a run that keeps fetching the
notifications that arrive while it runs would otherwise hold a few orders back until it ends).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from amazon_commerce_sync.counts import add_counts

#: Orders staged between two loads of an event run: 100 (a searchOrders page) keeps the loader's pages full.
LOAD_EVERY = 100
#: Seconds an order staged during the fetch waits at most for a load of fewer than LOAD_EVERY orders.
LOAD_AFTER = 5.0


class Loads:
    """The loads made during a run's fetch, by one thread of their own (one loader per run).

    :param load: the import's loader for the account (returns its summary); None: no loads during the fetch.
    ``totals`` (the loads' summaries added up, ``counts.add_counts``) and ``count`` (how many loads) are read after
    :meth:`close`.
    """

    def __init__(self, load: Callable[[], Mapping[str, Any]] | None) -> None:
        self.load, self.pending, self.totals, self.count = load, 0, {}, 0
        self.since = 0.0  # monotonic time the oldest pending order was staged
        self.changed = threading.Condition()
        self.closed = False
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="order-events-loads", daemon=True) if load else None
        if self.thread is not None:
            self.thread.start()

    def staged(self, n: int) -> None:
        """``n`` more orders staged (either fetching thread)."""
        with self.changed:
            if n and not self.pending:
                self.since = time.monotonic()
            self.pending += n
            self.changed.notify()

    def _wait(self) -> float | None:
        """Seconds until a load is due (0: now; None: not before more orders are staged)."""
        if self.closed or self.pending >= LOAD_EVERY:
            return 0.0
        if not self.pending:
            return None
        return max(0.0, LOAD_AFTER - (time.monotonic() - self.since))

    def _run(self) -> None:
        while True:
            with self.changed:
                while (wait := self._wait()) != 0.0:
                    self.changed.wait(timeout=wait)
                if self.closed and self.pending < LOAD_EVERY:  # the caller's last load takes the rest
                    return
                self.pending = 0
            try:
                self.totals = add_counts(self.totals, self.load())
                self.count += 1
            except BaseException as exc:  # noqa: BLE001 - re-raised by close() in the task's thread
                self.error = exc
                return

    def close(self) -> None:
        """Wait for a load under way; raise what a load raised."""
        if self.thread is None:
            return
        with self.changed:
            self.closed = True
            self.changed.notify()
        self.thread.join()
        if self.error is not None:
            raise self.error
