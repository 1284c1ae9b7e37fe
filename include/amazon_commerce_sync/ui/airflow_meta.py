"""What the Sales Channel page reads from Airflow's metadata database: DAG runs and the import's schedule.

The page runs inside the Airflow API server, so it reads what the scheduler and the DAG processor recorded
(``dag_run``, ``dag``), not the deployment's environment: the schedule shown is the one the scheduler uses.
Everything here degrades to "unknown" when the metadata database cannot be read (e.g. the page served on its own).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlparse

from sqlalchemy import func, select

from amazon_commerce_sync.constants import DAG_ORDER_IMPORT, SCHEDULE_SWITCHES

log = logging.getLogger(__name__)

IMPORT_SCHEDULE_DEFAULT = "*/5 * * * *"  # dags/amazon_order_import.py, without its deployment switch


def _aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def airflow_base_path() -> str:
    """The path the Airflow UI is served under (``[api] base_url``'s path, "" at the root), for links."""
    try:
        from airflow.configuration import conf

        base = conf.get("api", "base_url", fallback="") or ""
    except Exception:  # noqa: BLE001 - links relative to the root rather than no page
        base = ""
    return urlparse(base).path.rstrip("/")


def run_link(dag_id: str, run_id: str | None) -> str:
    """The Airflow UI address of a DAG run (``<base>/dags/<dag_id>/runs/<run_id>``), or of the DAG without a run."""
    href = f"{airflow_base_path()}/dags/{quote(dag_id, safe='')}"
    return f"{href}/runs/{quote(run_id, safe='')}" if run_id else href


def last_dag_runs(dag_ids: Iterable[str]) -> list[dict[str, Any]]:
    """Per DAG: its latest run (``last_run_id``, ``last_state``, ``last_start``) and its latest successful run
    (``last_success``), both by the run's start time (``dag_run.start_date``; a run not started yet counts from
    ``run_after``), so a daily DAG's last success is not its end time hours later. Empty when the metadata
    database cannot be read."""
    try:
        from airflow.models import DagRun
        from airflow.utils.session import create_session
        from airflow.utils.state import DagRunState
    except ImportError:  # pragma: no cover - Airflow is always installed
        return []
    out = []
    started = func.coalesce(DagRun.start_date, DagRun.run_after)
    try:
        with create_session() as session:
            for dag_id in dag_ids:
                last = session.execute(
                    select(DagRun.run_id, DagRun.state, started.label("started"))
                    .where(DagRun.dag_id == dag_id)
                    .order_by(started.desc())
                    .limit(1)
                ).first()
                success = session.scalar(
                    select(func.max(DagRun.start_date)).where(
                        DagRun.dag_id == dag_id, DagRun.state == DagRunState.SUCCESS
                    )
                )
                out.append(
                    {
                        "dag_id": dag_id,
                        "last_run_id": last.run_id if last is not None else None,
                        "last_state": str(last.state) if last is not None and last.state else None,
                        "last_start": _aware(last.started) if last is not None else None,
                        "last_success": _aware(success),
                    }
                )
    except Exception:  # noqa: BLE001 - the page still shows the state store without it
        log.warning("cannot read DAG runs from Airflow's metadata database", exc_info=True)
        return []
    return out


def interval_minutes(cron: str | None) -> int | None:
    """The minutes between two runs of a cron schedule (the shortest over the next few), None if not a cron."""
    if not cron or not re.match(r"^\S+( \S+){4}$", cron.strip()):
        return None
    try:
        from croniter import croniter

        it = croniter(cron.strip(), datetime(2026, 1, 5, tzinfo=UTC))
        times = [it.get_next(datetime) for _ in range(6)]
    except Exception:  # noqa: BLE001 - an expression croniter does not read: no interval
        return None
    return max(1, int(min((b - a).total_seconds() for a, b in zip(times, times[1:], strict=False)) // 60))


def import_schedule(dag_id: str = DAG_ORDER_IMPORT) -> dict[str, Any]:
    """The import's schedule as the scheduler has it: ``summary`` (e.g. ``*/5 * * * *`` or ``None``),
    ``description`` (Airflow's words, e.g. "Every 5 minutes"), ``interval_minutes`` (None when not periodic),
    ``source`` ("airflow"; when the metadata database has no such DAG or cannot be read: "environment", the
    deployment switch ``SALES_CHANNEL_IMPORT_SCHEDULE``, or "default", the DAG's default schedule)."""
    try:
        from airflow.models import DagModel
        from airflow.utils.session import create_session

        with create_session() as session:
            row = session.execute(
                select(DagModel.timetable_summary, DagModel.timetable_description).where(DagModel.dag_id == dag_id)
            ).first()
    except Exception:  # noqa: BLE001 - fall back to the deployment's switch
        log.debug("cannot read the import's schedule from Airflow's metadata database", exc_info=True)
        row = None
    if row is not None:
        return {
            "summary": row.timetable_summary,
            "description": row.timetable_description,
            "interval_minutes": interval_minutes(row.timetable_summary),
            "source": "airflow",
        }
    return schedule_from_environment(dag_id)


def schedule_from_environment(dag_id: str = DAG_ORDER_IMPORT) -> dict[str, Any]:
    """The schedule as ``import_schedule`` gives it, from the DAG's deployment switch (``SCHEDULE_SWITCHES``) when
    set ("environment"), else the import's default schedule ("default")."""
    switch = os.environ.get(SCHEDULE_SWITCHES.get(dag_id, ""), "").strip() if dag_id in SCHEDULE_SWITCHES else ""
    cron = switch or IMPORT_SCHEDULE_DEFAULT
    source = "environment" if switch else "default"
    if cron.lower() == "none":
        return {"summary": None, "description": None, "interval_minutes": None, "source": source}
    return {"summary": cron, "description": None, "interval_minutes": interval_minutes(cron), "source": source}
