"""A batch of outbox entries sent as one Amazon feed exactly once, against the SP-API sandbox.

``createFeed`` is not idempotent: a feed whose answer was lost is found again (getFeeds), never sent twice.
The SP-API sandbox decides its faults before an operation runs (never half-applied), so it cannot lose an
answer after accepting a feed; ``AnswerLost`` is the production hook with the answer dropped on our side
(the one stand-in here). A run killed around createFeed is reproduced by the state it leaves in the store.
"""

from __future__ import annotations

import json

import pytest
import requests

from amazon_commerce_sync import feeds
from amazon_commerce_sync.commerce_writes import keys
from amazon_commerce_sync.errors import ConnectionFailedError
from amazon_commerce_sync.hooks.amazon import AmazonSpApiHook
from amazon_commerce_sync.ratelimit import LocalLimiter
from amazon_commerce_sync.store import OutboxStatus, WriteStatus
from amazon_commerce_sync.times import utcnow

US = "ATVPDKIKX0DER"
KIND = f"cancel:{US}"


class AnswerLost(AmazonSpApiHook):
    """Amazon accepts the feed; the answer never reaches us."""

    def create_feed(self, feed_type, marketplace_ids, document_id):
        super().create_feed(feed_type, marketplace_ids, document_id)
        raise ConnectionFailedError("createFeed: the connection dropped before the answer", operation="createFeed")


@pytest.fixture
def amazon(amazon_sandbox, monkeypatch):
    base_url, _ = amazon_sandbox
    conn = {
        "conn_type": "http",
        "host": base_url,
        "login": "sandbox-client-id",
        "password": "sandbox-client-secret",
        "extra": {
            "refresh_token": "sandbox-refresh-token",
            "lwa_endpoint": f"{base_url}/auth/o2/token",
            "rate_scale": 100,
        },
    }
    monkeypatch.setenv("AIRFLOW_CONN_AMAZON_SP_API", json.dumps(conn))
    return base_url


def amazon_feeds(base_url: str) -> list[dict]:
    response = requests.get(f"{base_url}/_sandbox/feeds", timeout=10)
    response.raise_for_status()
    return response.json()["feeds"]


def cancellations(store, *order_ids: str) -> None:
    for order_id in order_ids:
        payload = {"amazon_order_id": order_id, "item_codes": ["1"], "reason": "NoInventory"}
        store.outbox.add(f"cancel:{order_id}", KIND, "us-main", order_id, payload)


def submit(store, hook) -> str | None:
    return feeds.submit_outbox(
        store,
        hook,
        account_id="us-main",
        kind=KIND,
        feed_type=feeds.ORDER_ACKNOWLEDGEMENT,
        message_type="OrderAcknowledgement",
        merchant_id="A2EXAMPLESELLER",
        marketplace_ids=[US],
        build_message=lambda n, p: feeds.cancellation_message(n, p["amazon_order_id"], p["item_codes"], p["reason"]),
    )


def statuses(store) -> dict[str, tuple[str, str | None]]:
    return {e["natural_key"]: (e["status"], e["feed_id"]) for e in store.outbox.entries(kind=KIND)}


def test_a_lost_create_feed_answer_is_found_by_get_feeds_and_never_sent_twice(amazon, state_store):
    cancellations(state_store, "111-0000001-0000001", "111-0000001-0000002")
    feed_id = submit(state_store, AnswerLost(limiter=LocalLimiter()))
    [feed] = amazon_feeds(amazon)
    assert feed_id == feed["feedId"]
    assert set(statuses(state_store).values()) == {("submitted", feed_id)}
    assert state_store.outbox.get_feed(feed_id)["status"] == "IN_QUEUE"
    assert submit(state_store, AmazonSpApiHook(limiter=LocalLimiter())) is None
    assert len(amazon_feeds(amazon)) == 1


def test_a_feed_a_killed_run_created_is_adopted_by_the_next_run(amazon, state_store):
    cancellations(state_store, "111-0000001-0000003")
    hook = AmazonSpApiHook(limiter=LocalLimiter())
    # The killed run: entries claimed into a batch, the batch's intent recorded, the feed created, then nothing.
    batch = keys.feed_batch()
    state_store.writes.record_intent(
        str(batch), batch.kind, None, {"feed_type": feeds.ORDER_ACKNOWLEDGEMENT, "started": utcnow().isoformat()}
    )
    [entry] = state_store.outbox.entries(kind=KIND)
    assert state_store.outbox.transition(
        entry["id"], OutboxStatus.SUBMITTING, expect=OutboxStatus.PENDING, feed_id=str(batch), message_id=1
    )
    made = hook.submit_feed(feeds.ORDER_ACKNOWLEDGEMENT, [US], b"<AmazonEnvelope/>")
    cancellations(state_store, "111-0000001-0000004")  # pending meanwhile: goes into the next feed

    assert submit(state_store, hook) == made
    assert statuses(state_store)["cancel:111-0000001-0000003"] == ("submitted", made)
    assert statuses(state_store)["cancel:111-0000001-0000004"] == ("pending", None)
    assert state_store.writes.get(str(batch))["status"] == WriteStatus.DONE
    assert len(amazon_feeds(amazon)) == 1


def test_a_batch_a_killed_run_never_sent_goes_back_to_pending_and_out_once(amazon, state_store):
    cancellations(state_store, "111-0000001-0000005")
    batch = keys.feed_batch()
    state_store.writes.record_intent(
        str(batch), batch.kind, None, {"feed_type": feeds.ORDER_ACKNOWLEDGEMENT, "started": utcnow().isoformat()}
    )
    [entry] = state_store.outbox.entries(kind=KIND)
    state_store.outbox.transition(
        entry["id"], OutboxStatus.SUBMITTING, expect=OutboxStatus.PENDING, feed_id=str(batch), message_id=1
    )
    feed_id = submit(state_store, AmazonSpApiHook(limiter=LocalLimiter()))
    [feed] = amazon_feeds(amazon)
    assert feed["feedId"] == feed_id
    assert statuses(state_store) == {"cancel:111-0000001-0000005": ("submitted", feed_id)}
    assert state_store.writes.get(str(batch)) is None  # the dead batch is forgotten; a new one carried it
