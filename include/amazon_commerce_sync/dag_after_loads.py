"""What follows the loads of a run that brings Amazon orders into Commerce, in both DAGs that do:
``amazon_order_import`` (the polling sweep) and ``amazon_order_events`` (ORDER_CHANGE notifications).

- ``anything_changed`` -> ``announce``: the Commerce-orders asset when the loads created or changed Commerce orders
  (the shipment sync runs on it);
- ``decision_requests`` -> ``request_decision``: one ``amazon_buyer_cancel_decision`` run per buyer cancellation
  request on hold without one (run id ``buyer_request__<account>__<order>``; an existing run is left alone).

DAG files import this module at parse time: it imports only ``airflow.sdk``, the standard provider's
``TriggerDagRunOperator`` and :mod:`amazon_commerce_sync.constants`.
"""

from __future__ import annotations

from typing import Any

from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.sdk import Asset, task

from amazon_commerce_sync.constants import ASSET_COMMERCE_ORDERS, DAG_CANCEL_DECISION

COMMERCE_ORDERS = Asset(ASSET_COMMERCE_ORDERS)


def after_loads(loaded: Any) -> None:
    """Add the tasks above to the DAG being defined, downstream of ``loaded``: the mapped per-account load
    results (``account.load``'s summaries, or ``account.fetch_load``'s with the load counts under ``load``)."""

    @task.short_circuit(ignore_downstream_trigger_rules=False)
    def anything_changed(summaries: list[dict]) -> bool:
        from amazon_commerce_sync.pipelines import tasks

        return tasks.commerce_orders_changed(summaries) > 0

    @task(outlets=[COMMERCE_ORDERS])
    def announce() -> None:
        """Emits the Commerce-orders asset (the shipment sync listens to it)."""

    @task
    def decision_requests(summaries: list[dict]) -> list[dict]:
        """Buyer cancellation requests on hold without a decision run (one per request, however many runs)."""
        from amazon_commerce_sync.pipelines import tasks

        return tasks.decision_requests()

    anything_changed(loaded) >> announce()
    TriggerDagRunOperator.partial(
        task_id="request_decision",
        trigger_dag_id=DAG_CANCEL_DECISION,
        skip_when_already_exists=True,
        wait_for_completion=False,
        retries=1,
        map_index_template="{{ task.trigger_run_id }}",  # one instance per request, named by its decision run
    ).expand_kwargs(decision_requests(loaded))
