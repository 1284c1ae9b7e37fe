"""import_pages.run_pages: a page whose leases were taken is always given back, also when an earlier page's finish
(its stock write) failed. Before the fix the page prepared after a failed finish kept its leases for LEASE_SECONDS."""

from __future__ import annotations

import threading
import time

import pytest

from amazon_commerce_sync import import_pages
from amazon_commerce_sync.import_pages import Page


def test_a_failed_finish_leaks_no_later_pages_leases():
    held: set[str] = set()
    lock = threading.Lock()

    def prepare(rows):
        with lock:
            held.update(rows)
        return Page(rows, {}, {}, None, set(rows))

    def process(page, row):
        time.sleep(0.01)

    def finish(page):
        with lock:
            held.difference_update(page.leased)
        if page.rows[0] == "p0-0":
            raise RuntimeError("POST /V1/inventory/source-items: 503")

    pages = [[f"p{i}-{j}" for j in range(5)] for i in range(4)]
    with pytest.raises(RuntimeError):
        import_pages.run_pages(iter(pages), workers=4, prepare=prepare, process=process, finish=finish)
    assert held == set()
