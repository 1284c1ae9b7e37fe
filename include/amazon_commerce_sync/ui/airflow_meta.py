"""What the Sales Channel page reads from Airflow's metadata database: DAG runs, the import's schedule, the watcher.

The page runs inside the Airflow API server, so it reads what the scheduler, the DAG processor and the triggerer
recorded (``dag_run``, ``dag``, ``asset_watcher``, ``trigger``, ``job``, ``asset_event``), not the deployment's
environment: the schedule shown is the one the scheduler uses, the watcher the one the triggerer runs.
Everything here degrades to "unknown" when the metadata database cannot be read (e.g. the page served on its own).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, urlparse

from sqlalchemy import case, func, select

from amazon_commerce_sync.constants import ASSET_ORDER_CHANGE, DAG_ORDER_EVENTS, DAG_ORDER_IMPORT, SCHEDULE_SWITCHES

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


def order_change_watcher(
    now: datetime | None = None, *, dag_id: str = DAG_ORDER_EVENTS, uri: str = ASSET_ORDER_CHANGE
) -> dict[str, Any]:
    """The ORDER_CHANGE watcher (the ``AssetWatcher`` of the asset ``uri`` that schedules ``dag_id``) as Airflow
    has it. ``state``:

    - ``running``: a watcher's trigger is assigned to a triggerer that is alive (a ``TriggererJob`` not ended,
      heartbeat within ``[triggerer] triggerer_health_check_threshold``, the test of ``Trigger.assign_unassigned``);
    - ``not_running``: a watcher exists but no live triggerer has its trigger (none runs, or it is overloaded);
    - ``off``: the asset has no watcher although the DAG is active: no queue configured
      (``SALES_CHANNEL_ORDER_CHANGE_QUEUE_URL``), the event path is off and the polling import does everything;
    - ``paused``: the DAG is paused (the DAG processor keeps no watcher of a paused DAG's asset:
      ``dag_processing/collection.py``, ``add_asset_trigger_references``);
    - ``not_parsed``: the metadata database has no such DAG; ``unknown``: it cannot be read.

    Also ``watchers`` (names), ``trigger_ids``, ``heartbeat`` (the live triggerer's latest heartbeat, aware UTC),
    ``last_event`` (the asset's latest event: the watcher's latest batch of messages) and ``events_last_hour``
    (the asset's events in the hour before ``now``). Never raises."""
    now = now or datetime.now(UTC)
    out: dict[str, Any] = {"state": "unknown", "watchers": [], "trigger_ids": [], "heartbeat": None}
    out.update(last_event=None, events_last_hour=0)
    try:
        from airflow.configuration import conf
        from airflow.jobs.job import Job
        from airflow.models import DagModel
        from airflow.models.asset import AssetEvent, AssetModel, AssetWatcherModel
        from airflow.models.trigger import Trigger
        from airflow.utils.session import create_session

        threshold = conf.getfloat("triggerer", "triggerer_health_check_threshold", fallback=30.0)
        with create_session() as session:
            paused = session.scalar(select(DagModel.is_paused).where(DagModel.dag_id == dag_id))
            asset_ids = select(AssetModel.id).where(AssetModel.uri == uri).scalar_subquery()
            live = (Job.job_type == "TriggererJob") & Job.end_date.is_(None)
            watchers = session.execute(
                select(AssetWatcherModel.name, Trigger.id, Job.latest_heartbeat)
                .join(Trigger, Trigger.id == AssetWatcherModel.trigger_id)
                .outerjoin(Job, (Job.id == Trigger.triggerer_id) & live)
                .where(AssetWatcherModel.asset_id.in_(asset_ids))
                .order_by(AssetWatcherModel.name)
            ).all()
            hour_ago = now - timedelta(hours=1)
            events = session.execute(
                select(
                    func.max(AssetEvent.timestamp),
                    func.sum(case((AssetEvent.timestamp >= hour_ago, 1), else_=0)),  # MySQL has no FILTER
                ).where(AssetEvent.asset_id.in_(asset_ids))
            ).one()
    except Exception:  # noqa: BLE001 - the page still shows the state store without it
        log.debug("cannot read the ORDER_CHANGE watcher from Airflow's metadata database", exc_info=True)
        return out
    heartbeats = [_aware(beat) for _, _, beat in watchers if beat is not None]
    alive = [beat for beat in heartbeats if beat > now - timedelta(seconds=threshold)]
    out.update(
        watchers=[name for name, _, _ in watchers],
        trigger_ids=[trigger_id for _, trigger_id, _ in watchers],
        heartbeat=max(alive, default=None),
        last_event=_aware(events[0]),
        events_last_hour=events[1] or 0,
    )
    if watchers:
        out["state"] = "running" if alive else "not_running"
    elif paused is None:
        out["state"] = "not_parsed"
    else:
        out["state"] = "paused" if paused else "off"
    return out
