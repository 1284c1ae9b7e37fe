"""
### Amazon order import

Extracts new and changed Amazon orders (SP-API Orders 2026-01-01 `searchOrders` by
`lastUpdatedAfter`), stages them in the state store page by page, and loads them into
Adobe Commerce following the Amazon Sales Channel's rules: pending orders wait for
payment, merchant-fulfilled orders are created when unshipped or shipped, Amazon-fulfilled
orders once shipped, orders with missing/disabled/out-of-stock products wait, malformed
orders are quarantined. Every write is looked up by its natural key first, so reruns
never duplicate anything.

One mapped task group per Amazon account in the settings (`account.extract` then
`account.load`, each instance named by its account): N accounts, N extracts and N loads, and an
account's load waits only for its own extraction. Each run covers Amazon's changes up to its
logical time (`run_after`) minus 2 minutes, so a rerun covers the same window.
Manual trigger with `backfill_from` / `backfill_to` re-reads a date range through the same path;
`redrive_quarantined` (Amazon order ids, or `["all"]`) retries quarantined orders after a fix.
A buyer's cancellation request puts the Commerce order on hold; **decision_requests** then triggers one
`amazon_buyer_cancel_decision` run per request (**request_decision**, run id
`buyer_request__<account>__<order>`: an existing run is left alone), where a person chooses Cancel or Keep.
Schedule: `SALES_CHANNEL_IMPORT_SCHEDULE`; by default every 5 minutes, or every 15 when the event-driven import
is on (`SALES_CHANNEL_ORDER_CHANGE_QUEUE_URL` set: `amazon_order_events` brings orders in seconds, this run is
the reconciling sweep that guarantees nothing is lost).
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import Param, dag, task, task_group

from amazon_commerce_sync.constants import AMAZON_ORDER_ID_PATTERN, DAG_ORDER_IMPORT
from amazon_commerce_sync.dag_after_loads import after_loads
from amazon_commerce_sync.dag_defaults import (
    ACCOUNT_MAP_INDEX,
    account_param,
    environment_schedule,
    import_schedule_default,
    string_matching,
    task_defaults,
)


@dag(
    dag_id=DAG_ORDER_IMPORT,
    description="Import new and changed Amazon orders into Adobe Commerce, per account.",
    doc_md=__doc__,
    schedule=environment_schedule("SALES_CHANNEL_IMPORT_SCHEDULE", import_schedule_default()),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["sales-channel", "amazon", "commerce"],
    default_args=task_defaults(retries=3, execution_timeout=timedelta(minutes=30), exponential_backoff=True),
    params={
        "account_id": account_param(),
        "backfill_from": Param(
            None,
            type=["null", "string"],
            format="date-time",
            title="Backfill from",
            description="Backfill: re-read orders updated from this time (ISO 8601).",
        ),
        "backfill_to": Param(
            None,
            type=["null", "string"],
            format="date-time",
            title="Backfill to",
            description="Backfill: up to this time (default: the run's time minus 2 minutes).",
        ),
        "redrive_quarantined": Param(
            [],
            type="array",
            items={
                "type": "string",
                **string_matching(
                    f"^all$|{AMAZON_ORDER_ID_PATTERN}", "an Amazon order id like 123-1234567-1234567, or all"
                ),
            },
            maxItems=500,
            title="Re-drive quarantined orders",
            description='Re-drive quarantined orders after a fix: Amazon order ids, or ["all"].',
        ),
    },
)
def amazon_order_import():
    @task
    def accounts(params=None) -> list[str]:
        from amazon_commerce_sync.pipelines import tasks

        return tasks.list_accounts(params.get("account_id"))

    @task(max_active_tis_per_dagrun=2, map_index_template=ACCOUNT_MAP_INDEX)
    def extract(account_id: str, params=None, run_id=None, dag_run=None) -> dict:
        from amazon_commerce_sync.pipelines import tasks

        return tasks.extract_orders(account_id, run_id, params, run_after=dag_run.run_after)

    @task(max_active_tis_per_dagrun=2, map_index_template=ACCOUNT_MAP_INDEX)
    def load(account_id: str, extracted: dict, params=None, run_id=None) -> dict:
        from amazon_commerce_sync.pipelines import tasks

        return tasks.load_orders(account_id, run_id, params)

    @task_group
    def account(account_id: str) -> dict:
        """One Amazon account: extract, then load what was staged (keyword arguments: see ACCOUNT_MAP_INDEX)."""
        return load(account_id=account_id, extracted=extract(account_id=account_id))

    after_loads(account.expand(account_id=accounts()))


amazon_order_import()
