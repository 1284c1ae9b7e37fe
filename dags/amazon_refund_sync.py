"""
### Amazon refund sync

Keeps refunds in step between Adobe Commerce and Amazon, for orders the import created.

- **settle**: feeds submitted by earlier runs whose processing finished are read (processing
  report) and each adjustment is marked accepted or rejected with Amazon's message. Nothing
  waits for Amazon: a feed still in progress is picked up by a later run.
- **mirror**: refunds issued on Amazon's side (Finances `RefundEventList`, cursor by posted
  date) become offline credit memos on the Commerce order, once, with a comment naming the
  Amazon refund; refunds Commerce itself sent are recognised and not mirrored back.
- **queue**: new Commerce credit memos on Amazon orders (cursor over `/V1/creditmemos`)
  become payment adjustments (Principal, Tax, Shipping, ShippingTax...) in the outbox;
  over-refunds, unknown items and other currencies are rejected with a reason, not sent.
- **submit**: all pending adjustments of an account go to Amazon in ONE
  `POST_PAYMENT_ADJUSTMENT_DATA` feed (createFeed allows very few calls).
- **summary**: the run's counts (sent, accepted, rejected, mirrored, skipped...).

One mapped task per Amazon account and step. Schedule: `SALES_CHANNEL_REFUND_SCHEDULE`
(default every 15 minutes).
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import Param, dag, task

from amazon_commerce_sync.constants import DAG_REFUND_SYNC
from amazon_commerce_sync.dag_defaults import task_defaults
from amazon_commerce_sync.pipelines.tasks import environment_schedule


@dag(
    dag_id=DAG_REFUND_SYNC,
    doc_md=__doc__,
    schedule=environment_schedule("SALES_CHANNEL_REFUND_SCHEDULE", "*/15 * * * *"),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["sales-channel", "amazon", "commerce", "refunds"],
    default_args=task_defaults(retries=3, execution_timeout=timedelta(minutes=30), exponential_backoff=True),
    params={
        "account_id": Param(None, type=["null", "string"], description="Only this account (default: all)."),
    },
)
def amazon_refund_sync():
    @task
    def accounts(params=None) -> list[str]:
        from amazon_commerce_sync.pipelines import tasks

        return tasks.list_accounts(params.get("account_id"))

    @task
    def settle(account_id: str, run_id=None) -> dict:
        """Settle the adjustment feeds earlier runs submitted."""
        from amazon_commerce_sync.pipelines import tasks

        return tasks.refund_step("settle", account_id, run_id)

    @task
    def mirror(account_id: str, run_id=None) -> dict:
        """Amazon-side refunds → offline Commerce credit memos."""
        from amazon_commerce_sync.pipelines import tasks

        return tasks.refund_step("mirror", account_id, run_id)

    @task
    def queue(account_id: str, run_id=None) -> dict:
        """Commerce credit memos → payment adjustments in the outbox."""
        from amazon_commerce_sync.pipelines import tasks

        return tasks.refund_step("queue", account_id, run_id)

    @task
    def submit(account_id: str, run_id=None) -> dict:
        """Every pending adjustment of the account in one feed."""
        from amazon_commerce_sync.pipelines import tasks

        return tasks.refund_step("submit", account_id, run_id)

    @task
    def summary(settled: list[dict], mirrored: list[dict], queued: list[dict], submitted: list[dict]) -> dict:
        from amazon_commerce_sync.pipelines import tasks

        return tasks.refund_summary([*settled, *mirrored, *queued, *submitted])

    account_ids = accounts()
    settled = settle.expand(account_id=account_ids)
    mirrored = mirror.expand(account_id=account_ids)
    queued = queue.expand(account_id=account_ids)
    submitted = submit.expand(account_id=account_ids)
    settled >> mirrored >> queued >> submitted
    summary(settled, mirrored, queued, submitted)


amazon_refund_sync()
