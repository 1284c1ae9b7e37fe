"""
### Amazon order events (event-driven import)

Amazon publishes an `ORDER_CHANGE` notification to our SQS queue seconds after an order changes. A watcher
(`AssetWatcher` on the queue, Airflow's event-driven scheduling) turns each batch of messages into an event of
the asset `x-sales-channel://amazon/order-change`, which starts a run. The run:

1. `stage`: writes the changed order ids into the state store first (a failed or killed run loses nothing);
   duplicates and older notifications never overwrite a newer one, malformed messages are quarantined with the
   reason, messages for other sellers are ignored and counted;
2. `account.fetch_load` per account: fetches each staged order with `getOrder` under the shared rate limiter
   and loads it through the import's own path (same rules, same exactly-once writes);
3. as after the import's loads: **announce** the Commerce-orders asset when orders were created or changed (the
   shipment sync runs on it), and **request_decision**: one `amazon_buyer_cancel_decision` run per buyer
   cancellation request now on hold.

The watcher exists when `SALES_CHANNEL_ORDER_CHANGE_QUEUE_URL` is set (connection `sales_channel_sqs`). The run
also starts on a schedule (`SALES_CHANNEL_ORDER_EVENTS_SCHEDULE`, default every 10 minutes) to pick up ids a
killed run left. `amazon_order_import` stays the reconciling sweep. Set-up: `amazon_notifications_setup`.
"""

from __future__ import annotations

import os
from datetime import timedelta

import pendulum
from airflow.sdk import Asset, AssetOrTimeSchedule, AssetWatcher, CronTriggerTimetable, dag, task, task_group

from amazon_commerce_sync.constants import ASSET_ORDER_CHANGE, DAG_ORDER_EVENTS, ORDER_CHANGE_QUEUE_ENV
from amazon_commerce_sync.dag_after_loads import after_loads
from amazon_commerce_sync.dag_defaults import ACCOUNT_MAP_INDEX, environment_schedule, task_defaults
from amazon_commerce_sync.events import OrderChangeTrigger

QUEUE_URL = os.environ.get(ORDER_CHANGE_QUEUE_ENV)
ORDER_CHANGE = Asset(
    ASSET_ORDER_CHANGE,
    watchers=[AssetWatcher(name="amazon_order_change_sqs", trigger=OrderChangeTrigger(QUEUE_URL))] if QUEUE_URL else [],
)
CRON = environment_schedule("SALES_CHANNEL_ORDER_EVENTS_SCHEDULE", "*/10 * * * *")


@dag(
    dag_id=DAG_ORDER_EVENTS,
    description="Import the Amazon orders ORDER_CHANGE notifications name, seconds after they change.",
    doc_md=__doc__,
    schedule=AssetOrTimeSchedule(timetable=CronTriggerTimetable(CRON, timezone="UTC"), assets=ORDER_CHANGE)
    if CRON
    else ORDER_CHANGE,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["sales-channel", "amazon", "commerce"],
    default_args=task_defaults(retries=3, execution_timeout=timedelta(minutes=30), exponential_backoff=True),
)
def amazon_order_events():
    @task(inlets=[ORDER_CHANGE])
    def stage(triggering_asset_events=None, inlet_events=None, dag_run=None, run_id=None) -> dict:
        from amazon_commerce_sync.pipelines import order_events, tasks

        later = order_events.later_events(inlet_events, ORDER_CHANGE, dag_run.run_type, dag_run.run_after)
        return tasks.order_events_stage(triggering_asset_events, run_id, later)

    @task
    def accounts() -> list[str]:
        from amazon_commerce_sync.pipelines import tasks

        return tasks.list_accounts()

    @task(inlets=[ORDER_CHANGE], max_active_tis_per_dagrun=2, map_index_template=ACCOUNT_MAP_INDEX)
    def fetch_load(account_id: str, inlet_events=None, dag_run=None, run_id=None) -> dict:
        from amazon_commerce_sync.events import newer_events
        from amazon_commerce_sync.pipelines import tasks

        newer = newer_events(inlet_events, ORDER_CHANGE, dag_run.run_type, dag_run.run_after)
        return tasks.order_events_fetch_load(account_id, run_id, newer)

    @task_group
    def account(account_id: str) -> dict:
        """One Amazon account's staged order ids: fetch and load (keyword arguments: see ACCOUNT_MAP_INDEX)."""
        return fetch_load(account_id=account_id)

    # stage and accounts side by side (one task start less between a notification and its order); every
    # account's fetch waits for the staging. Then what follows the import's loads too: the Commerce-orders asset
    # (the shipment sync) and the decision runs of buyer cancellation requests
    loaded = account.expand(account_id=accounts())
    stage() >> loaded
    after_loads(loaded)


amazon_order_events()
