"""Airflow's own delay in the two import paths, read from the metadata database of a `make run` (SQLite).

``python -m benchmarks.airflow_delay var/airflow/airflow.db`` prints, as JSON:

- ``event`` (and its two parts, ``event_creation`` and ``event_start``): per asset-triggered
  ``amazon_order_events`` run, its ``run_after`` (when the asset event that made the run was queued for the DAG:
  the watcher's trigger had just fired) to the start of
  ``account.fetch_load``: the scheduler loop, the run's creation, the ``stage`` and ``accounts`` tasks with their
  process start-up and the gaps between them. Runs queued while another run of the DAG was still going
  (``max_active_runs=1``) are left out: that wait is queueing, which the benchmark reproduces itself.
- ``stranded_waits``: asset events a run consumed that were older than the creation of the previous run of the
  DAG (the seconds from the event to the ``run_after`` of the run that took it): an event that comes between the
  queueing of a run and its creation is not in that run, and waits for the run of the next event.
- ``polling``: per scheduled ``amazon_order_import`` run, ``run_after`` to the start of ``account.extract``, plus
  the gap from the end of ``account.extract`` to the start of ``account.load`` (the first mapped instance each).

The benchmark (``benchmarks/order_events.py``, ``AIRFLOW_EVENT_DELAY`` / ``AIRFLOW_POLL_DELAY``) uses the medians.
"""

from __future__ import annotations

import json
import sqlite3
import statistics
import sys
from datetime import datetime

EVENTS_DAG, IMPORT_DAG = "amazon_order_events", "amazon_order_import"


def _t(value: str | None) -> float | None:
    return datetime.fromisoformat(value).timestamp() if value else None


def _tasks(db: sqlite3.Connection, dag_id: str, run_id: str) -> dict[str, tuple[float | None, float | None]]:
    rows = db.execute(
        "SELECT task_id, start_date, end_date FROM task_instance WHERE dag_id = ? AND run_id = ? "
        "AND map_index IN (-1, 0)",
        (dag_id, run_id),
    )
    return {task: (_t(start), _t(end)) for task, start, end in rows}


def event_delays(db: sqlite3.Connection) -> tuple[list[tuple[float, float]], list[float]]:
    """Per run that did not wait for another: seconds from ``run_after`` to the run's creation (``queued_at``)
    and from there to ``account.fetch_load``'s start; and the waits of stranded events (module docstring)."""
    runs = db.execute(
        "SELECT id, run_id, run_type, run_after, queued_at, end_date FROM dag_run WHERE dag_id = ? ORDER BY start_date",
        (EVENTS_DAG,),
    ).fetchall()
    delays, stranded, previous_end, previous_created = [], [], None, None
    for run_pk, run_id, run_type, run_after, queued_at, end in runs:
        if run_type == "asset_triggered":
            queued = _t(run_after)
            fetch_start = _tasks(db, EVENTS_DAG, run_id).get("account.fetch_load", (None, None))[0]
            if fetch_start and (previous_end is None or queued >= previous_end):
                delays.append((round(_t(queued_at) - queued, 3), round(fetch_start - _t(queued_at), 3)))
            consumed = db.execute(
                "SELECT e.timestamp FROM asset_event e JOIN dagrun_asset_event d ON d.event_id = e.id "
                "WHERE d.dag_run_id = ?",
                (run_pk,),
            ).fetchall()
            stranded += [round(queued - _t(t), 3) for (t,) in consumed if previous_created and _t(t) < previous_created]
        previous_created = _t(queued_at)
        previous_end = _t(end) or previous_end
    return delays, stranded


def polling_delays(db: sqlite3.Connection) -> list[float]:
    """Seconds of Airflow's own in a scheduled import run: ``run_after`` -> extract starts, extract -> load."""
    runs = db.execute(
        "SELECT run_id, run_after, queued_at FROM dag_run WHERE dag_id = ? AND run_type = 'scheduled'", (IMPORT_DAG,)
    ).fetchall()
    out = []
    for run_id, run_after, queued_at in runs:
        if _t(queued_at) - _t(run_after) > 60:  # a run due before the scheduler started (catch-up at start-up)
            continue
        tasks = _tasks(db, IMPORT_DAG, run_id)
        (extract_start, extract_end), (load_start, _) = (
            tasks.get("account.extract", (None, None)),
            tasks.get("account.load", (None, None)),
        )
        if extract_start and extract_end and load_start:
            out.append(round((extract_start - _t(run_after)) + (load_start - extract_end), 3))
    return out


def measure(path: str) -> dict:
    """Both delays (lists and medians, seconds) from the Airflow metadata database at ``path`` (opened read-only)."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        (event, stranded), polling = event_delays(db), polling_delays(db)
    finally:
        db.close()
    return {
        "event": [round(a + b, 3) for a, b in event],
        "event_median": statistics.median(a + b for a, b in event) if event else None,
        "event_creation_median": statistics.median(a for a, _ in event) if event else None,
        "event_start_median": statistics.median(b for _, b in event) if event else None,
        "stranded_waits": stranded,
        "polling": polling,
        "polling_median": statistics.median(polling) if polling else None,
    }


if __name__ == "__main__":
    print(json.dumps(measure(sys.argv[1]), indent=2))
