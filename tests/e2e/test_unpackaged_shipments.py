"""Orders Amazon shows shipped without package data end ``complete`` in Commerce, end to end with ``dag.test()``.

Amazon gives no ``packages`` for Amazon-fulfilled orders (the Orders API 2026-01-01 model: packages are for
merchant-fulfilled orders only; its own FBA example 250-1234567-8901234 has none), nor for orders the seller
confirmed in Seller Central without package details. Each gets one Commerce shipment of every shipped unit,
without a track, as Adobe's Amazon Sales Channel does. Package data that appears later adds its tracking to that
shipment (``POST /V1/shipment/track``), never a second shipment; nothing is confirmed back to Amazon.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from ops.reconcile import Snapshot, reconcile
from tests.e2e.test_shipment_sync import Merchant, assert_success, confirmations, outbox

pytestmark = pytest.mark.e2e

DAG = "amazon_shipment_sync"
VERIFY_NOW = {"mismatch_grace_minutes": 0}


def units(shipment):
    return sum(Decimal(str(i["qty"])) for i in shipment["items"])


def commerce_order(channel, amazon_order_id):
    [order] = channel.commerce_orders_by_amazon_id()[amazon_order_id]
    return order


def assert_complete_with_one_trackless_shipment(channel, merchant, amazon_order):
    order = commerce_order(channel, amazon_order["orderId"])
    assert order["state"] == "complete", order["state"]
    [shipment] = merchant.shipments(order["entity_id"])
    assert shipment["tracks"] == []
    assert units(shipment) == sum(i["quantityOrdered"] for i in amazon_order["orderItems"])
    assert all(Decimal(str(i["qty_shipped"])) == Decimal(str(i["qty_ordered"])) for i in order["items"])
    return order, shipment


def fba_as_amazon_shows_it(channel, seed):
    """A shipped FBA order as Amazon shows most of them: no packages, no buyer, an address of state, postcode and
    country only."""
    [order] = channel.generated_orders(1, seed=seed, status="SHIPPED", fulfilled_by="AMAZON")
    order.pop("packages", None)
    order.pop("buyer", None)
    address = order["recipient"]["deliveryAddress"]
    order["recipient"]["deliveryAddress"] = {
        k: address[k] for k in ("stateOrRegion", "postalCode", "countryCode") if k in address
    }
    return order


def test_fba_order_without_packages_ends_complete_and_is_never_shipped_twice(channel):
    merchant = Merchant(channel)
    order = fba_as_amazon_shows_it(channel, 81)
    channel.load_amazon_orders([order])
    assert_success(channel.run_dag("amazon_order_import"))
    assert "packages" not in channel.amazon_order(order["orderId"])
    _, shipment = assert_complete_with_one_trackless_shipment(channel, merchant, order)

    # later runs of both DAGs: still one shipment, nothing confirmed to Amazon
    for _ in range(2):
        assert_success(channel.run_dag("amazon_order_import"))
        assert_success(channel.run_dag(DAG, VERIFY_NOW))
    _, again = assert_complete_with_one_trackless_shipment(channel, merchant, order)
    assert again["entity_id"] == shipment["entity_id"]
    assert confirmations(channel) == [] and outbox(channel) == {}

    # the sandboxes reconciled against each other (as after a soak): every unit shipped once, none twice
    snap = Snapshot.take(channel)
    assert reconcile(snap, import_orders_after="2000-01-01T00:00:00Z")["shipments"] == {
        "processed": 1,
        "duplicates": 0,
        "missing": 0,
        "wrong": 0,
        "examples": [],
    }
    for item in snap.commerce_orders[0]["items"]:
        item["qty_shipped"] = 0  # as before this fix: the order created, never shipped
    assert reconcile(snap, import_orders_after="2000-01-01T00:00:00Z")["shipments"]["missing"] == 1


@pytest.mark.parametrize("when", ["shipped_before_import", "shipped_after_import"])
def test_seller_central_shipment_without_package_data_then_its_tracking(channel, when):
    """Merchant-fulfilled, confirmed in Seller Central without package data (before the import, or after it): one
    track-less shipment, complete. The package data Amazon shows later (a lost answer on the first try) puts its
    tracking on that shipment, once; no second shipment, no confirmation back to Amazon."""
    merchant = Merchant(channel)
    status = "SHIPPED" if when == "shipped_before_import" else "UNSHIPPED"
    order = next(
        o
        for o in channel.generated_orders(6, seed=83, status=status, fulfilled_by="MERCHANT")
        if sum(i["quantityOrdered"] for i in o["orderItems"]) >= 2
    )
    order.pop("packages", None)
    channel.load_amazon_orders([order])
    assert_success(channel.run_dag("amazon_order_import"))
    if status == "UNSHIPPED":
        assert commerce_order(channel, order["orderId"])["state"] == "processing"
        channel.amazon_event(order["orderId"], {"type": "ship", "packageData": False})
        assert_success(channel.run_dag("amazon_order_import"))  # stages the change
        assert_success(channel.run_dag(DAG, VERIFY_NOW))
    _, shipment = assert_complete_with_one_trackless_shipment(channel, merchant, order)

    channel.amazon_event(  # after the import's ship event: within its second (the same lastUpdatedTime)
        order["orderId"],
        {"type": "package_data", "packages": [{"carrier": "UPS", "trackingNumber": "1ZSCLATE01"}]},
        same_second=status == "UNSHIPPED",
    )
    channel.commerce_faults(fail_next=[{"route": "POST /V1/shipment/track", "kind": "commit_then_fail"}])
    assert_success(channel.run_dag("amazon_order_import"))
    assert_success(channel.run_dag(DAG, VERIFY_NOW))
    assert channel.commerce("GET", "/_sandbox/faults")["fail_next"] == []  # the track's answer was lost
    channel.commerce_faults()
    assert_success(channel.run_dag(DAG, VERIFY_NOW))
    commerce = commerce_order(channel, order["orderId"])
    [tracked] = merchant.shipments(commerce["entity_id"])
    assert tracked["entity_id"] == shipment["entity_id"] and commerce["state"] == "complete"
    assert [(t["track_number"], t["title"]) for t in tracked["tracks"]] == [("1ZSCLATE01", "UPS")]
    assert confirmations(channel) == []
    assert outbox(channel) == {}
