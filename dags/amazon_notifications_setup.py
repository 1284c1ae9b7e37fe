"""
### Amazon notifications set-up (event-driven import)

Creates, once, what Amazon needs to deliver `ORDER_CHANGE` notifications to our SQS queue: the application's
SQS destination (Notifications API, grantless) and each account's `ORDER_CHANGE` subscription (payload 1.0,
`orderChangeTypes` OrderStatusChange and BuyerRequestedChange). Re-running changes nothing; the run's result
(XCom) reports the destination and each subscription and whether anything was created.

The queue: param `queue_url`, else `SALES_CHANNEL_ORDER_CHANGE_QUEUE_URL`; its ARN is read from SQS through the
`sales_channel_sqs` connection. A subscription to another destination or with another filter is left alone
and fails the run (the other accounts are set up; the report is XCom `report`) unless `replace` is set. See
README "Event-driven import".
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import Param, dag, task

from amazon_commerce_sync.constants import DAG_NOTIFICATIONS_SETUP
from amazon_commerce_sync.dag_defaults import account_param, task_defaults


@dag(
    dag_id=DAG_NOTIFICATIONS_SETUP,
    description="Subscribe each account to Amazon's ORDER_CHANGE notifications on our SQS queue (once).",
    doc_md=__doc__,
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["sales-channel", "amazon", "notifications"],
    default_args=task_defaults(retries=1, execution_timeout=timedelta(minutes=10)),
    params={
        "queue_url": Param(
            None,
            title="SQS queue URL",
            type=["null", "string"],
            description="The SQS queue URL (default: SALES_CHANNEL_ORDER_CHANGE_QUEUE_URL).",
        ),
        "account_id": account_param(),
        "replace": Param(
            False,
            title="Replace a different subscription",
            type="boolean",
            description="Replace a subscription to another destination or with another filter.",
        ),
    },
)
def amazon_notifications_setup():
    @task
    def subscribe(params=None, run_id=None) -> dict:
        from amazon_commerce_sync import notifications

        return notifications.setup_task(params, run_id)

    subscribe()


amazon_notifications_setup()
