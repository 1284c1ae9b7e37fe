"""`make run`'s terminal: one short line per finished DAG run, read from Airflow's REST API.

scripts/run.sh starts it once Airflow answers, after its banner, instead of showing Airflow's own log (which stays
in var/airflow.log). Each line is the run's end time (local clock), DAG id, state, run id and duration, e.g.
``12:03:10 amazon_order_import success (run scheduled__2026-11-30T12:02:00+00:00, 14 s)``; a failed run also
names the UI page of the run. Only runs that end after the watcher starts are shown.

It signs in as the SimpleAuthManager's UI does (``POST /auth/token``, JSON username/password, a JWT back) and lists
runs of every DAG with ``GET /api/v2/dags/~/dagRuns`` (``state``, ``end_date_gte``, ``order_by`` filters of the
Airflow 3 public API). It stops by itself when the Airflow process it watches is gone (exit 1) or after
``--minutes`` (exit 0); an unanswered poll (Airflow busy, restarting) is retried on the next one.

``--trigger-once DAG_ID`` (repeatable) also triggers each such DAG once, with a fixed run id (``make_run_setup``),
as soon as Airflow has parsed it (``POST /api/v2/dags/{dag_id}/dagRuns``; 404 while it is not parsed yet is tried
again on the next poll, 409 means an earlier ``make run`` did it): ``make run`` subscribes to ORDER_CHANGE so.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import urllib.parse
from datetime import UTC, datetime, timedelta

import requests

FINISHED = ("success", "failed")
TIMEOUT = 10  # seconds per request


class Watcher:
    """Polls the finished DAG runs of one Airflow API server and prints each once.

    ``base_url`` is the API server's root (``http://127.0.0.1:8080``); ``username``/``password`` a SimpleAuthManager
    user allowed to read DAG runs. ``since`` (aware datetime) hides runs that ended earlier.
    """

    def __init__(self, base_url: str, username: str, password: str, since: datetime) -> None:
        self.base_url = base_url.rstrip("/")
        self.username = username
        self.password = password
        self.since = since
        self.token: str | None = None
        self.seen: set[tuple[str, str, str]] = set()

    def _request(self, path: str, body: dict | None = None, *, auth: bool = False) -> dict:
        url = self.base_url + path
        if body is not None:
            headers = {"Authorization": f"Bearer {self.token}"} if auth else {}
            response = requests.post(url, json=body, headers=headers, timeout=TIMEOUT)
        else:
            response = requests.get(url, headers={"Authorization": f"Bearer {self.token}"}, timeout=TIMEOUT)
        response.raise_for_status()
        return response.json()

    def _sign_in(self) -> None:
        answer = self._request("/auth/token", {"username": self.username, "password": self.password})
        self.token = answer["access_token"]

    def finished_runs(self) -> list[dict]:
        """The DAG runs (API ``DAGRunResponse`` dicts) that ended since the last call, oldest end first."""
        if self.token is None:
            self._sign_in()
        # A little overlap: a run whose end_date is written while we read must not fall between two polls.
        since = (self.since - timedelta(seconds=30)).isoformat()
        query = urllib.parse.urlencode(
            [("state", s) for s in FINISHED] + [("end_date_gte", since), ("order_by", "end_date"), ("limit", "100")]
        )
        try:
            answer = self._request(f"/api/v2/dags/~/dagRuns?{query}")
        except requests.HTTPError as error:
            if error.response is None or error.response.status_code != 401:
                raise
            self.token = None  # expired: sign in again on the next poll
            return []
        new = []
        for run in answer.get("dag_runs", []):
            key = (run["dag_id"], run["dag_run_id"], run["end_date"])
            if key in self.seen:
                continue
            self.seen.add(key)
            new.append(run)
            self.since = max(self.since, _parse(run["end_date"]))
        return new

    def trigger_once(self, dag_id: str, run_id: str = "make_run_setup") -> bool:
        """Trigger ``dag_id`` with the fixed ``run_id``; True once done (created now, or 409: it exists already),
        False while Airflow does not know the DAG yet (404) or does not answer (try again later)."""
        if self.token is None:
            self._sign_in()
        try:
            self._request(f"/api/v2/dags/{dag_id}/dagRuns", {"dag_run_id": run_id, "logical_date": None}, auth=True)
        except requests.HTTPError as error:
            status = None if error.response is None else error.response.status_code
            if status == 409:
                return True
            if status == 401:
                self.token = None
            return False
        return True

    def line(self, run: dict) -> str:
        """One terminal line for a finished run (a ``DAGRunResponse`` dict)."""
        end = _parse(run["end_date"])
        started = run.get("start_date")
        took = f", {round((end - _parse(started)).total_seconds())} s" if started else ""
        text = f"{end.astimezone():%H:%M:%S} {run['dag_id']} {run['state']} (run {run['dag_run_id']}{took})"
        if run["state"] != "success":
            run_id = urllib.parse.quote(run["dag_run_id"], safe="")
            text += f" - see {self.base_url}/dags/{run['dag_id']}/runs/{run_id}"
        return text


def _parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def main(argv: list[str] | None = None) -> int:
    """Print finished runs until Airflow (``--airflow-pid``) stops (exit 1) or ``--minutes`` pass (exit 0)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="the Airflow API server, e.g. http://127.0.0.1:8080")
    parser.add_argument("--username", default="admin")
    parser.add_argument("--airflow-pid", type=int, required=True, help="stop when this process is gone")
    parser.add_argument("--minutes", type=float, default=0, help="stop after this long (0: never)")
    parser.add_argument("--interval", type=float, default=5, help="seconds between polls")
    parser.add_argument("--log", default="var/airflow.log", help="named when Airflow stops")
    parser.add_argument("--trigger-once", action="append", default=[], metavar="DAG_ID", help="trigger once")
    args = parser.parse_args(argv)
    password = os.environ["UI_ADMIN_PASSWORD"]  # from the environment: never on a command line
    watcher = Watcher(args.url, args.username, password, since=datetime.now(UTC))
    deadline = time.monotonic() + args.minutes * 60 if args.minutes else None
    to_trigger = list(args.trigger_once)
    while deadline is None or time.monotonic() < deadline:
        if not _alive(args.airflow_pid):
            print(f"Airflow stopped; its log is {args.log}", file=sys.stderr, flush=True)
            return 1
        try:
            to_trigger = [dag_id for dag_id in to_trigger if not watcher.trigger_once(dag_id)]
            for run in watcher.finished_runs():
                print(watcher.line(run), flush=True)
        except (requests.RequestException, ValueError, KeyError):
            pass  # not answering right now (busy, restarting): the next poll reads what this one missed
        time.sleep(args.interval)
    return 0


if __name__ == "__main__":
    sys.exit(main())
