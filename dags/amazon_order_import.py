"""
### Amazon order import

Extracts new and changed Amazon orders (SP-API Orders 2026-01-01 `searchOrders` by
`lastUpdatedAfter`), stages them in the state store page by page, and loads them into
Adobe Commerce following the Amazon Sales Channel's rules: pending orders wait for
payment, merchant-fulfilled orders are created when unshipped or shipped, Amazon-fulfilled
orders once shipped, orders with missing/disabled/out-of-stock products wait, malformed
orders are quarantined. Every write is looked up by its natural key first, so reruns
never duplicate anything.

One mapped task per Amazon account in the `sales_channel_settings` Variable.
Manual trigger with `backfill_from` / `backfill_to` re-reads a date range through the same path;
`redrive_quarantined` (Amazon order ids, or `["all"]`) retries quarantined orders after a fix.
Schedule: `SALES_CHANNEL_IMPORT_SCHEDULE` (default every 5 minutes).
"""

from __future__ import annotations

import logging
from datetime import timedelta

import pendulum
from airflow.sdk import Asset, Param, dag, task

from amazon_commerce_sync.constants import ASSET_COMMERCE_ORDERS, DAG_ORDER_IMPORT
from amazon_commerce_sync.dag_defaults import task_defaults
from amazon_commerce_sync.pipelines.tasks import environment_schedule

COMMERCE_ORDERS = Asset(ASSET_COMMERCE_ORDERS)


@dag(
    dag_id=DAG_ORDER_IMPORT,
    doc_md=__doc__,
    schedule=environment_schedule("SALES_CHANNEL_IMPORT_SCHEDULE", "*/5 * * * *"),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["sales-channel", "amazon", "commerce"],
    default_args=task_defaults(retries=3, execution_timeout=timedelta(minutes=30), exponential_backoff=True),
    params={
        "account_id": Param(None, type=["null", "string"], description="Only this account (default: all)."),
        "backfill_from": Param(
            None,
            type=["null", "string"],
            format="date-time",
            description="Backfill: re-read orders updated from this time (ISO 8601).",
        ),
        "backfill_to": Param(
            None,
            type=["null", "string"],
            format="date-time",
            description="Backfill: up to this time (default: now minus 2 minutes).",
        ),
        "redrive_quarantined": Param(
            [],
            type="array",
            items={"type": "string", "pattern": r"^(all|\d{3}-\d{7}-\d{7})$"},
            maxItems=500,
            description='Re-drive quarantined orders after a fix: Amazon order ids, or ["all"].',
        ),
    },  # fmt: skip
)
def amazon_order_import():
    @task
    def accounts(params=None) -> list[str]:
        from amazon_commerce_sync.pipelines import tasks

        return tasks.list_accounts(params.get("account_id"))

    @task(max_active_tis_per_dagrun=2)
    def extract(account_id: str, params=None, run_id=None) -> dict:
        from amazon_commerce_sync.pipelines import tasks

        return tasks.extract_orders(account_id, run_id, params)

    @task(max_active_tis_per_dagrun=2)
    def load(account_id: str, extracted: dict, params=None, run_id=None) -> dict:
        from amazon_commerce_sync.pipelines import tasks

        return tasks.load_orders(account_id, run_id, params)

    @task.short_circuit(ignore_downstream_trigger_rules=False)
    def anything_changed(summaries: list[dict]) -> bool:
        changed = sum(s.get("created", 0) + s.get("updated", 0) + s.get("cancelled", 0) + s.get("on_hold", 0)
                      for s in summaries)  # fmt: skip
        logging.getLogger(__name__).info("Commerce orders created or changed: %d", changed)
        return changed > 0

    @task(outlets=[COMMERCE_ORDERS])
    def announce() -> None:
        """Emits the Commerce-orders asset (the shipment sync listens to it)."""

    account_ids = accounts()
    extracted = extract.expand(account_id=account_ids)
    loaded = load.expand(account_id=account_ids, extracted=extracted)
    anything_changed(loaded) >> announce()


amazon_order_import()
