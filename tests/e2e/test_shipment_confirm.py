"""Issue 13 §3 and §4 end to end with dag.test(), against both sandboxes: Amazon's carrier codes, and an order
already shipped on Amazon (Seller Central) before its Commerce shipment is confirmed."""

from __future__ import annotations

import pytest

from tests.e2e.test_shipment_sync import (
    DAG,
    VERIFY_NOW,
    Merchant,
    all_items,
    assert_success,
    confirmations,
    import_merchant_orders,
    outbox,
    summary,
)
from tests.store_queries import open_mismatches

pytestmark = pytest.mark.e2e

SELLER_CENTRAL_TRACKING = "1Z999AA10123456784"


def sent_package(channel, shipment_id):
    [package] = [
        c["body"]["packageDetail"]
        for c in confirmations(channel)
        if c["body"]["packageDetail"]["packageReferenceId"] == str(shipment_id)
    ]
    return package


def test_carriers_on_amazons_list_by_title_and_unlisted_ones_as_other(channel):
    merchant = Merchant(channel)
    (listed, listed_c), (unlisted, unlisted_c) = import_merchant_orders(channel, 2, seed=91)
    royal = merchant.ship(
        listed_c["entity_id"], all_items(listed_c), "TT012345678GB", "custom", "Royal Mail Tracked 24"
    )
    hopper = merchant.ship(unlisted_c["entity_id"], all_items(unlisted_c), "PH-48-0001", "custom", "Parcel Hopper 48")

    assert_success(channel.run_dag(DAG, VERIFY_NOW))
    royal_pkg = sent_package(channel, royal)
    assert (royal_pkg["carrierCode"], royal_pkg["shippingMethod"]) == ("Royal Mail", "Tracked 24")
    assert royal_pkg["trackingNumber"] == "TT012345678GB" and "carrierName" not in royal_pkg
    hopper_pkg = sent_package(channel, hopper)
    assert (hopper_pkg["carrierCode"], hopper_pkg["carrierName"]) == ("Other", "Parcel Hopper 48")
    assert "shippingMethod" not in hopper_pkg
    # Amazon took both (its sandbox refuses a carrierCode outside its list) and shows them shipped.
    assert outbox(channel)[f"shipment:{royal}"]["status"] == "accepted"
    assert outbox(channel)[f"shipment:{hopper}"]["status"] == "accepted"
    packages = channel.amazon_order(listed["orderId"])["packages"]
    assert [(p["carrier"], p["trackingNumber"]) for p in packages] == [("Royal Mail", "TT012345678GB")]
    assert channel.amazon_order(unlisted["orderId"])["packages"][0]["carrier"] == "Parcel Hopper 48"


def ship_in_seller_central(channel, order, tracking):
    """The seller confirms the whole order in Seller Central with UPS and ``tracking``."""
    channel.amazon_event(
        order["orderId"],
        {
            "type": "ship",
            "packages": [
                {
                    "carrier": "UPS",
                    "trackingNumber": tracking,
                    "items": [
                        {"orderItemId": i["orderItemId"], "quantity": i["quantityOrdered"]} for i in order["orderItems"]
                    ],
                }
            ],
        },
    )


def test_already_shipped_on_amazon_with_the_same_tracking_is_accepted_and_nothing_sent(channel):
    merchant = Merchant(channel)
    [(order, commerce)] = import_merchant_orders(channel, 1, seed=93)
    # Seller Central first; then, before the next sync, the same shipment in Commerce. The staged copy of the
    # order predates both.
    ship_in_seller_central(channel, order, SELLER_CENTRAL_TRACKING)
    shipment = merchant.ship(commerce["entity_id"], all_items(commerce), SELLER_CENTRAL_TRACKING)

    assert_success(channel.run_dag(DAG, VERIFY_NOW))
    assert confirmations(channel) == []  # nothing sent: Amazon has it
    entry = outbox(channel)[f"shipment:{shipment}"]
    assert entry["status"] == "accepted" and "same tracking number" in entry["amazon_message"]
    assert summary(channel)["already_on_amazon"] == 1 and summary(channel)["rejected"] == 0
    assert not open_mismatches(channel.store)

    # The import stages Amazon's package; the sync does not copy it into a second Commerce shipment.
    assert_success(channel.run_dag("amazon_order_import"))
    assert_success(channel.run_dag(DAG, VERIFY_NOW))
    assert_success(channel.run_dag(DAG, VERIFY_NOW))
    assert [s["entity_id"] for s in merchant.shipments(commerce["entity_id"])] == [shipment]
    assert confirmations(channel) == [] and not open_mismatches(channel.store)


def test_already_shipped_on_amazon_with_another_tracking_is_one_mismatch_and_no_second_shipment(channel):
    merchant = Merchant(channel)
    [(order, commerce)] = import_merchant_orders(channel, 1, seed=95)
    ship_in_seller_central(channel, order, SELLER_CENTRAL_TRACKING)
    shipment = merchant.ship(commerce["entity_id"], all_items(commerce), "1ZCOMMERCE00000001")

    assert_success(channel.run_dag(DAG, VERIFY_NOW))
    assert confirmations(channel) == []
    [mismatch] = open_mismatches(channel.store)
    assert mismatch["kind"] == "shipment_tracking_differs" and mismatch["amazon_order_id"] == order["orderId"]
    assert SELLER_CENTRAL_TRACKING in mismatch["detail"] and "1ZCOMMERCE00000001" in mismatch["detail"]
    assert outbox(channel)[f"shipment:{shipment}"]["status"] == "skipped"

    assert_success(channel.run_dag("amazon_order_import"))
    assert_success(channel.run_dag(DAG, VERIFY_NOW))
    assert_success(channel.run_dag(DAG, VERIFY_NOW))
    assert [s["entity_id"] for s in merchant.shipments(commerce["entity_id"])] == [shipment]  # never a second
    assert confirmations(channel) == []
    assert [m["kind"] for m in open_mismatches(channel.store)] == ["shipment_tracking_differs"]  # still one
