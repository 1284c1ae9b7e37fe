"""The human-in-the-loop step of ``amazon_buyer_cancel_decision``: Airflow's ``HITLOperator`` with a per-order deadline.

Airflow 3.3's ``HITLOperator`` (``apache-airflow-providers-standard``) writes the request (subject, body, options)
and parks the task in ``awaiting_input``; a response through the UI's Required Actions or the REST API
(``PATCH /api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/{map_index}/hitlDetails``) resumes it, and
the scheduler's ``check_awaiting_input_timeouts`` resumes it once ``response_timeout`` has passed. Two changes:

- subject, body and ``response_timeout`` come from the ``prepare`` task (the order's ship-by date is the deadline;
  Airflow measures the timeout from when the task parks), and nothing is asked when ``prepare`` found nothing to
  decide;
- no default option: a timeout is not a decision. Instead of failing (``HITLTimeoutError``), the step returns
  ``{"chosen_options": [], "timed_out": True}`` and ``apply_decision`` alerts.

This module is loaded when the DAG file is parsed: it imports only Airflow; the pipeline is imported at run time.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.providers.standard.operators.hitl import HITLOperator
from airflow.sdk.timezone import utcnow

CANCEL = "Cancel"
KEEP = "Keep"
OPTIONS = (CANCEL, KEEP)


class BuyerCancelDecisionOperator(HITLOperator):
    """Ask a person to Cancel or Keep the order that ``prepared_task_id`` describes (its XCom)."""

    def __init__(self, *, prepared_task_id: str, **kwargs: Any) -> None:
        kwargs.setdefault("subject", "Buyer cancellation request")
        # A placeholder: ``execute`` sets the order's own deadline. Given here, ``execution_timeout`` keeps its
        # meaning (one try's work) instead of becoming the response timeout.
        kwargs.setdefault("response_timeout", timedelta(hours=24))
        super().__init__(options=list(OPTIONS), multiple=False, defaults=None, **kwargs)
        self.prepared_task_id = prepared_task_id

    def execute(self, context):
        from amazon_commerce_sync.pipelines.cancel_decision import response_timeout

        prepared = context["ti"].xcom_pull(task_ids=self.prepared_task_id) or {}
        if not prepared.get("open"):
            self.log.info("Nothing to decide: %s", prepared.get("why") or "the prepare step gave no order")
            return {"chosen_options": [], "asked": False}
        self.subject = prepared["subject"]
        self.body = prepared["body"]
        self.response_timeout = response_timeout(prepared, utcnow())
        return super().execute(context)

    def execute_complete(self, context, event: dict[str, Any]) -> Any:
        if event.get("error_type") == "timeout":
            self.log.warning("No answer before the deadline: nothing is decided")
            return {"chosen_options": [], "asked": True, "timed_out": True}
        result = dict(super().execute_complete(context, event))
        by = result.get("responded_by_user") or {}
        return {
            "chosen_options": list(result["chosen_options"]),
            "asked": True,
            "timed_out": False,
            "responded_at": result["responded_at"].isoformat() if result.get("responded_at") else None,
            "responded_by": by.get("name") if isinstance(by, dict) else None,
        }
