"""The two import paths of the event-driven benchmark, each run in its own process (``benchmarks/order_events.py``
starts them with ``--child events|polling``), each with its own state store and Commerce sandbox.

Both call the task bodies Airflow calls (``pipelines/tasks.py``), so a change there (the adaptive switch, say) is
what gets measured. What Airflow itself adds is modelled, not run: a measured delay (``AIRFLOW_*`` in
``benchmarks/order_events.py``), slept divided by the speed factor, like every other time of the run.

- **events**: the watcher's trigger, ``OrderChangeTrigger.run()``, runs in an event loop of its own thread against
  the SQS queue, started again each time it has fired (as the triggerer does with a watcher's trigger). Each event
  is an asset event; the "scheduler" loop creates runs from them as Airflow's scheduler does (:func:`run_events`),
  then runs ``order_events_stage`` and ``order_events_fetch_load`` per account.
- **polling**: ``amazon_order_import`` at its schedule (interval divided by its own factor): at each due time,
  Airflow's delay (real seconds), then ``extract_orders`` (``run_after`` = the due time) and ``load_orders`` per
  account; a run that overruns skips the due times it missed (``catchup=False``, ``max_active_runs=1``).

Each child writes one JSON line (file ``BENCH_RECORDS``) per trigger event (``{"kind": "batch", "t", "ids"}``)
and per run (``{"kind": "run", ...}``) and stops when its state store has ``--expect`` orders created in Commerce or at
``--deadline`` (epoch seconds). Ids and counts only: no buyer data.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import math
import os
import queue
import sys
import threading
import time
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any


def emit(record: dict[str, Any]) -> None:
    """One JSON line to the records file the benchmark reads (``BENCH_RECORDS``); stdout is the log's, and the
    benchmark does not read it while the child runs."""
    with open(os.environ["BENCH_RECORDS"], "a", encoding="utf-8") as records:
        records.write(json.dumps(record, default=str) + "\n")


def created_in_commerce() -> int:
    """Orders this child's state store created in Commerce (``commerce_writes`` ``create_order`` done)."""
    from sqlalchemy import func, select

    from amazon_commerce_sync.resources import open_resources
    from amazon_commerce_sync.store.schema import commerce_writes

    engine = open_resources("bench").store.engine
    query = select(func.count()).where(commerce_writes.c.kind == "create_order", commerce_writes.c.status == "done")
    with engine.connect() as conn:
        return int(conn.scalar(query) or 0)


def warm_up() -> None:
    """Import what the task bodies import and open the state store once (migrating it), before the clock runs: a
    task process has its modules loaded by the time Airflow's delay (measured to the task's start) has passed."""
    from amazon_commerce_sync.pipelines import order_events, order_extract, order_import  # noqa: F401

    created_in_commerce()


def trigger_settings(speed: float) -> dict[str, Any]:
    """``OrderChangeTrigger``'s defaults (what the DAG's watcher uses), its times divided by ``speed``.

    SQS takes whole seconds for ``WaitTimeSeconds`` (at least 1 here, so the long poll stays a long poll)."""
    from amazon_commerce_sync.events import OrderChangeTrigger

    defaults = {k: p.default for k, p in inspect.signature(OrderChangeTrigger).parameters.items() if k != "sqs_queue"}
    defaults["wait_time_seconds"] = max(1, round(defaults["wait_time_seconds"] / speed))
    defaults["waiter_delay"] = defaults["waiter_delay"] / speed
    return defaults


def _watch(queue_url: str, speed: float, events: queue.Queue, stop: threading.Event) -> None:
    """The triggerer: run the watcher's trigger until it fires, queue the event, start it again."""
    from amazon_commerce_sync.events import OrderChangeTrigger

    kwargs = trigger_settings(speed)

    async def loop() -> None:
        while not stop.is_set():
            try:
                async for event in OrderChangeTrigger(queue_url, **kwargs).run():
                    events.put((time.time(), event.payload))
            except Exception as exc:  # noqa: BLE001 - the triggerer starts a failed watcher trigger again
                emit({"kind": "trigger_error", "t": time.time(), "error": type(exc).__name__})
                await asyncio.sleep(1.0)

    asyncio.run(loop())


