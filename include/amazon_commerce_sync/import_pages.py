"""The import's pages in flight: one pool of workers kept busy across pages, and the stock they may take.

``run_pages`` loads staged orders a page (100) at a time and never lets the workers drain between pages: the next
page's look-ups (its Commerce orders, products and stock) are made while the page before is being written, and its
orders are queued behind that page's. Commerce never has more than ``concurrency`` requests in flight from one
run: the run's Commerce hooks share a gate (``RestHook.gate``) of that many; there are more workers than that
(``spare_workers``) so that an order's own work (building it, its state-store commits) overlaps the others'
requests.

With two pages in flight, the stock a page read can still be taken by orders of the page before it that have not
been written to Commerce yet: ``Availability`` keeps, per SKU, what the run's orders have reserved and not yet
written, and subtracts it from every read.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from decimal import Decimal
from typing import Any

from amazon_commerce_sync.commerce_writes.stock import PageStockOut
from amazon_commerce_sync.store import OrderRow


@dataclasses.dataclass
class Page:
    """One page of staged orders and what its look-ups found.

    :param existing: Commerce orders by the Amazon order id in their ``ext_order_id`` (the natural-key look-up).
    :param products: Commerce products by SKU.
    :param leased: the order leases (``keys.order_lease``) this run holds for the page's orders.
    :param reserved: stock (units per Commerce SKU) the page's orders reserved, given back to ``Availability``
        when the page's stock write is done.
    """

    rows: list[OrderRow]
    existing: Mapping[str, list[dict[str, Any]]]
    products: Mapping[str, Mapping[str, Any]]
    stock_out: PageStockOut
    leased: set[str]
    reserved: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)
    left: int = 0  # orders not finished yet
    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.left = len(self.rows)

    def order_done(self) -> bool:
        """Count one order finished; True for the page's last."""
        with self.lock:
            self.left -= 1
            return self.left == 0


class Availability:
    """Units per Commerce SKU that the run's orders may still take from the account's source.

    ``refresh`` takes a read of the source (``GET /V1/inventory/source-items`` quantities) less what orders of
    pages not yet written have reserved; ``reserve`` takes an order's units (all or none); ``written`` is called
    once a page's stock write is done (Commerce's quantities now include it). ``io_lock`` orders a page's read
    against another page's write: hold it around both.
    """

    def __init__(self) -> None:
        self.io_lock = threading.Lock()
        self._lock = threading.Lock()
        self._available: dict[str, Decimal] = {}
        self._unwritten: collections.Counter[str] = collections.Counter()

    def refresh(self, quantities: Mapping[str, Decimal]) -> None:
        """What the source holds now, per SKU (hold ``io_lock`` from the read to here)."""
        with self._lock:
            for sku, quantity in quantities.items():
                self._available[sku] = quantity - self._unwritten[sku]

    def reserve(self, page: Page, needed: Mapping[str, int]) -> list[str]:
        """Take ``needed`` (units per SKU) for one order of ``page``; returns why not (empty when taken)."""
        with self._lock:  # two orders must not both take the last unit
            short = [
                f"SKU {sku} is out of stock in Commerce ({self._available.get(sku, Decimal(0))} left, {qty} needed)"
                for sku, qty in sorted(needed.items())
                if self._available.get(sku, Decimal(0)) < qty
            ]
            if not short:
                for sku, qty in needed.items():
                    self._available[sku] -= qty
                    self._unwritten[sku] += qty
                    page.reserved[sku] += qty
            return short

    def written(self, page: Page) -> None:
        """The page's stock write is done (hold ``io_lock`` from the write to here)."""
        with self._lock:
            self._unwritten.subtract(page.reserved)
            page.reserved.clear()


def spare_workers(concurrency: int) -> int:
    """Workers for ``concurrency`` Commerce requests in flight: twice as many, so that the orders' own work (building
    the Commerce order, its state-store commits, waiting for the store's write lock) is done while other orders'
    requests use every slot. The requests in flight stay bounded by ``concurrency`` (the hooks' ``gate``)."""
    return 2 * max(1, concurrency)


def ordered_skus(rows: Iterable[OrderRow], commerce_sku: Callable[[str], str]) -> list[str]:
    """The Commerce SKUs (``commerce_sku`` of each item's Amazon ``sellerSku``) the staged orders need, sorted."""
    skus = {
        commerce_sku((item.get("product") or {}).get("sellerSku") or "")
        for row in rows
        for item in row["payload"].get("orderItems") or []
    }
    return sorted(skus - {""})


def source_quantities(items: Mapping[str, list[Mapping[str, Any]]], source_code: str) -> dict[str, Decimal]:
    """Units per SKU on ``source_code`` from ``GET /V1/inventory/source-items`` (items by SKU), counting only source
    items in stock (``status`` 1); an item without ``source_code`` counts as the account's source's."""
    return {
        sku: sum(
            (
                Decimal(str(s.get("quantity", 0)))
                for s in entries
                if int(s.get("status", 1)) == 1 and s.get("source_code", source_code) == source_code
            ),
            Decimal(0),
        )
        for sku, entries in items.items()
    }


@contextlib.contextmanager
def given_back_on_failure(give_back: Callable[[], None]) -> Iterator[None]:
    """Call ``give_back`` (a page's leases released) when the block raises, then raise on: the orders of a page whose
    look-ups failed are free at once for the next run, not after the lease's time-out."""
    try:
        yield
    except BaseException:
        give_back()
        raise


def run_pages(
    pages: Iterable[list[OrderRow]],
    *,
    workers: int,
    prepare: Callable[[list[OrderRow]], Page],
    process: Callable[[Page, OrderRow], None],
    finish: Callable[[Page], None],
) -> None:
    """Load ``pages`` (read lazily) on ``workers`` threads that stay busy across pages.

    Each page: ``prepare(rows)`` (its look-ups, on the calling thread), then ``process(page, row)`` for each order
    on the workers, then ``finish(page)`` on the worker that finished its last order. The next page is prepared
    and queued while the page before runs, so the workers never wait for it; two pages at most are in flight.
    ``process`` handles its own order's failures; an exception from ``prepare`` or ``finish`` stops the run (no
    page is begun after it; the pages begun are finished) and is raised here.
    """
    pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="order")
    running: list[Future] = []
    in_flight: collections.deque[threading.Event] = collections.deque()

    def order(page: Page, row: OrderRow, finished: threading.Event) -> None:
        try:
            process(page, row)
        finally:
            if page.order_done():
                try:
                    finish(page)
                finally:
                    finished.set()

    try:
        for rows in pages:
            while len(in_flight) >= 2:  # the page before the one running is finished first
                in_flight.popleft().wait()
            running = _still_running(running)  # a failed finish stops the run before the next page's leases
            page = prepare(rows)
            finished = threading.Event()
            in_flight.append(finished)
            running += [pool.submit(order, page, row, finished) for row in rows]
    finally:
        # Also after a failure: the pages begun are finished (their stock written, their leases given back).
        pool.shutdown(wait=True)
    for future in running:
        future.result()


def _still_running(futures: list[Future]) -> list[Future]:
    """The futures not done yet; raises the exception of one that failed."""
    running = []
    for future in futures:
        if future.done():
            future.result()
        else:
            running.append(future)
    return running
