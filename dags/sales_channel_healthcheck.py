"""
### Sales Channel health check

Checks, through the same hooks the other DAGs use, that every configured Amazon account
and its Commerce store are reachable with valid credentials, reports the rate-limit
headroom, and that the state store is migrated. Fails with a message naming the
connection and what to fix. Trigger it after changing a connection; also runs hourly.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import dag, task

from amazon_commerce_sync.constants import DAG_HEALTHCHECK
from amazon_commerce_sync.dag_defaults import task_defaults


@dag(
    dag_id=DAG_HEALTHCHECK,
    description="Check every account's Amazon and Commerce connections, rate-limit headroom, state store.",
    doc_md=__doc__,
    schedule="@hourly",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["sales-channel", "ops"],
    # One quick retry: a check that could not even start (workers up before the API server, a network blip) is
    # not a verdict on the connections; a refusal of credentials still fails at once (the retry policy).
    default_args=task_defaults(retries=1, retry_delay=timedelta(seconds=30), execution_timeout=timedelta(minutes=5)),
)
def sales_channel_healthcheck():
    @task
    def check(run_id=None) -> dict:
        from amazon_commerce_sync.pipelines import tasks

        return tasks.healthcheck(run_id)

    check()


sales_channel_healthcheck()
