"""amazon_buyer_cancel_decision end to end: the import asks, a person answers through Airflow's own REST API, and
both sandboxes show the outcome.

``dag.test()`` keeps a run whose task waits for a person in ``awaiting_input`` until a response arrives from
outside (``airflow.sdk.definitions.dag.DAG.test``). A thread gives it the way a person's click in the UI does:
``PATCH /api/v2/dags/{dag}/dagRuns/{run}/taskInstances/decide/-1/hitlDetails`` on Airflow's real API app, signed
in with a JWT of Airflow's auth manager; a timeout is resolved by the scheduler's own sweep
(``SchedulerJobRunner.check_awaiting_input_timeouts``) once the deadline has passed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.e2e.test_shipment_sync import Merchant
from tests.store_queries import open_mismatches

pytestmark = pytest.mark.e2e

DAG = "amazon_buyer_cancel_decision"
ACCOUNT = "us-main"
KEEP_TEXT = "declined in Airflow"


@pytest.fixture(autouse=True)
def fast_poke(monkeypatch):
    monkeypatch.setenv("SALES_CHANNEL_FEED_POKE_SECONDS", "1")


# -- the request ----------------------------------------------------------------------------------------
def held_order(channel, *, seed: int, ship_by: datetime | None = None) -> str:
    """An unshipped merchant order, imported, then asked to be cancelled by its buyer and held by the next import."""
    [order] = channel.generated_orders(1, seed=seed, status="UNSHIPPED", fulfilled_by="MERCHANT")
    if ship_by is not None:
        order["fulfillment"]["shipByWindow"]["latestDateTime"] = ship_by.strftime("%Y-%m-%dT%H:%M:%SZ")
    channel.load_amazon_orders([order])
    assert_success(channel.run_dag("amazon_order_import"))
    channel.amazon_event(order["orderId"], {"type": "request_cancellation", "reason": "Order created by mistake"})
    assert_success(channel.run_dag("amazon_order_import"))
    assert commerce_order(channel, order["orderId"])["state"] == "holded"
    return order["orderId"]


def assert_success(states: dict[str, str]) -> None:
    failed = {k: v for k, v in states.items() if v not in ("success", "skipped")}
    assert not failed, failed


def commerce_order(channel, order_id: str) -> dict[str, Any]:
    [order] = channel.commerce_orders_by_amazon_id()[order_id]
    return order


def comments(channel, order_id: str) -> list[str]:
    return [h.get("comment") or "" for h in commerce_order(channel, order_id)["status_histories"]]


def decision_runs(order_id: str) -> list[Any]:
    """The decision runs Airflow holds for the order (run id ``buyer_request__<account>__<order>``)."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import select

    from amazon_commerce_sync.constants import cancel_decision_run_id

    with create_session() as session:
        query = select(DagRun).where(DagRun.dag_id == DAG, DagRun.run_id == cancel_decision_run_id(ACCOUNT, order_id))
        runs = session.scalars(query).all()
        session.expunge_all()
        return runs


def xcom_of(channel, task_id: str, keys=("return_value",)) -> Any:
    """What a task of the last run returned (or pushed under one of ``keys``)."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    run = channel.last_run
    with create_session() as session:
        for key in keys:
            query = XComModel.get_many(run_id=run.run_id, dag_ids=run.dag_id, task_ids=task_id, key=key)
            row = session.scalars(query).first()
            if row is not None:
                return XComModel.deserialize_value(row)
    raise AssertionError(f"{task_id} left no XCom")


def summary_of(channel) -> dict[str, Any]:
    return xcom_of(channel, "summary", keys=("return_value", "summary"))


def decide_again(channel) -> dict[str, Any]:
    """The last run's decision applied once more, as a cleared ``apply_decision`` and ``confirm`` do."""
    from amazon_commerce_sync.pipelines import tasks

    run_id = channel.last_run.run_id
    applied = tasks.decision_apply(xcom_of(channel, "prepare"), xcom_of(channel, "decide"), run_id)
    return tasks.decision_summary(applied, tasks.cancel_confirm(applied, run_id))


