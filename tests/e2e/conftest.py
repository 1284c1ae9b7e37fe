"""End-to-end harness: both sandboxes on loopback, Airflow connections and settings pointing at them,
a fresh state store, and ``run_dag`` to run a DAG file with ``dag.test()``.

``dag.test()`` logs task exceptions instead of raising them: ``run_dag`` returns the run's
task states so tests assert on them (and on what the sandboxes then hold).
"""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

DAGS = Path(__file__).resolve().parents[2] / "dags"
IMPORT_AFTER = "2026-01-01T00:00:00Z"


class SalesChannel:
    """Handles on the running sandboxes, the state store and the DAGs for one test."""

    def __init__(self, amazon_url: str, amazon_app, commerce_url: str, commerce_app, store, settings_path: Path):
        self.amazon_url = amazon_url
        self.amazon_app = amazon_app
        self.commerce_url = commerce_url
        self.commerce_app = commerce_app
        self.store = store
        self.settings_path = settings_path

    # -- Amazon side --------------------------------------------------------------------------
    def amazon(self, method: str, path: str, **kw) -> Any:
        response = requests.request(method, self.amazon_url + path, timeout=30, **kw)
        response.raise_for_status()
        return response.json() if response.content else None

    def load_amazon_orders(self, orders: list[dict[str, Any]]) -> list[str]:
        self.amazon("POST", "/_sandbox/orders", json={"orders": orders})
        return [o["orderId"] for o in orders]

    def generated_orders(self, count: int, *, seed: int = 11, age: timedelta = timedelta(minutes=30), **kw):
        """Orders from the sandbox's generator, last updated ``age`` ago (so they are past the 2-minute rule)."""
        from sandboxes.amazon.generator import generate_orders

        when = (datetime.now(UTC) - age).timestamp()
        return generate_orders(seed, count, when, **kw)

    def amazon_order(self, order_id: str) -> dict[str, Any]:
        return self.amazon("GET", f"/_sandbox/orders/{order_id}")["order"]

    def amazon_event(
        self,
        order_id: str,
        event: dict[str, Any],
        *,
        age: timedelta = timedelta(minutes=5),
        same_second: bool = False,
    ) -> Any:
        """Apply an Amazon-side event, then date it ``age`` back so it is past Amazon's 2-minute rule; with
        ``same_second``, keep the order's lastUpdatedTime instead (a second change within the same second:
        Amazon's times are to the second, so the two versions carry the same lastUpdatedTime)."""
        before = self.amazon_order(order_id)["lastUpdatedTime"] if same_second else None
        result = self.amazon("POST", f"/_sandbox/orders/{order_id}/events", json=event)
        if age or same_second:
            order = self.amazon_order(order_id)
            when = datetime.now(UTC) - age
            order["lastUpdatedTime"] = before or when.strftime("%Y-%m-%dT%H:%M:%SZ")
            self.load_amazon_orders([order])
        return result

    # -- Commerce side ------------------------------------------------------------------------
    def commerce(self, method: str, path: str, **kw) -> Any:
        response = requests.request(method, self.commerce_url + path, timeout=30, **kw)
        response.raise_for_status()
        return response.json() if response.content else None

    def commerce_orders(self) -> list[dict[str, Any]]:
        body = self.commerce("GET", "/_sandbox/orders")
        return body["items"]

    def commerce_orders_by_amazon_id(self) -> dict[str, list[dict[str, Any]]]:
        out: dict[str, list[dict[str, Any]]] = {}
        for order in self.commerce_orders():
            out.setdefault(order.get("ext_order_id"), []).append(order)
        return out

    def seed_products(self, products: list[dict[str, Any]]) -> None:
        self.commerce("POST", "/_sandbox/products", json={"products": products})

    def commerce_faults(self, **faults) -> None:
        self.commerce("POST", "/_sandbox/faults", json=faults)

    def amazon_faults(self, **faults) -> None:
        self.amazon("POST", "/_sandbox/faults", json=faults)

    # -- settings and DAGs --------------------------------------------------------------------
    def configure(self, **account) -> None:
        base = {
            "account_id": "us-main",
            "marketplace_ids": ["ATVPDKIKX0DER", "A2EUQ1WTGCTBG2"],
            "import_orders_after": IMPORT_AFTER,
            "concurrency": 2,
        }
        self.settings_path.write_text(json.dumps({"accounts": [{**base, **account}]}))

    def run_dag(self, dag_id: str, conf: dict[str, Any] | None = None) -> dict[str, str]:
        """Run a DAG file once with ``dag.test()``; returns ``{task_id[map_index]: state}``."""
        from airflow.dag_processing.dagbag import DagBag

        dag = DagBag(dag_folder=str(DAGS / f"{dag_id}.py")).dags[dag_id]
        for task in dag.tasks:
            task.retries = 0  # a test sees the first failure instead of waiting for retry_delay
        run = dag.test(
            run_conf=conf, logical_date=datetime.now(UTC) + timedelta(microseconds=time.monotonic_ns() % 10**6)
        )
        states = {}
        for ti in run.get_task_instances():
            key = ti.task_id if ti.map_index < 0 else f"{ti.task_id}[{ti.map_index}]"
            states[key] = ti.state
        self.last_run = run
        return states


