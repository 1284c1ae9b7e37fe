"""
### Cancel Amazon orders

Cancels **unshipped** merchant-fulfilled Amazon orders on request, on Amazon and in
Adobe Commerce, like the Sales Channel's "Cancel Order". Trigger it from the form
(Trigger DAG ▸ the fields below), the REST API or the CLI with the Amazon order ids (or the
Commerce order numbers) and one of Amazon's cancel reasons.

1. **request** reads each order from Amazon and the state store. Shipped or partially
   shipped orders cannot be cancelled (issue a refund); already cancelled orders are a
   success with nothing to do; unknown orders and other accounts' orders are reported.
   The cancellations are recorded under `cancel:<amazon order id>` before anything is
   sent, then go to Amazon in one `POST_ORDER_ACKNOWLEDGEMENT_DATA` feed per marketplace
   (`StatusCode=Failure`, the reason on every item). Triggering again for an order whose
   cancellation is in flight sends nothing new.
2. **wait_for_feeds** waits for Amazon in `reschedule` mode (no worker slot is held);
   poke interval `SALES_CHANNEL_FEED_POKE_SECONDS` (default 60).
3. **confirm** reads the processing reports, re-reads each order from Amazon and, once it
   is CANCELLED, cancels the Commerce order (or refunds it offline in full if invoiced),
   puts the stock back and adds a comment with the reason, the note and the feed id.
4. **summary** lists every order's outcome, and fails naming each order that could not be
   cancelled and why, after all the others were processed.

`dry_run` reports what would happen and sends nothing.
"""

from __future__ import annotations

import os
from datetime import timedelta

import pendulum
from airflow.sdk import Param, dag, task

from amazon_commerce_sync.constants import (
    AMAZON_ORDER_ID_EXPECTED,
    AMAZON_ORDER_ID_PATTERN,
    CANCEL_MAX_NOTE,
    CANCEL_MAX_ORDERS,
    CANCEL_REASONS,
    COMMERCE_ORDER_NUMBER_PATTERN,
    DAG_ORDER_CANCEL,
)
from amazon_commerce_sync.dag_defaults import account_param, string_matching, task_defaults

COMMERCE_NUMBER_EXPECTED = "a Commerce order number: 1-50 letters, digits, '_' or '-', like 000000042"
FEED_POKE_SECONDS = float(os.environ.get("SALES_CHANNEL_FEED_POKE_SECONDS", "60"))


@dag(
    dag_id=DAG_ORDER_CANCEL,
    description="Cancel unshipped Amazon orders on Amazon and in Commerce, from a form.",
    doc_md=__doc__,
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=4,
    tags=["sales-channel", "amazon", "commerce", "manual"],
    default_args=task_defaults(retries=2, execution_timeout=timedelta(minutes=20)),
    params={
        "amazon_order_ids": Param(
            None,
            type=["null", "array"],
            title="Amazon order ids",
            description=f"One per line. An Amazon order id is 3-7-7 digits: 123-1234567-1234567 (at most "
            f"{CANCEL_MAX_ORDERS}). Or use the Commerce order numbers below.",
            items={"type": "string", **string_matching(AMAZON_ORDER_ID_PATTERN, AMAZON_ORDER_ID_EXPECTED)},
            minItems=1,
            maxItems=CANCEL_MAX_ORDERS,
            uniqueItems=True,
        ),
        "commerce_order_numbers": Param(
            None,
            type=["null", "array"],
            title="Commerce order numbers",
            description="Instead of Amazon ids: the Commerce order numbers (increment ids), one per line.",
            items={"type": "string", **string_matching(COMMERCE_ORDER_NUMBER_PATTERN, COMMERCE_NUMBER_EXPECTED)},
            minItems=1,
            maxItems=CANCEL_MAX_ORDERS,
            uniqueItems=True,
        ),
        # Optional in the schema so the form does not open in red (Airflow's form marks a type without "null"
        # required and flags it before anything is chosen); the enum still refuses a run without a reason.
        "reason": Param(
            None,
            type=["null", "string"],
            title="Cancel reason",
            description="Amazon's CancelReason, sent on every item (for all but NoInventory Amazon restocks).",
            enum=list(CANCEL_REASONS),
        ),
        "note": Param(
            None,
            type=["null", "string"],
            title="Note",
            description="Optional; added to the Commerce order comment (no personal data, please).",
            maxLength=CANCEL_MAX_NOTE,
        ),
        "dry_run": Param(False, type=["null", "boolean"], title="Dry run", description="Report only; send nothing."),
        "account_id": account_param("The account in the settings (default: the first)."),
    },
)
def amazon_order_cancel():
    @task
    def request(params=None, run_id=None) -> dict:
        from amazon_commerce_sync.pipelines import tasks

        return tasks.cancel_request(dict(params), run_id)

    @task.sensor(
        mode="reschedule",
        poke_interval=FEED_POKE_SECONDS,
        timeout=timedelta(hours=2).total_seconds(),
        execution_timeout=timedelta(minutes=5),
    )
    def wait_for_feeds(requested: dict, run_id=None) -> bool:
        from amazon_commerce_sync.pipelines import tasks

        return tasks.cancel_feeds_finished(requested, run_id)

    @task
    def confirm(requested: dict, run_id=None) -> dict:
        from amazon_commerce_sync.pipelines import tasks

        return tasks.cancel_confirm(requested, run_id)

    @task(trigger_rule="all_done", retries=0)
    def summary(ti=None) -> dict:
        from amazon_commerce_sync.pipelines import tasks

        requested = ti.xcom_pull(task_ids="request", default=None)
        confirmed = ti.xcom_pull(task_ids="confirm", default=None)
        return tasks.cancel_summary(requested, confirmed, publish=lambda s: ti.xcom_push(key="summary", value=s))

    requested = request()
    confirmed = confirm(requested)
    wait_for_feeds(requested) >> confirmed >> summary()


amazon_order_cancel()