# -- the person -----------------------------------------------------------------------------------------
class Person(threading.Thread):
    """Waits for the decision task to ask, then answers through Airflow's REST API (``choice``), or lets the
    deadline pass and runs the scheduler's timeout sweep (``choice=None``). ``before`` runs first (e.g. the
    order ships on Amazon while the person thinks)."""

    def __init__(self, choice: str | None, before: Callable[[], None] | None = None) -> None:
        super().__init__(daemon=True)
        self.choice = choice
        self.before = before
        self.asked: dict[str, Any] | None = None
        self.answers: list[Any] = []
        self.error: BaseException | None = None
        self.run_ended = threading.Event()  # set by the test when dag.test() returned: nobody will ask any more

    def run(self) -> None:
        try:
            ti = self._wait_until_asked()
            if ti is None:
                return
            if self.before:
                self.before()
            if self.choice is None:
                self._sweep_until_resolved(ti)
            else:
                self.answers.append(respond(ti, self.choice))
                assert self.answers == [200], f"Airflow refused the answer: HTTP {self.answers}"
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.error = exc
            abandon()  # dag.test() would otherwise wait for an answer forever

    def _wait_until_asked(self):
        from airflow.models.hitl import HITLDetail
        from airflow.models.taskinstance import TaskInstance
        from airflow.utils.session import create_session
        from airflow.utils.state import TaskInstanceState
        from sqlalchemy import select

        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and not self.run_ended.is_set():
            with create_session() as session:
                ti = session.scalars(
                    select(TaskInstance).where(
                        TaskInstance.dag_id == DAG,
                        TaskInstance.task_id == "decide",
                        TaskInstance.state == TaskInstanceState.AWAITING_INPUT,
                    )
                ).first()
                if ti is not None:
                    detail = session.scalar(select(HITLDetail).where(HITLDetail.ti_id == ti.id))
                    self.asked = {
                        "subject": detail.subject,
                        "body": detail.body,
                        "options": list(detail.options),
                        "defaults": detail.defaults,
                        "trigger_timeout": ti.trigger_timeout,
                    }
                    return ti.dag_id, ti.run_id, ti.id
            time.sleep(0.5)
        if self.run_ended.is_set():
            return None
        raise AssertionError("the decision task never asked")

    def _sweep_until_resolved(self, ti) -> None:
        from airflow.jobs.job import Job
        from airflow.jobs.scheduler_job_runner import SchedulerJobRunner
        from airflow.models.taskinstance import TaskInstance
        from airflow.utils.session import create_session
        from airflow.utils.state import TaskInstanceState

        runner = SchedulerJobRunner(job=Job())
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            runner.check_awaiting_input_timeouts()
            with create_session() as session:
                if session.get(TaskInstance, ti[2]).state != TaskInstanceState.AWAITING_INPUT:
                    return
            time.sleep(0.5)
        raise AssertionError("the scheduler's sweep did not resolve the timed-out decision")


def abandon() -> None:
    """Fail every decision still waiting for a person, so a broken test ends instead of hanging."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from airflow.utils.state import TaskInstanceState
    from sqlalchemy import update

    with create_session() as session:
        session.execute(
            update(TaskInstance)
            .where(TaskInstance.dag_id == DAG, TaskInstance.state == TaskInstanceState.AWAITING_INPUT)
            .values(state=TaskInstanceState.FAILED)
        )


def api_client():
    """Airflow's real REST API app (in process) and the headers of a signed-in admin (a JWT of its auth manager)."""
    from airflow.api_fastapi.app import create_app, get_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
    from fastapi.testclient import TestClient

    client = TestClient(create_app("core"))
    token = get_auth_manager().generate_jwt(SimpleAuthManagerUser(username="reviewer", role="admin"))
    return client, {"Authorization": f"Bearer {token}"}


def respond(ti, choice: str) -> int:
    """A person's answer, as the UI's Required Actions sends it; returns the HTTP status."""
    dag_id, run_id, _ = ti
    client, headers = api_client()
    path = f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/decide/-1/hitlDetails"
    response = client.patch(path, json={"chosen_options": [choice], "params_input": {}}, headers=headers)
    return response.status_code


def decide(channel, order_id: str, choice: str | None, before=None) -> tuple[dict[str, str], Person]:
    return decided_by(channel, order_id, Person(choice, before))


def decided_by(channel, order_id: str, person: Person) -> tuple[dict[str, str], Person]:
    """Run the decision for the order with ``dag.test()`` while ``person`` answers from its thread."""
    person.start()
    try:
        states = channel.run_dag(DAG, conf={"account_id": ACCOUNT, "amazon_order_id": order_id})
    finally:
        person.run_ended.set()
    person.join(timeout=60)
    if person.error:
        raise person.error
    return states, person


# -- the tests ------------------------------------------------------------------------------------------
def test_request_opens_one_run_and_cancel_cancels_both_sides_once(channel):
    order_id = held_order(channel, seed=61)
    [run] = decision_runs(order_id)
    assert run.conf == {"account_id": ACCOUNT, "amazon_order_id": order_id}
    assert_success(channel.run_dag("amazon_order_import"))  # asks again: the existing run is left alone
    assert len(decision_runs(order_id)) == 1

    states, person = decide(channel, order_id, "Cancel")
    assert_success(states)
    assert person.answers == [200]
    asked = person.asked
    assert asked["options"] == ["Cancel", "Keep"] and asked["defaults"] is None
    assert order_id in asked["subject"]
    increment_id = channel.store.orders.get(order_id)["commerce_increment_id"]
    for shown in (order_id, increment_id, "Order created by mistake", "Ship by:", " x "):
        assert shown in asked["body"], shown
    assert "@" not in asked["body"]  # no buyer e-mail (the order payload has one in the sandbox)
    assert channel.amazon_order(order_id)["fulfillment"]["fulfillmentStatus"] == "CANCELLED"
    assert commerce_order(channel, order_id)["state"] in ("canceled", "closed")  # closed: refunded in full
    [outcome] = summary_of(channel)["orders"]
    assert outcome["outcome"] == "cancelled"
    feeds = channel.amazon("GET", "/_sandbox/feeds")["feeds"]
    notes = comments(channel, order_id)

    # Airflow refuses a second answer to the decision ...
    assert respond((DAG, channel.last_run.run_id, None), "Keep") == 409
    # ... and the same decision applied again (a cleared task) sends and writes nothing twice.
    again = decide_again(channel)
    assert [o["outcome"] for o in again["orders"]] == ["already_cancelled"]
    assert channel.amazon("GET", "/_sandbox/feeds")["feeds"] == feeds
    assert comments(channel, order_id) == notes
    # A new run for the request finds nothing left to decide and asks nobody.
    assert_success(channel.run_dag(DAG, conf={"account_id": ACCOUNT, "amazon_order_id": order_id}))
    assert summary_of(channel)["outcome"] == "nothing_to_decide"


