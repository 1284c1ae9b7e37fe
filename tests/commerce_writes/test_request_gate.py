"""The import's Commerce hooks share one gate: more worker threads than the account's concurrency never put more
than that many requests in flight (the loading benchmark's bound is computed for it)."""

from __future__ import annotations

import threading
import time

import requests

from amazon_commerce_sync.hooks.commerce import CommerceHook


def test_hooks_sharing_a_gate_keep_at_most_its_requests_in_flight(shop):
    hooks = [CommerceHook("commerce") for _ in range(6)]
    for hook in hooks:
        hook.get_products_by_skus(["ACS-LAMP-DESK-LED"])  # each has its admin token before the clock starts
    requests.post(f"{shop.base_url}/_sandbox/settings", json={"latency_ms": 200}, timeout=10).raise_for_status()
    gate = threading.BoundedSemaphore(2)
    for hook in hooks:
        hook.gate = gate
    threads = [threading.Thread(target=h.get_products_by_skus, args=(["ACS-LAMP-DESK-LED"],)) for h in hooks]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # six requests of 200 ms, two at a time: three rounds (unbounded, they would all end after one)
    assert time.monotonic() - started >= 0.6