def run_events(queue_url: str, speed: float, creation: float, start: float, expect: int, deadline: float) -> None:
    """The event path until ``expect`` orders are in Commerce or ``deadline``; see the module docstring.

    Airflow's scheduler as Airflow 3.3.2 does it (``SchedulerJobRunner._create_dag_runs_asset_triggered``): the
    first event while no run is queued makes the queue entry (``AssetDagRunQueue``, its ``created_at`` becomes the
    run's ``run_after``); the run is created ``creation`` seconds later, and no sooner than the previous run ended
    (``max_active_runs=1``), and consumes the events up to its ``run_after`` only; an event that came after it and
    before the run's creation waits for the run a later event makes ("stranded", counted); the run's stage task
    takes it from its inlet all the same (``order_events.later_events``; "late_staged"), and the fetch_load task
    the ones recorded during the fetch (``events.newer_events``, modelled by ``newer``). The tasks start
    ``start`` seconds after the creation. Both times are Airflow's (:mod:`benchmarks.airflow_delay`), divided by
    ``speed``."""
    from amazon_commerce_sync.pipelines import tasks

    warm_up()
    accounts = tasks.list_accounts()
    events: queue.Queue = queue.Queue()
    stop = threading.Event()
    threading.Thread(target=_watch, args=(queue_url, speed, events, stop), daemon=True).start()
    time.sleep(1.0)  # the trigger's first ReceiveMessage is under way
    emit({"kind": "ready", "t": time.time()})
    pending: list[tuple[float, dict]] = []
    queued_at: float | None = None  # the AssetDagRunQueue entry's created_at
    created = 0.0  # the previous run's creation

    def receive(timeout: float) -> None:
        nonlocal queued_at
        try:
            item = events.get(timeout=timeout)
        except queue.Empty:
            return
        while True:
            received, payload = item
            ids = [m.get("amazonOrderId") for m in payload.get("message_batch", []) if "amazonOrderId" in m]
            emit({"kind": "batch", "t": received, "ids": ids})
            pending.append(item)
            if queued_at is None and received > created:
                queued_at = received
            try:
                item = events.get_nowait()
            except queue.Empty:
                return

    since = 0.0  # the newest event fetch_load's inlet read

    def newer() -> list[SimpleNamespace]:
        """fetch_load's inlet (``events.newer_events``): the events recorded after the last it read; they stay
        pending, for the run a later event makes (duplicates, as in Airflow)."""
        nonlocal since
        receive(0.0)
        found = [(t, p) for t, p in pending if t > since]
        since = max([t for t, _ in found], default=since)
        return [SimpleNamespace(extra={"from_trigger": True, "payload": p}, timestamp=None) for _, p in found]

    runs = 0
    while time.time() < deadline:
        receive(0.2)
        if queued_at is None:
            continue
        while time.time() < queued_at + creation / speed:
            receive(max(0.0, queued_at + creation / speed - time.time()))
        created = time.time()
        batch = [item for item in pending if item[0] <= queued_at]
        pending = [item for item in pending if item[0] > queued_at]
        stranded = len(pending)
        run_after, queued_at = queued_at, None
        runs += 1
        run_id = f"asset_triggered__bench_{runs}"
        time.sleep(start / speed)
        started = time.time()
        extras = [SimpleNamespace(extra={"from_trigger": True, "payload": payload}) for _, payload in batch]
        # the stage task's inlet: the events recorded after run_after up to now (order_events.later_events); they
        # stay pending, and the run a later event makes consumes them again (duplicates, as in Airflow)
        receive(0.0)
        late = [SimpleNamespace(extra={"from_trigger": True, "payload": p}) for t, p in pending if t > run_after]
        staged = tasks.order_events_stage({"order_change": extras}, run_id, late)
        since = max([t for t, _ in pending if t > run_after], default=run_after)
        results = [tasks.order_events_fetch_load(account, run_id, newer) for account in accounts]
        emit(
            {
                "kind": "run",
                "run_id": run_id,
                "run_after": run_after,
                "created": created,
                "started": started,
                "ended": time.time(),
                "events": len(batch),
                "stranded": stranded,
                "late_staged": len(late),
                "stage": staged,
                "fetch_load": results,
            }
        )
        if created_in_commerce() >= expect:
            break
    stop.set()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # the watcher's thread may be in a long poll: no need to wait for it


def run_polling(interval: float, speed: float, airflow_delay: float, start: float, expect: int, deadline: float):
    """The polling import on its schedule (``interval`` Amazon seconds) until ``expect`` orders or ``deadline``.

    Only the schedule is compressed (``interval / speed``): Airflow's delay, the 2-minute rule and the work are
    real seconds, so the benchmark scales back just the wait for the next due time."""
    from amazon_commerce_sync.pipelines import tasks

    warm_up()
    accounts = tasks.list_accounts()
    emit({"kind": "ready", "t": time.time()})
    grid = interval / speed
    due = start + grid
    while time.time() < deadline:
        time.sleep(max(0.0, due - time.time()))
        run_after = datetime.fromtimestamp(due, UTC)
        run_id = f"scheduled__{run_after.isoformat()}"
        time.sleep(airflow_delay)
        started = time.time()
        summaries = []
        for account in accounts:
            extracted = tasks.extract_orders(account, run_id, {}, run_after=run_after)
            summaries.append({"extract": extracted, "load": tasks.load_orders(account, run_id)})
        emit({"kind": "run", "run_id": run_id, "due": due, "started": started, "ended": time.time(), "runs": summaries})
        if created_in_commerce() >= expect:
            break
        # catchup=False: the next run is for the latest due time not yet run.
        due = max(due + grid, start + math.floor((time.time() - start) / grid) * grid)