def test_keep_releases_the_hold_with_one_comment(channel):
    order_id = held_order(channel, seed=62)
    states, person = decide(channel, order_id, "Keep")
    assert_success(states)
    assert person.answers == [200]
    order = commerce_order(channel, order_id)
    assert order["state"] != "holded"
    assert sum(KEEP_TEXT in c for c in comments(channel, order_id)) == 1
    assert channel.amazon_order(order_id)["fulfillment"]["fulfillmentStatus"] == "UNSHIPPED"
    assert channel.store.orders.get(order_id)["sync_status"] == "imported"
    assert summary_of(channel)["outcome"] == "kept"
    assert decide_again(channel)["outcome"] == "kept"  # a cleared task: nothing repeated
    assert sum(KEEP_TEXT in c for c in comments(channel, order_id)) == 1

    # Amazon changes the order again (the request is still on it): the import does not hold it again.
    channel.amazon_event(order_id, {"type": "request_cancellation", "reason": "Order created by mistake"})
    assert_success(channel.run_dag("amazon_order_import"))
    assert commerce_order(channel, order_id)["state"] != "holded"
    assert channel.store.orders.get(order_id)["sync_status"] != "on_hold"
    assert channel.amazon("GET", "/_sandbox/feeds")["feeds"] == []


def test_no_answer_by_ship_by_alerts_and_cancels_nothing(channel, debug_logs, caplog):
    order_id = held_order(channel, seed=63, ship_by=datetime.now(UTC) - timedelta(hours=1))
    debug_logs()
    states, person = decide(channel, order_id, None)
    assert_success(states)
    assert person.asked["trigger_timeout"] is not None
    alerts = [
        r.getMessage() for r in caplog.records if "SALES CHANNEL ALERT [buyer_cancel_undecided]" in r.getMessage()
    ]
    assert len(alerts) == 1 and order_id in alerts[0] and "not decided before ship-by" in alerts[0]
    assert commerce_order(channel, order_id)["state"] == "holded"
    assert channel.amazon_order(order_id)["fulfillment"]["fulfillmentStatus"] == "UNSHIPPED"
    assert channel.amazon("GET", "/_sandbox/feeds")["feeds"] == []
    assert summary_of(channel)["outcome"] == "not_decided"


def test_shipped_order_gets_no_run_and_a_late_decision_does_nothing(channel):
    # Asked to cancel, then shipped before the import saw either: nothing to decide, no run.
    [order] = channel.generated_orders(1, seed=64, status="UNSHIPPED", fulfilled_by="MERCHANT")
    channel.load_amazon_orders([order])
    assert_success(channel.run_dag("amazon_order_import"))
    channel.amazon_event(order["orderId"], {"type": "request_cancellation"}, age=None)
    channel.amazon_event(order["orderId"], {"type": "ship"})
    assert_success(channel.run_dag("amazon_order_import"))
    assert decision_runs(order["orderId"]) == []

    # Shipped while the person was deciding: the decision does nothing and says why.
    order_id = held_order(channel, seed=65)
    states, person = decide(
        channel, order_id, "Cancel", before=lambda: channel.amazon_event(order_id, {"type": "ship"})
    )
    assert_success(states)
    summary = summary_of(channel)
    assert summary["outcome"] == "shipped" and "nothing was done" in summary["detail"]
    assert channel.amazon_order(order_id)["fulfillment"]["fulfillmentStatus"] == "SHIPPED"
    assert channel.amazon("GET", "/_sandbox/feeds")["feeds"] == []

    # Amazon's shipment reaches Commerce: the hold is released (Magento ships no held order) with one comment.
    assert_success(channel.run_dag("amazon_order_import"))
    assert_success(channel.run_dag("amazon_shipment_sync", {"mismatch_grace_minutes": 0}))
    assert_success(channel.run_dag("amazon_order_import"))
    commerce = commerce_order(channel, order_id)
    assert commerce["state"] in ("processing", "complete") and commerce["state"] != "holded"
    assert len(Merchant(channel).shipments(commerce["entity_id"])) == 1
    assert sum("shipped while it was on hold" in c for c in comments(channel, order_id)) == 1
    assert not open_mismatches(channel.store)
