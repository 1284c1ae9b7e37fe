"""How Airflow runs the Sales Channel tasks, end to end with ``dag.test()`` against the sandboxes.

- Fatal means fail now: a ``FatalError`` (here an authentication error), a ``SettingsError`` or a
  ``StateStoreConfigError`` fails the
  task on its first try although it has retries (the retry policy of ``dag_defaults``); anything else is
  retried. ``dag.test()`` logs task failures instead of raising them: the tests read each task instance's
  state and try number.
- A run covers what its ``run_after`` says, so running the same run again covers the same window.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

DAGS = Path(__file__).resolve().parents[2] / "dags"

pytestmark = pytest.mark.e2e

US = "ATVPDKIKX0DER"
RETRIES = 2


def run(dag_id: str, *, retries: int = RETRIES, run_after: datetime | None = None, conf=None):
    """Run a DAG file once, its tasks retried at once (no delay); returns (run, {task[map index]: (state, try)})."""
    from airflow.dag_processing.dagbag import DagBag

    dag = DagBag(dag_folder=str(DAGS / f"{dag_id}.py")).dags[dag_id]
    for task in dag.tasks:
        task.retries = retries
        task.retry_delay = timedelta(0)
        task.retry_exponential_backoff = False
    run_after = run_after or datetime.now(UTC)
    dag_run = dag.test(run_after=run_after, logical_date=run_after, run_conf=conf)
    outcome = {}
    for ti in dag_run.get_task_instances():
        key = ti.task_id if ti.map_index < 0 else f"{ti.task_id}[{ti.map_index}]"
        outcome[key] = (ti.state, ti.try_number)
    return dag_run, outcome


def failure_alerts(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("SALES CHANNEL ALERT [task_failed]")]


# -- fatal means fail now --------------------------------------------------------------------------------
def test_an_amazon_authentication_error_fails_extract_on_the_first_try(channel, monkeypatch, caplog, debug_logs):
    from airflow.sdk import BaseHook

    channel.load_amazon_orders(channel.generated_orders(2, seed=5, status="UNSHIPPED", fulfilled_by="MERCHANT"))
    amazon = json.loads(BaseHook.get_connection("amazon_sp_api").as_json())
    monkeypatch.setenv("AIRFLOW_CONN_AMAZON_SP_API", json.dumps({**amazon, "password": "not-the-client-secret"}))

    _, outcome = run("amazon_order_import")

    assert outcome["account.extract[0]"] == ("failed", 1)  # not retried although retries=2
    assert outcome["account.load[0]"][0] == "upstream_failed"
    [alert] = failure_alerts(caplog)
    assert "account=us-main: amazon_order_import.account.extract[0] failed" in alert
    assert "AuthenticationError: " in alert and "This failure is not retried" in alert
    assert "amazon_order_import extract for account us-main stopped without retrying" in alert
    assert "check the connections 'amazon_sp_api' (Amazon) and 'commerce' (Commerce)" in alert
    assert "not-the-client-secret" not in caplog.text


def test_a_commerce_authentication_error_fails_load_on_the_first_try(channel, monkeypatch):
    from airflow.sdk import BaseHook

    orders = channel.generated_orders(2, seed=6, status="UNSHIPPED", fulfilled_by="MERCHANT")
    channel.load_amazon_orders(orders)
    commerce = json.loads(BaseHook.get_connection("commerce").as_json())
    monkeypatch.setenv("AIRFLOW_CONN_COMMERCE", json.dumps({**commerce, "password": "not-the-admin-password"}))

    _, outcome = run("amazon_order_import")

    assert outcome["account.extract[0]"] == ("success", 1)
    assert outcome["account.load[0]"] == ("failed", 1)
    assert channel.commerce_orders() == []
    assert {channel.store.orders.get(o["orderId"])["sync_status"] for o in orders} != {"quarantined"}


def test_a_busy_amazon_is_retried_by_airflow(channel):
    channel.load_amazon_orders(channel.generated_orders(1, seed=7, status="UNSHIPPED", fulfilled_by="MERCHANT"))
    channel.amazon_faults(error_rate=1.0, error_statuses=[503], operations=["searchOrders"])

    _, outcome = run("amazon_order_import")

    assert outcome["account.extract[0]"] == ("failed", RETRIES + 1)  # every try: the hook's retries, then Airflow's


@pytest.mark.parametrize(("dag_id", "task_id"), [("amazon_pii_retention", "erase"), ("sales_channel_monitor", "check")])
def test_invalid_settings_fail_on_the_first_try_and_a_state_store_outage_is_retried(
    channel, monkeypatch, dag_id, task_id
):
    channel.settings_path.write_text('{"accounts": [{"account_id": "us-main", "page_size": 500}]}')
    _, outcome = run(dag_id)
    assert outcome[task_id] == ("failed", 1)

    channel.configure()
    monkeypatch.setenv("SALES_CHANNEL_DB_URL", "postgresql+psycopg2://postgres@127.0.0.1:1/nowhere")  # refused
    _, outcome = run(dag_id)
    assert set(outcome.values()) == {("failed", RETRIES + 1)}  # the key rotation too

    # a sales_channel_db connection that exists but is not a database connection: fail now, never fall back
    monkeypatch.setenv("AIRFLOW_CONN_SALES_CHANNEL_DB", json.dumps({"conn_type": "http", "host": "db.example"}))
    _, outcome = run(dag_id)
    assert set(outcome.values()) == {("failed", 1)}


# -- windows from run_after ----------------------------------------------------------------------------------
def cursor(channel) -> Any:
    """The extraction cursor of us-main's marketplaces (Amazon.com and .ca: Amazon's NA region)."""
    return channel.store.ops.get_cursor("orders:us-main:NA")


def search_calls(channel) -> int:
    return channel.amazon("GET", "/_sandbox/stats")["operations"].get("searchOrders", {}).get("requests", 0)


def test_the_same_run_again_covers_the_same_window(channel):
    run_after = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)
    early = channel.generated_orders(2, seed=31, status="UNSHIPPED", fulfilled_by="MERCHANT", age=timedelta(minutes=30))
    channel.load_amazon_orders(early)

    first, outcome = run("amazon_order_import", run_after=run_after)
    assert outcome["account.load[0]"] == ("success", 1)
    window_end = run_after - timedelta(minutes=2)  # Amazon's 2-minute rule, from the run's time
    assert cursor(channel) == window_end
    assert search_calls(channel) == 1  # both marketplaces in one searchOrders window

    # Amazon changes an order after the run's window: the same run, run again, does not see it.
    late = channel.generated_orders(1, seed=32, status="UNSHIPPED", fulfilled_by="MERCHANT")
    changed = datetime.now(UTC) - timedelta(minutes=5)  # after the window, before the next run's
    late[0]["createdTime"] = late[0]["lastUpdatedTime"] = changed.strftime("%Y-%m-%dT%H:%M:%SZ")
    channel.load_amazon_orders(late)
    again, outcome = run("amazon_order_import", run_after=run_after)
    assert again.run_id == first.run_id and outcome["account.extract[0]"] == ("success", 1)
    assert cursor(channel) == window_end
    assert set(channel.commerce_orders_by_amazon_id()) == {o["orderId"] for o in early}

    # The next run covers up to its own time.
    _, outcome = run("amazon_order_import")
    assert outcome["account.load[0]"] == ("success", 1)
    by_id = channel.commerce_orders_by_amazon_id()
    assert {k: len(v) for k, v in by_id.items()} == {o["orderId"]: 1 for o in early + late}
