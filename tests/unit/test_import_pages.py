"""The import's pages in flight (``import_pages``): the workers stay busy across pages (the next page is prepared
while the one before is written), a page's stock is written after its orders, and the stock two pages in flight
may take is counted once. The bound on Commerce requests in flight: ``tests/commerce_writes/test_request_gate.py``."""

from __future__ import annotations

import threading
import time
from decimal import Decimal

import pytest

from amazon_commerce_sync.import_pages import Availability, Page, run_pages


def _page(rows) -> Page:
    return Page(rows, {}, {}, None, set())  # type: ignore[arg-type]  # no stock write in these tests


def test_the_next_pages_look_ups_run_while_the_last_orders_are_written():
    events: list[tuple[float, str, int]] = []
    lock = threading.Lock()
    busy, most = 0, 0

    def task(kind: str, page_no: int, seconds: float) -> None:
        nonlocal busy, most
        with lock:
            busy += 1
            most = max(most, busy)
            events.append((time.monotonic(), f"{kind} start", page_no))
        time.sleep(seconds)
        with lock:
            busy -= 1
            events.append((time.monotonic(), f"{kind} end", page_no))

    def prepare(rows):
        task("prepare", rows[0]["page"], 0.01)
        return _page(rows)

    def process(page, row):
        task("order", row["page"], 0.02)

    def finish(page):
        task("finish", page.rows[0]["page"], 0.01)

    pages = [[{"page": p, "n": n} for n in range(10)] for p in range(3)]
    run_pages(iter(pages), workers=4, prepare=prepare, process=process, finish=finish)

    assert most <= 4 + 1, "more tasks at once than the workers and the thread preparing the next page"
    first = {(kind, page): at for at, kind, page in reversed(events)}
    last = {(kind, page): at for at, kind, page in events}
    for page in (1, 2):
        # the pool did not drain: the page's look-ups began before the previous page's last order ended
        assert first[("prepare start", page)] < last[("order end", page - 1)]
    for page in range(3):
        assert first[("finish start", page)] >= last[("order end", page)], "stock written before its orders"
    assert sum(1 for _, kind, _ in events if kind == "order end") == 30


def test_a_failed_page_step_stops_the_run():
    done = []

    def prepare(rows):
        if rows[0] == 2:
            raise RuntimeError("Commerce look-up failed")
        return _page(rows)

    with pytest.raises(RuntimeError, match="look-up failed"):
        run_pages(
            iter([[1], [2], [3]]),
            workers=2,
            prepare=prepare,
            process=lambda page, row: done.append(row),
            finish=lambda page: None,
        )
    assert 3 not in done


def test_stock_reserved_on_a_page_not_yet_written_is_not_taken_again():
    stock = Availability()
    first, second = _page([1]), _page([2])
    stock.refresh({"SKU-A": Decimal(5)})
    assert stock.reserve(first, {"SKU-A": 3}) == []
    # the next page reads Commerce before the first page's stock write: 5 there, 3 of them already taken
    stock.refresh({"SKU-A": Decimal(5)})
    [short] = stock.reserve(second, {"SKU-A": 3})
    assert "out of stock" in short and "2 left, 3 needed" in short
    assert stock.reserve(second, {"SKU-A": 2}) == []
    # the first page's write is done: Commerce's 0 already counts it, the second page's 2 do not
    stock.written(first)
    stock.refresh({"SKU-A": Decimal(0)})
    assert stock.reserve(second, {"SKU-A": 1}) != []
    stock.written(second)
    stock.refresh({"SKU-A": Decimal(4)})
    assert stock.reserve(_page([3]), {"SKU-A": 4}) == []
