"""
### Amazon buyer personal-data retention

Erases buyer names, e-mails, companies and addresses (phone included) from the state store for
orders delivered more than `pii_retention_days` (setting, default 30) before the run's time, as Amazon's Data
Protection Policy requires. The retention clock of each order is set once from the staged order:
packages reported DELIVERED, else the promised delivery (end of `deliverByWindow`, never before
the last package's ship time), else the last ship time; cancelled orders from the cancellation.
Each erasure is one transaction with its audit entry (`pii_erased`, without the erased values);
reruns find nothing left to erase. The Commerce order keeps its copy (see README "Personal data").

`rotate_keys` then re-encrypts, 500 orders per transaction, the buyer data not yet on the newest key of
`SALES_CHANNEL_PII_KEYS` / connection `sales_channel_pii` (older keys, values from earlier versions, clear text),
and reports how many orders it re-encrypted and how many remain on an older key or in clear. It runs even when
`erase` failed, and a rerun continues where a killed run stopped.

Manual trigger: `dry_run` counts what is due without erasing or re-encrypting; `account_id` limits the erasure
to one account.
Schedule: `SALES_CHANNEL_RETENTION_SCHEDULE` (default daily at 03:15 UTC).
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import Param, TriggerRule, dag, task

from amazon_commerce_sync.constants import DAG_PII_RETENTION
from amazon_commerce_sync.dag_defaults import account_param, environment_schedule, task_defaults


@dag(
    dag_id=DAG_PII_RETENTION,
    description="Erase buyer personal data of orders delivered more than pii_retention_days ago.",
    doc_md=__doc__,
    schedule=environment_schedule("SALES_CHANNEL_RETENTION_SCHEDULE", "15 3 * * *"),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["sales-channel", "amazon", "privacy"],
    default_args=task_defaults(retries=2, execution_timeout=timedelta(hours=1), retry_delay=timedelta(minutes=5)),
    params={
        "dry_run": Param(
            False,
            type=["null", "boolean"],
            title="Dry run",
            description="Only count the orders due for erasure and the rows to re-encrypt.",
        ),
        "account_id": account_param(),
    },
)
def amazon_pii_retention():
    @task
    def erase(params=None, run_id=None, dag_run=None) -> dict:
        from amazon_commerce_sync.pipelines import tasks

        return tasks.pii_retention(run_id, params, run_after=dag_run.run_after)

    # Rotation runs after the erasure (no work on rows about to be erased) and also when it failed.
    @task(trigger_rule=TriggerRule.ALL_DONE)
    def rotate_keys(params=None, run_id=None, dag_run=None) -> dict:
        from amazon_commerce_sync.pipelines import tasks

        return tasks.pii_key_rotation(run_id, params, run_after=dag_run.run_after)

    erase() >> rotate_keys()


amazon_pii_retention()
