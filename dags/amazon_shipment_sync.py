"""
### Amazon shipment sync

Keeps shipments in step between Adobe Commerce and Amazon after an order was imported:

- **Commerce → Amazon**: shipments made in Commerce for merchant-fulfilled Amazon orders (a
  persisted cursor, with overlap, over `GET /V1/shipments`) are confirmed with `confirmShipment`,
  one package per Commerce shipment (its items and quantities, tracking number, carrier mapped
  through the account's `carrier_map`; unknown carriers go as `Other` with `carrierName`). Each
  confirmation is an outbox entry keyed `shipment:<Commerce shipment id>`: sent once; a 4xx is
  recorded as rejected with Amazon's message; a 429/5xx is retried on the next run, after checking
  on Amazon whether the unanswered attempt landed. The order is then read back from Amazon;
  an order still unshipped `mismatch_grace_minutes` after a confirmation is reported as a mismatch.
- **Amazon → Commerce**: imported orders shipped on Amazon's side (FBA or Seller Central) get the
  Commerce shipments they lack, with Amazon's tracking.

Shipments of non-Amazon orders are ignored; those of orders not imported yet are held in the outbox
(`waiting`) until the order exists. One mapped task per account, named by the account; each returns its summary
(confirmed, rejected, waiting, mirrored, mismatches, ...).

Schedule: `SALES_CHANNEL_SHIPMENT_SCHEDULE` (cron, default every 10 minutes), and also whenever the
import announces new or changed Commerce orders (asset `x-sales-channel://commerce/orders`).
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import Asset, AssetOrTimeSchedule, CronTriggerTimetable, Param, dag, task

from amazon_commerce_sync.constants import ASSET_COMMERCE_ORDERS, DAG_SHIPMENT_SYNC
from amazon_commerce_sync.dag_defaults import (
    ACCOUNT_MAP_INDEX,
    account_param,
    environment_schedule,
    task_defaults,
)

COMMERCE_ORDERS = Asset(ASSET_COMMERCE_ORDERS)
CRON = environment_schedule("SALES_CHANNEL_SHIPMENT_SCHEDULE", "*/10 * * * *")


@dag(
    dag_id=DAG_SHIPMENT_SYNC,
    description="Shipments both ways: Commerce shipments confirmed on Amazon, Amazon's mirrored in Commerce.",
    doc_md=__doc__,
    schedule=AssetOrTimeSchedule(timetable=CronTriggerTimetable(CRON, timezone="UTC"), assets=[COMMERCE_ORDERS])
    if CRON
    else [COMMERCE_ORDERS],
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["sales-channel", "amazon", "commerce"],
    default_args=task_defaults(retries=3, execution_timeout=timedelta(minutes=30), exponential_backoff=True),
    params={
        "account_id": account_param(),
        "mismatch_grace_minutes": Param(
            15,
            type="integer",
            minimum=0,
            title="Mismatch grace (minutes)",
            description="Report an order that Amazon still shows unshipped this long after a confirmation.",
        ),
    },
)
def amazon_shipment_sync():
    @task
    def accounts(params=None) -> list[str]:
        from amazon_commerce_sync.pipelines import tasks

        return tasks.list_accounts(params.get("account_id"))

    @task(max_active_tis_per_dagrun=2, map_index_template=ACCOUNT_MAP_INDEX)
    def sync(account_id: str, params=None, run_id=None, dag_run=None) -> dict:
        """Mirror Amazon's shipments, confirm Commerce's, verify on Amazon; returns the account's counts."""
        from amazon_commerce_sync.pipelines import tasks

        return tasks.sync_shipments(account_id, run_id, params, run_after=dag_run.run_after)

    sync.expand(account_id=accounts())


amazon_shipment_sync()
