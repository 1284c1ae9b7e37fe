"""The Sales Channel page after real amazon_order_events runs: the sandbox publishes ORDER_CHANGE to a real SQS
queue (moto server), the run stages, fetches and loads (``test_order_events.run_with_events``), and the page's
event section counts what the run's stage task did (its audit entry), with no buyer data."""

from __future__ import annotations

import json
import re

import pytest

from amazon_commerce_sync.store.order_events import MESSAGES_ACTION
from amazon_commerce_sync.ui import event_path, queries
from amazon_commerce_sync.ui.app import create_app, require_user
from tests.e2e import test_order_events as events_tests
from tests.store_queries import audit_entries

pytestmark = pytest.mark.e2e

# The event path's fixtures: the Amazon sandbox publishing to the local SQS, its queue, the subscription.
amazon_sandbox = events_tests.amazon_sandbox
sqs = events_tests.sqs
subscribed = events_tests.subscribed
FAULTS = "/_sandbox/notifications/faults"


@pytest.fixture
def own_asset_events():
    """The asset events this test's runs create are removed afterwards: the metadata database is the session's, and
    ``test_order_events`` reads every event of the asset."""
    from datetime import UTC, datetime

    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.models.asset import association_table as consumed  # dagrun_asset_event
    from airflow.utils.session import create_session
    from sqlalchemy import delete, select

    from amazon_commerce_sync.constants import ASSET_ORDER_CHANGE

    started = datetime.now(UTC)
    yield
    with create_session() as session:
        mine = select(AssetEvent.id).where(
            AssetEvent.asset_id.in_(select(AssetModel.id).where(AssetModel.uri == ASSET_ORDER_CHANGE)),
            AssetEvent.timestamp >= started,
        )
        ids = list(session.scalars(mine))
        session.execute(delete(consumed).where(consumed.c.event_id.in_(ids)))
        session.execute(delete(AssetEvent).where(AssetEvent.id.in_(ids)))


def test_the_page_counts_what_the_runs_did(subscribed, sqs, own_asset_events):
    from fastapi.testclient import TestClient

    channel = subscribed
    channel.amazon("POST", FAULTS, json={"duplicate_rate": 1.0, "other_seller_rate": 1.0})
    (order_id,) = events_tests.new_orders(channel, 1, seed=61)
    first = events_tests.receive(sqs, 3)  # the notification twice, and one about another seller's order
    channel.amazon("POST", FAULTS, json={"malformed_rate": 1.0})
    events_tests.new_orders(channel, 1, seed=62)
    malformed = events_tests.receive(sqs, 1)
    channel.amazon("POST", FAULTS, json={})

    assert events_tests.run_with_events(channel, first, malformed)["account.fetch_load[0]"] == "success"
    staged = {"received": 4, "staged": 1, "older_or_duplicate": 1, "ignored_other_seller": 1, "quarantined": 1}
    assert events_tests.result(channel, "stage") == staged
    assert events_tests.run_with_events(channel)["stage"] == "success"  # a run without messages counts nothing

    data = queries.page_data(channel.store)
    e = data.order_events
    assert e.last_hour == e.day == dict.fromkeys(event_path.OUTCOMES, 0) | staged
    assert sum(e.received_per_hour) == 4 and e.last_received is not None
    assert (e.waiting, e.unknown, e.lag_level) == (0, 0, "ok")  # fetched and loaded
    assert e.quarantined == 1 and set(e.quarantine_reasons) <= {"not JSON", "not an ORDER_CHANGE notification"}
    # the DAG ran, so Airflow knows it: the watcher's state is read, whatever the session's other tests left
    assert e.watcher["state"] in {"running", "not_running", "off", "paused"}

    app = create_app(lambda: channel.store, dag_ids=())
    app.dependency_overrides[require_user()] = lambda: {"username": "tester"}
    html = re.sub(r"\s+", " ", TestClient(app).get("/").text)
    assert 'id="order-events"' in html and "Last 24 h: 4 received, 1 staged," in html
    assert "<td>not JSON</td>" in html or "<td>not an ORDER_CHANGE notification</td>" in html
    # ORDER_CHANGE carries the buyer's postal code: it reaches neither the page nor the audit trail
    body = json.loads(next(m for m in first if order_id in m["Body"])["Body"])
    postal = body["Payload"]["OrderChangeNotification"]["Summary"]["DestinationPostalCode"]
    assert postal and postal not in html
    audit = audit_entries(channel.store, action=MESSAGES_ACTION)
    assert [entry["detail"] for entry in audit] == [staged] and postal not in json.dumps(audit, default=str)
