"""events.newer_events: the asset events a running fetch stages, recorded after its run was queued (Task SDK
``inlet_events[asset].after``), each read giving only those after the newest one it gave."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

from amazon_commerce_sync.events import newer_events

T0 = datetime(2026, 12, 1, tzinfo=UTC)
ASSET = "x-sales-channel://amazon/order-change"


class FakeAccessor:
    """``inlet_events[asset]`` with ``after(iso)`` (inclusive, as a filter on the timestamp)."""

    def __init__(self, events):
        self.events, self._after = events, None

    def after(self, after):
        self._after = datetime.fromisoformat(after)
        return self

    def __iter__(self):
        return iter([e for e in self.events if e.timestamp >= self._after])


def event(seconds: float):
    return SimpleNamespace(id=int(seconds * 10), timestamp=T0 + timedelta(seconds=seconds), extra={"n": seconds})


def test_each_read_gives_what_came_after_the_last_it_gave():
    recorded = [event(1)]
    inlet = {ASSET: FakeAccessor(recorded)}
    read = newer_events(inlet, ASSET, "asset_triggered", T0 + timedelta(seconds=0.5))
    assert [e.extra["n"] for e in read()] == [1]
    recorded += [event(2), event(3)]
    # the accessor's after() is inclusive (Airflow 3.3: timestamp >= after): the newest given comes again from
    # the accessor, and is not given twice
    assert [e.extra["n"] for e in read()] == [2, 3]
    assert read() == []
    recorded.append(SimpleNamespace(id=99, timestamp=T0 + timedelta(seconds=3), extra={"n": 3}))  # same instant
    assert [e.extra["n"] for e in read()] == [3]


def test_no_reader_outside_asset_triggered_runs():
    inlet = {ASSET: FakeAccessor([])}
    assert newer_events(inlet, ASSET, "scheduled", T0) is None
    assert newer_events(None, ASSET, "asset_triggered", T0) is None
    assert newer_events(inlet, ASSET, "asset_triggered", None) is None