def seed_catalog(channel: SalesChannel, qty: int = 1000) -> None:
    from sandboxes.amazon.generator import CATALOG

    channel.seed_products(
        [{"sku": p["sku"], "name": p["name"], "price": str(p["price"]), "status": 1, "qty": qty} for p in CATALOG]
    )


@pytest.fixture
def channel(airflow_db, amazon_sandbox, commerce_sandbox, tmp_path, monkeypatch, request):
    """The integration wired to fresh sandboxes and a fresh SQLite state store."""
    from amazon_commerce_sync.store import StateStore
    from amazon_commerce_sync.store.db import get_engine, migrate

    amazon_url, amazon_app = amazon_sandbox
    commerce_url, commerce_app = commerce_sandbox
    amazon_conn = {
        "conn_type": "http",
        "host": amazon_url,
        "login": "sandbox-client-id",
        "password": "sandbox-client-secret",
        "extra": {
            "refresh_token": "sandbox-refresh-token",
            "lwa_endpoint": f"{amazon_url}/auth/o2/token",
            "rate_scale": 100,
        },
    }
    commerce_conn = {
        "conn_type": "http",
        "host": commerce_url,
        "login": "admin",
        "password": "sandbox-admin-password",
        "extra": {"store_code": "default", "auth": "admin"},
    }
    monkeypatch.setenv("AIRFLOW_CONN_AMAZON_SP_API", json.dumps(amazon_conn))
    monkeypatch.setenv("AIRFLOW_CONN_COMMERCE", json.dumps(commerce_conn))
    db_url = f"sqlite:///{tmp_path / 'state.db'}"
    monkeypatch.setenv("SALES_CHANNEL_DB_URL", db_url)
    settings_path = tmp_path / "settings.json"
    monkeypatch.setenv("SALES_CHANNEL_SETTINGS_FILE", str(settings_path))
    engine = get_engine(db_url)
    migrate(engine)
    channel = SalesChannel(amazon_url, amazon_app, commerce_url, commerce_app, StateStore(engine), settings_path)
    channel.configure()
    seed_catalog(channel)
    return channel


@pytest.fixture
def debug_logs(caplog):
    """Every log record at DEBUG, from the test and the tasks ``dag.test()`` runs in-process.

    Airflow replaces the root logger's handlers and level when it configures its logging (once, on
    import), which would drop pytest's capture handler and everything below INFO: configure it
    first, then put the capture handler back and lower the level before each run.
    """
    import airflow.settings  # noqa: F401 - configures Airflow's logging now, not in the middle of the test

    root = logging.getLogger()
    level = root.level

    def attach() -> None:
        if caplog.handler not in root.handlers:
            root.addHandler(caplog.handler)
        caplog.handler.setLevel(logging.DEBUG)
        root.setLevel(logging.DEBUG)

    attach()
    yield attach
    root.removeHandler(caplog.handler)
    root.setLevel(level)
