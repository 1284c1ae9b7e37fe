"""
### Amazon refund sync

Keeps refunds in step between Adobe Commerce and Amazon, for orders the import created.

- **settle**: feeds submitted by earlier runs whose processing finished are read (processing
  report) and each adjustment is marked accepted or rejected with Amazon's message. Nothing
  waits for Amazon: a feed still in progress is picked up by a later run.
- **mirror**: refunds issued on Amazon's side (Finances 2024-06-19 `listTransactions`, type Refund,
  cursor by posted date, keyed by transaction id whatever its deferral status) become offline
  credit memos on the Commerce order, once, with a comment naming the Amazon refund; refunds
  Commerce itself sent are recognised (order, item, exact amounts) and not mirrored back.
- **queue**: new Commerce credit memos on Amazon orders (cursor over `/V1/creditmemos`)
  become payment adjustments (Principal, Tax, Shipping, ShippingTax...) in the outbox;
  over-refunds, unknown items and other currencies are rejected with a reason, not sent.
- **submit**: all pending adjustments of an account go to Amazon in ONE
  `POST_PAYMENT_ADJUSTMENT_DATA` feed (createFeed allows very few calls).
- **reconcile**: every refund checked three ways to the cent, per item and component: the credit
  memo, the adjustment Amazon accepted and the refund transaction Amazon posted (mirrored refunds:
  the transaction and the offline memo); a difference opens a mismatch naming order, memo, component
  and amounts. The daily summary per account and currency (sent, mirrored, confirmed, mismatched)
  goes to the task log and the Sales Channel page.
- **summary**: the run's counts (sent, accepted, rejected, mirrored, skipped...).

One mapped task group per Amazon account (`account.settle` → `account.mirror` → `account.queue` →
`account.submit` → `account.reconcile`, each instance named by its account): an account's steps wait only for its own.
Schedule: `SALES_CHANNEL_REFUND_SCHEDULE` (default every 15 minutes).
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import chain, dag, task, task_group

from amazon_commerce_sync.constants import DAG_REFUND_SYNC
from amazon_commerce_sync.dag_defaults import (
    ACCOUNT_MAP_INDEX,
    account_param,
    environment_schedule,
    task_defaults,
)

STEPS = {
    "settle": "Settle the adjustment feeds earlier runs submitted.",
    "mirror": "Amazon-side refunds → offline Commerce credit memos.",
    "queue": "Commerce credit memos → payment adjustments in the outbox.",
    "submit": "Every pending adjustment of the account in one feed.",
    "reconcile": "Three-way check of refund amounts (memo, accepted adjustment, Amazon's transaction); daily summary.",
}


@dag(
    dag_id=DAG_REFUND_SYNC,
    description="Refunds both ways between Commerce credit memos and Amazon, reconciled to the cent.",
    doc_md=__doc__,
    schedule=environment_schedule("SALES_CHANNEL_REFUND_SCHEDULE", "*/15 * * * *"),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["sales-channel", "amazon", "commerce", "refunds"],
    default_args=task_defaults(retries=3, execution_timeout=timedelta(minutes=30), exponential_backoff=True),
    params={
        "account_id": account_param(),
    },
)
def amazon_refund_sync():
    @task
    def accounts(params=None) -> list[str]:
        from amazon_commerce_sync.pipelines import tasks

        return tasks.list_accounts(params.get("account_id"))

    def step(name: str):
        @task(task_id=name, map_index_template=ACCOUNT_MAP_INDEX, doc_md=STEPS[name])
        def run(account_id: str, run_id=None, dag_run=None) -> dict:
            from amazon_commerce_sync.pipelines import tasks

            return tasks.refund_step(name, account_id, run_id, run_after=dag_run.run_after)

        return run

    @task_group
    def account(account_id: str):
        """One Amazon account's steps, in order (keyword arguments: see ACCOUNT_MAP_INDEX)."""
        runs = [step(name)(account_id=account_id) for name in STEPS]
        chain(*runs)
        return runs[-1]

    @task
    def summary(ti=None) -> dict:
        """The run's counts over every account and step."""
        from amazon_commerce_sync.pipelines import tasks

        pulled = ti.xcom_pull(task_ids=[f"account.{step}" for step in STEPS])
        return tasks.refund_summary(pulled)

    account.expand(account_id=accounts()) >> summary()


amazon_refund_sync()
