"""
### Decide a buyer's cancellation request

One run per request: when a buyer asks Amazon to cancel an unshipped merchant-fulfilled order, the order
import puts the Commerce order on hold and triggers this DAG with the run id
`buyer_request__<account>__<Amazon order id>` (a request never gets a second run).

1. **prepare** re-reads the order from Amazon. An order shipped or cancelled meanwhile needs no decision.
2. **decide** waits for you: open the run, then *Required Actions* (or the task's page). You see the Amazon
   order id, the Commerce order number, the items, the amount, what the buyer said and the ship-by date
   (no personal data), and choose **Cancel** or **Keep**. The answer is due at the order's ship-by date
   (`default_hours` after the request when Amazon gives none).
3. **apply_decision** re-reads the order from Amazon first: a decision made after it shipped does nothing and
   says why. **Cancel** cancels it on Amazon (reason `BuyerCanceled`) and in Commerce, with the same steps as
   `amazon_order_cancel` (**wait_for_feeds**, **confirm**). **Keep** releases the Commerce hold and adds one
   comment. **No answer by the deadline**: nothing is cancelled, the order stays on hold, and an alert goes
   through the configured notifier.
4. **summary** states what was done; it fails if a cancellation could not be finished.

Deciding twice (clearing the task, triggering again) repeats nothing.
"""

from __future__ import annotations

import os
from datetime import timedelta

import pendulum
from airflow.sdk import Param, dag, task

from amazon_commerce_sync.constants import (
    ACCOUNT_ID_EXPECTED,
    ACCOUNT_ID_PATTERN,
    AMAZON_ORDER_ID_EXPECTED,
    AMAZON_ORDER_ID_PATTERN,
    DAG_CANCEL_DECISION,
)
from amazon_commerce_sync.dag_defaults import string_matching, task_defaults
from amazon_commerce_sync.decision_operator import BuyerCancelDecisionOperator

FEED_POKE_SECONDS = float(os.environ.get("SALES_CHANNEL_FEED_POKE_SECONDS", "60"))
DEFAULT_HOURS = float(os.environ.get("SALES_CHANNEL_DECISION_DEFAULT_HOURS", "24"))


@dag(
    dag_id=DAG_CANCEL_DECISION,
    doc_md=__doc__,
    description="Cancel or keep an order whose buyer asked Amazon to cancel it (one run per request).",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1000,  # every open request is a running run (waiting for a person holds no worker or pool slot)
    tags=["sales-channel", "amazon", "commerce", "decision"],
    default_args=task_defaults(retries=2, execution_timeout=timedelta(minutes=20)),
    params={
        "account_id": Param(type="string", title="Account", **string_matching(ACCOUNT_ID_PATTERN, ACCOUNT_ID_EXPECTED)),
        "amazon_order_id": Param(
            type="string",
            title="Amazon order id",
            description="e.g. 123-1234567-1234567",
            **string_matching(AMAZON_ORDER_ID_PATTERN, AMAZON_ORDER_ID_EXPECTED),
        ),
        "default_hours": Param(
            DEFAULT_HOURS,
            type="number",
            title="Hours to decide without a ship-by date",
            description="Used only when Amazon gives the order no ship-by date.",
            exclusiveMinimum=0,
        ),
    },
)
def amazon_buyer_cancel_decision():
    @task
    def prepare(params=None, run_id=None, dag_run=None) -> dict:
        from amazon_commerce_sync.pipelines import tasks

        return tasks.decision_prepare(dict(params), run_id, run_after=dag_run.run_after)

    # execution_timeout bounds each try's work, not the wait for a person (that is the order's deadline).
    decide = BuyerCancelDecisionOperator(
        task_id="decide", prepared_task_id="prepare", retries=0, execution_timeout=timedelta(minutes=5)
    )

    @task
    def apply_decision(prepared: dict, decision: dict, run_id=None) -> dict:
        from amazon_commerce_sync.pipelines import tasks

        return tasks.decision_apply(prepared, decision, run_id)

    @task.sensor(
        mode="reschedule",
        poke_interval=FEED_POKE_SECONDS,
        timeout=timedelta(hours=2).total_seconds(),
        execution_timeout=timedelta(minutes=5),
    )
    def wait_for_feeds(applied: dict, run_id=None) -> bool:
        from amazon_commerce_sync.pipelines import tasks

        return tasks.cancel_feeds_finished(applied, run_id)

    @task
    def confirm(applied: dict, run_id=None) -> dict:
        from amazon_commerce_sync.pipelines import tasks

        return tasks.cancel_confirm(applied, run_id)

    @task(trigger_rule="all_done", retries=0)
    def summary(ti=None) -> dict:
        from amazon_commerce_sync.pipelines import tasks

        applied = ti.xcom_pull(task_ids="apply_decision", default=None)
        confirmed = ti.xcom_pull(task_ids="confirm", default=None)
        return tasks.decision_summary(applied, confirmed, publish=lambda s: ti.xcom_push(key="summary", value=s))

    prepared = prepare()
    prepared >> decide
    applied = apply_decision(prepared, decide.output)
    confirmed = confirm(applied)
    wait_for_feeds(applied) >> confirmed >> summary()


amazon_buyer_cancel_decision()
