"""
### Sales Channel monitor

Alerts, through the configured notifier (`SALES_CHANNEL_NOTIFIER`, default an ERROR line in
this task's log), when the integration is unhealthy even though no task failed:

* the order import lags: the run's time minus the extraction cursor of an account and marketplace is more
  than `alert_import_lag_minutes` (setting, default 60);
* orders wait for a product, or stay quarantined, longer than `alert_stuck_hours` (default 24).
* unshipped merchant-fulfilled orders come within `alert_ship_by_hours` (default 12) of Amazon's ship-by
  date and are not shipped in Commerce: one alert listing them, sent once per order.

Quiet otherwise. A firing alert is repeated at most every `alert_repeat_minutes` (default 60).
Schedule: `SALES_CHANNEL_MONITOR_SCHEDULE` (default every 10 minutes).
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import dag, get_current_context, task

from amazon_commerce_sync.constants import DAG_MONITOR
from amazon_commerce_sync.dag_defaults import environment_schedule, task_defaults


@dag(
    dag_id=DAG_MONITOR,
    description="Alert on import lag and on orders stuck waiting or quarantined.",
    doc_md=__doc__,
    schedule=environment_schedule("SALES_CHANNEL_MONITOR_SCHEDULE", "*/10 * * * *"),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["sales-channel", "ops"],
    default_args=task_defaults(retries=1, execution_timeout=timedelta(minutes=5)),
)
def sales_channel_monitor():
    @task
    def check(run_id=None, dag_run=None) -> dict:
        from amazon_commerce_sync.pipelines import tasks

        return tasks.monitor(run_id, dict(get_current_context()), run_after=dag_run.run_after)

    check()


sales_channel_monitor()
