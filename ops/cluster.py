"""The docker-compose topology without Docker: Airflow on the CeleryExecutor as separate processes on this machine.

PostgreSQL holds Airflow's metadata and, in a database of its own, the integration's state store; Redis is the
Celery broker; the api-server, scheduler, dag-processor, triggerer and N Celery workers each run in their own
process group, against both sandboxes. ``make distributed`` (tests/distributed) and ``make soak`` (ops/soak.py)
use it; both expect PostgreSQL and Redis to answer on loopback (scripts/ensure_postgres.sh, ensure_redis.sh).

Everything a cluster creates is its own: two fresh databases named after it, one Redis database index, free
ports, random credentials and a work directory under var/. ``stop()`` ends every process it started (SIGTERM,
then SIGKILL) and drops what it created.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests

from amazon_commerce_sync.constants import SCHEDULE_SWITCHES

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
log = logging.getLogger(__name__)

DAG_IDS = (
    "amazon_order_import",
    "amazon_shipment_sync",
    "amazon_refund_sync",
    "amazon_order_cancel",
    "amazon_pii_retention",
    "sales_channel_monitor",
    "sales_channel_healthcheck",
)
ACCOUNT_ID = "us-main"
MERCHANT_ID = "A2SANDBOXSELLER1"
MARKETPLACES = ["ATVPDKIKX0DER", "A2EUQ1WTGCTBG2"]
TERMINAL = {"success", "failed"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class ClusterConfig:
    name: str = "distributed"
    workers: int = 2
    worker_concurrency: int = 2
    amazon_speed: float = 20.0  # rate limits x speed in the sandbox; the connection's rate_scale matches it
    amazon_live: bool = False
    amazon_live_interval: float = 60.0
    amazon_seed: int = 42
    schedules: dict[str, str] = field(default_factory=lambda: dict.fromkeys(SCHEDULE_SWITCHES, "none"))
    feed_poke_seconds: int = 2
    import_orders_after: datetime = field(default_factory=lambda: datetime.now(UTC) - timedelta(days=2))
    pg_admin_url: str = os.environ.get("CLUSTER_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    redis_url: str = ""  # default: CLUSTER_REDIS_URL, else a database index (11-15) derived from the name
    extra_env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Two clusters at once (a soak and the distributed test) must not share a broker queue.
        self.redis_url = (
            self.redis_url
            or os.environ.get("CLUSTER_REDIS_URL")
            or (f"redis://127.0.0.1:6379/{11 + zlib.crc32(self.name.encode()) % 5}")
        )


class Cluster:
    """Start with ``start()``, stop with ``stop()`` (or use it as a context manager)."""

    def __init__(self, config: ClusterConfig | None = None):
        self.config = config or ClusterConfig()
        self.work = ROOT / "var" / f"cluster-{self.config.name}"
        self.home = self.work / "airflow"
        self.procs: dict[str, subprocess.Popen] = {}
        self.ports: dict[str, int] = {}
        self._token: str | None = None
        db = "".join(c if c.isalnum() else "_" for c in self.config.name.lower())
        self.databases = {"airflow": f"acs_cluster_{db}_airflow", "state": f"acs_cluster_{db}_state"}
        self.secrets = {
            "lwa_client_id": "amzn1.application-oa2-client." + secrets.token_hex(8),
            "lwa_client_secret": secrets.token_urlsafe(24),
            "lwa_refresh_token": "Atzr|" + secrets.token_urlsafe(24),
            "commerce_password": secrets.token_urlsafe(24),
            "ui_password": secrets.token_urlsafe(16),
        }

    # -- lifecycle ---------------------------------------------------------------------------
    def __enter__(self) -> Cluster:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        started = time.monotonic()
        shutil.rmtree(self.work, ignore_errors=True)
        (self.home / "logs").mkdir(parents=True)
        os.chmod(self.work, 0o700)
        self.ports = {name: free_port() for name in ("api", "amazon", "commerce", "triggerer_logs")}
        for n in range(1, self.config.workers + 1):
            self.ports[f"worker{n}_logs"] = free_port()
        self._create_databases()
        self._flush_redis()
        (self.home / "simple_auth_manager_passwords.json.generated").write_text(
            json.dumps({"admin": self.secrets["ui_password"]})
        )
        self._start_sandboxes()
        self.run_once("airflow-db-migrate", [str(BIN / "airflow"), "db", "migrate"], timeout=600)
        self.run_once(
            "state-store-migrate",
            [
                str(BIN / "python"),
                "-c",
                "from amazon_commerce_sync.store.db import get_engine, migrate; print(migrate(get_engine()))",
            ],
            timeout=120,
        )
        self.spawn("api-server", [str(BIN / "airflow"), "api-server", "--port", str(self.ports["api"])])
        self.spawn("scheduler", [str(BIN / "airflow"), "scheduler"])
        self.spawn("dag-processor", [str(BIN / "airflow"), "dag-processor"])
        self.spawn("triggerer", [str(BIN / "airflow"), "triggerer"])
        for n in range(1, self.config.workers + 1):
            self.start_worker(n)
        self.wait_healthy()
        self.wait_for_dags()
        log.info("cluster %s up in %.0f s (%s)", self.config.name, time.monotonic() - started, self.api_url)

    def stop(self) -> None:
        """End every process this cluster started, then drop its databases and broker queue."""
        trees = {name: self.tree_pids(name) for name in self.procs}  # before parents exit and orphans move away
        for name in reversed(list(self.procs)):
            self._signal(name, signal.SIGTERM)
        deadline = time.monotonic() + 20
        for name, proc in list(self.procs.items()):
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop in time: killing it", name)
        for name, proc in list(self.procs.items()):
            self._signal(name, signal.SIGKILL)
            for pid in trees[name]:  # task processes run in process groups of their own
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            proc.wait(timeout=10)
        self.procs.clear()
        try:
            self._drop_databases()
            self._flush_redis()
        except Exception:  # noqa: BLE001 - a server already gone leaves nothing to clean
            log.warning("could not clean the cluster's databases", exc_info=True)

    # -- processes ---------------------------------------------------------------------------
    def spawn(self, name: str, cmd: list[str], env: dict[str, str] | None = None) -> subprocess.Popen:
        logfile = open(self.work / f"{name}.log", "ab")  # noqa: SIM115 - owned by the child from here on
        proc = subprocess.Popen(
            cmd,
            cwd=ROOT,
            env={**self.env(), **(env or {})},
            stdout=logfile,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        logfile.close()
        self.procs[name] = proc
        return proc

    def run_once(self, name: str, cmd: list[str], timeout: float) -> None:
        with open(self.work / f"{name}.log", "wb") as logfile:
            result = subprocess.run(
                cmd, cwd=ROOT, env=self.env(), stdout=logfile, stderr=subprocess.STDOUT, timeout=timeout, check=False
            )
        if result.returncode:
            raise RuntimeError(f"{name} failed (exit {result.returncode}); see {self.work / (name + '.log')}")

    def start_worker(self, n: int) -> None:
        name = f"worker{n}"
        self.spawn(
            name,
            [
                str(BIN / "airflow"),
                "celery",
                "worker",
                "--celery-hostname",
                f"{name}@%h",
                "--concurrency",
                str(self.config.worker_concurrency),
                "--without-gossip",
                "--without-mingle",
            ],
            env={"AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(self.ports[f"{name}_logs"])},
        )

    def kill(self, name: str) -> None:
        """SIGKILL a component and every process below it, as a crash of its machine would. Airflow runs each task
        in a process group of its own (the supervisor's ``setpgid``): the group alone would leave tasks running."""
        pids = self.tree_pids(name)
        self._signal(name, signal.SIGKILL)
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.procs[name].wait(timeout=10)

    def _signal(self, name: str, sig: int) -> None:
        proc = self.procs.get(name)
        if proc is None:
            return
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass

    def alive(self) -> dict[str, bool]:
        return {name: proc.poll() is None for name, proc in self.procs.items()}

    def tree_pids(self, name: str) -> list[int]:
        """A component's process and every process below it (task processes in groups of their own included)."""
        children: dict[int, list[int]] = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
        found, todo = [], [self.procs[name].pid]
        while todo:
            pid = todo.pop()
            found.append(pid)
            todo.extend(children.get(pid, []))
        return found

    def tree_rss_mb(self, name: str) -> float:
        """Resident memory of a component and every process below it."""
        total = 0
        for pid in self.tree_pids(name):
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
            except (OSError, ValueError, IndexError):
                continue
        return total / 1024

    # -- environment -------------------------------------------------------------------------
    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['api']}"

    @property
    def amazon_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['amazon']}"

    @property
    def commerce_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['commerce']}"

    def pg_url(self, database: str, driver: str = "postgresql+psycopg2") -> str:
        base = self.config.pg_admin_url.rsplit("/", 1)[0].split("://", 1)[1]
        return f"{driver}://{base}/{database}"

    def env(self) -> dict[str, str]:
        c, s = self.config, self.secrets
        amazon_conn = {
            "conn_type": "amazon_sp_api",  # the package's connection type (provider_info.py)
            "host": self.amazon_url,
            "login": s["lwa_client_id"],
            "password": s["lwa_client_secret"],
            "extra": {
                "refresh_token": s["lwa_refresh_token"],
                "lwa_endpoint": f"{self.amazon_url}/auth/o2/token",
                "rate_scale": c.amazon_speed,
            },
        }
        commerce_conn = {
            "conn_type": "adobe_commerce",
            "host": self.commerce_url,
            "login": "admin",
            "password": s["commerce_password"],
            "extra": {"store_code": "default", "auth": "admin"},
        }
        settings = {
            "accounts": [
                {
                    "account_id": ACCOUNT_ID,
                    "merchant_id": MERCHANT_ID,
                    "marketplace_ids": MARKETPLACES,
                    "import_orders_after": c.import_orders_after.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "concurrency": 4,
                }
            ]
        }
        metadata = self.pg_url(self.databases["airflow"])
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "SALES_CHANNEL_", "ACS_"))},
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'include'}",
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata,
            "AIRFLOW__CELERY__BROKER_URL": c.redis_url,
            "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + self.pg_url(self.databases["airflow"], "postgresql"),
            "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(c.worker_concurrency),
            "AIRFLOW__CORE__FERNET_KEY": _fernet_key(self.work),
            "AIRFLOW__API_AUTH__JWT_SECRET": _kept_secret(self.work, "jwt"),
            "AIRFLOW__API__SECRET_KEY": _kept_secret(self.work, "api"),
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__API__PORT": str(self.ports["api"]),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.api_url}/execution/",
            "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(self.ports["triggerer_logs"]),
            "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
            "AIRFLOW_CONN_AMAZON_SP_API": json.dumps(amazon_conn),
            "AIRFLOW_CONN_COMMERCE": json.dumps(commerce_conn),
            "AIRFLOW_VAR_SALES_CHANNEL_SETTINGS": json.dumps(settings),
            "SALES_CHANNEL_DB_URL": self.pg_url(self.databases["state"]),
            "SALES_CHANNEL_FEED_POKE_SECONDS": str(c.feed_poke_seconds),
            "SALES_CHANNEL_PII_KEYS": _fernet_key(self.work, ".pii.secret"),
        }
        env.update({SCHEDULE_SWITCHES[dag_id]: cron for dag_id, cron in c.schedules.items()})
        env.update(c.extra_env)
        return env

    # -- services ----------------------------------------------------------------------------
    def _admin_connection(self):
        import psycopg2

        conn = psycopg2.connect(self.config.pg_admin_url.replace("postgresql+psycopg2://", "postgresql://"))
        conn.autocommit = True
        return conn

    def _create_databases(self) -> None:
        self._drop_databases()
        self._each_database('CREATE DATABASE "{}"')

    def _drop_databases(self) -> None:
        self._each_database('DROP DATABASE IF EXISTS "{}" WITH (FORCE)')

    def _each_database(self, statement: str) -> None:
        conn = self._admin_connection()
        try:
            with conn.cursor() as cur:
                for database in self.databases.values():
                    cur.execute(statement.format(database))
        finally:
            conn.close()

    def _flush_redis(self) -> None:
        import redis

        client = redis.Redis.from_url(self.config.redis_url, socket_timeout=5)
        client.flushdb()
        client.close()

    def _start_sandboxes(self) -> None:
        c, s = self.config, self.secrets
        amazon = [
            str(BIN / "python"),
            "-m",
            "sandboxes.amazon",
            "--port",
            str(self.ports["amazon"]),
            "--speed",
            str(c.amazon_speed),
            "--seed",
            str(c.amazon_seed),
            "--log-level",
            "warning",
            "--state-file",
            str(self.work / "amazon-sandbox.json"),
            "--finances-v0-removed",  # a leftover Finances v0 call fails, as after Amazon's removal
        ]
        if c.amazon_live:
            amazon += ["--live", "--live-interval", str(c.amazon_live_interval)]
        self.spawn(
            "amazon-sandbox",
            amazon,
            env={
                "AMAZON_SANDBOX_CLIENT_ID": s["lwa_client_id"],
                "AMAZON_SANDBOX_CLIENT_SECRET": s["lwa_client_secret"],
                "AMAZON_SANDBOX_REFRESH_TOKEN": s["lwa_refresh_token"],
            },
        )
        self.spawn(
            "commerce-sandbox",
            [
                str(BIN / "python"),
                "-m",
                "sandboxes.commerce",
                "--port",
                str(self.ports["commerce"]),
                "--log-level",
                "warning",
                "--state-file",
                str(self.work / "commerce-sandbox.json"),
            ],
            env={"COMMERCE_SANDBOX_ADMIN_PASSWORD": s["commerce_password"]},
        )
        self._wait_url(f"{self.amazon_url}/_sandbox/health", "amazon-sandbox")
        self._wait_url(f"{self.commerce_url}/_sandbox/stats", "commerce-sandbox")
        from sandboxes.amazon.generator import CATALOG

        self.commerce(
            "POST",
            "/_sandbox/products",
            json={
                "products": [
                    {"sku": p["sku"], "name": p["name"], "price": str(p["price"]), "status": 1, "qty": 100_000}
                    for p in CATALOG
                ]
            },
        )

    def _wait_url(self, url: str, name: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.procs[name].poll() is not None:
                raise RuntimeError(f"{name} exited; see {self.work / (name + '.log')}")
            try:
                if requests.get(url, timeout=2).ok:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"{name} did not answer within {timeout:.0f} s")

    def wait_healthy(self, timeout: float = 300) -> None:
        """Until the API server reports the metadata DB, scheduler, triggerer and dag-processor healthy."""
        deadline = time.monotonic() + timeout
        body: Any = None
        while time.monotonic() < deadline:
            dead = [n for n, ok in self.alive().items() if not ok]
            if dead:
                raise RuntimeError(f"exited during start-up: {dead}; see the logs in {self.work}")
            try:
                body = requests.get(f"{self.api_url}/api/v2/monitor/health", timeout=5).json()
                if all(
                    (body.get(k) or {}).get("status") == "healthy"
                    for k in ("metadatabase", "scheduler", "triggerer", "dag_processor")
                ):
                    return
            except (requests.RequestException, ValueError):
                pass
            time.sleep(1)
        raise RuntimeError(f"cluster not healthy within {timeout:.0f} s: {body}")

    def wait_for_dags(self, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        missing: list[str] = list(DAG_IDS)
        while time.monotonic() < deadline:
            errors = self.api("GET", "/api/v2/importErrors")
            if errors["total_entries"]:
                raise RuntimeError(f"DAG import errors: {[e['filename'] for e in errors['import_errors']]}")
            missing = [d for d in DAG_IDS if self.api("GET", f"/api/v2/dags/{d}", ok=(200, 404)) is None]
            if not missing:
                return
            time.sleep(2)
        raise RuntimeError(f"DAGs not parsed within {timeout:.0f} s: {missing}")

    # -- Airflow's REST API ------------------------------------------------------------------
    def token(self) -> str:
        if self._token is None:
            response = requests.post(
                f"{self.api_url}/auth/token",
                json={"username": "admin", "password": self.secrets["ui_password"]},
                timeout=30,
            )
            response.raise_for_status()
            self._token = response.json()["access_token"]
        return self._token

    def api(self, method: str, path: str, *, ok: tuple[int, ...] = (200, 201), **kw) -> Any:
        for attempt in range(5):
            try:
                response = requests.request(
                    method, self.api_url + path, timeout=60, headers={"Authorization": f"Bearer {self.token()}"}, **kw
                )
            except requests.ConnectionError:
                if attempt == 4:
                    raise
                time.sleep(2)
                continue
            if response.status_code == 401 and attempt < 4:
                self._token = None
                continue
            if response.status_code not in ok:
                raise RuntimeError(f"{method} {path}: {response.status_code} {response.text[:500]}")
            return response.json() if response.status_code < 300 and response.content else None
        raise AssertionError("unreachable")

    def api_page(self, path: str) -> str:
        """A page of the API server (e.g. a plugin's) for the signed-in admin."""
        response = requests.get(self.api_url + path, headers={"Authorization": f"Bearer {self.token()}"}, timeout=60)
        response.raise_for_status()
        return response.text

    def unpause(self, *dag_ids: str) -> None:
        for dag_id in dag_ids:
            self.api("PATCH", f"/api/v2/dags/{dag_id}", json={"is_paused": False})

    def trigger(self, dag_id: str, conf: dict[str, Any] | None = None) -> str:
        run = self.api("POST", f"/api/v2/dags/{dag_id}/dagRuns", json={"logical_date": None, "conf": conf or {}})
        return run["dag_run_id"]

    def wait_runs(self, runs: list[tuple[str, str]], timeout: float = 600) -> dict[tuple[str, str], str]:
        """Wait until every (dag_id, run_id) ended; returns their states."""
        deadline = time.monotonic() + timeout
        states: dict[tuple[str, str], str] = {}
        while time.monotonic() < deadline:
            for dag_id, run_id in runs:
                if states.get((dag_id, run_id)) not in TERMINAL:
                    states[(dag_id, run_id)] = self.api("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")["state"]
            if all(s in TERMINAL for s in states.values()):
                return states
            time.sleep(2)
        raise TimeoutError(f"runs still going after {timeout:.0f} s: {states}")

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        return self.api("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances")["task_instances"]

    def dag_runs(self, dag_id: str) -> list[dict[str, Any]]:
        return self.api("GET", f"/api/v2/dags/{dag_id}/dagRuns", params={"limit": 1000})["dag_runs"]

    # -- the sandboxes' admin APIs -----------------------------------------------------------
    def amazon(self, method: str, path: str, **kw) -> Any:
        response = requests.request(method, self.amazon_url + path, timeout=60, **kw)
        response.raise_for_status()
        return response.json() if response.content else None

    def commerce(self, method: str, path: str, **kw) -> Any:
        response = requests.request(method, self.commerce_url + path, timeout=60, **kw)
        response.raise_for_status()
        return response.json() if response.content else None

    def commerce_rest(self, method: str, path: str, **kw) -> Any:
        """Commerce's admin REST API, as a merchant's back office would call it (never faulted: the back office
        is not the integration under test)."""
        base = f"{self.commerce_url}/rest/default"
        exempt = {"X-Sandbox-No-Faults": "1"}
        token = requests.post(
            f"{base}/V1/integration/admin/token",
            timeout=30,
            headers=exempt,
            json={"username": "admin", "password": self.secrets["commerce_password"]},
        ).json()
        response = requests.request(
            method, base + path, headers={"Authorization": f"Bearer {token}", **exempt}, timeout=60, **kw
        )
        response.raise_for_status()
        return response.json() if response.content else None

    def worker_task_counts(self) -> dict[str, int]:
        """Tasks each Celery worker received (from its log): how the work spread."""
        counts = {}
        for n in range(1, self.config.workers + 1):
            path = self.work / f"worker{n}.log"
            text = path.read_text(errors="replace") if path.exists() else ""
            counts[f"worker{n}"] = sum(
                1 for line in text.splitlines() if "execute_workload" in line and " received" in line
            )
        return counts


def _kept_secret(work: Path, name: str) -> str:
    """One random secret per cluster, the same for every process (JWTs signed by one are checked by another)."""
    path = work / f".{name}.secret"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(32))
        path.chmod(0o600)
    return path.read_text()


def _fernet_key(work: Path, name: str = ".fernet.secret") -> str:
    path = work / name
    if not path.exists():
        from cryptography.fernet import Fernet

        path.write_text(Fernet.generate_key().decode())
        path.chmod(0o600)
    return path.read_text()
