"""fetch_loads.Loads: the loads an event run makes while it fetches — every LOAD_EVERY staged orders, and within
LOAD_AFTER seconds for fewer (a run that keeps fetching later notifications must not hold a trickle back)."""

from __future__ import annotations

import threading

from amazon_commerce_sync import fetch_loads


def loader(calls: list[int], done: threading.Event):
    def load():
        calls.append(1)
        done.set()
        return {"created": 1, "ids": [str(len(calls))]}

    return load


def test_a_full_page_loads_at_once_and_a_few_orders_within_load_after(monkeypatch):
    monkeypatch.setattr(fetch_loads, "LOAD_EVERY", 10)
    monkeypatch.setattr(fetch_loads, "LOAD_AFTER", 0.2)
    calls: list[int] = []
    done = threading.Event()
    loads = fetch_loads.Loads(loader(calls, done))
    loads.staged(10)
    assert done.wait(5), "a full page was not loaded"
    done.clear()
    loads.staged(1)  # one order, the fetch goes on: loaded after LOAD_AFTER, not at the run's end
    assert done.wait(5), "a trickle waited for the end of the fetch"
    loads.close()
    assert (loads.count, loads.totals) == (2, {"created": 2, "ids": ["1", "2"]})


def test_nothing_staged_no_load_and_close_leaves_the_rest_to_the_caller(monkeypatch):
    monkeypatch.setattr(fetch_loads, "LOAD_AFTER", 60.0)
    calls: list[int] = []
    loads = fetch_loads.Loads(loader(calls, threading.Event()))
    loads.staged(3)  # fewer than a page, not yet LOAD_AFTER old: the caller's last load takes them
    loads.close()
    assert calls == [] and loads.count == 0


def test_a_load_error_is_raised_by_close():
    tried = threading.Event()

    def load():
        tried.set()
        raise RuntimeError("Commerce down")

    loads = fetch_loads.Loads(load)
    loads.staged(fetch_loads.LOAD_EVERY)
    assert tried.wait(5)
    try:
        loads.close()
    except RuntimeError as exc:
        assert str(exc) == "Commerce down"
    else:
        raise AssertionError("the load's error was not raised")
