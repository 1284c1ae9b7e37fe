"""The pure parts of the shipment sync: carrier mapping, confirmShipment packages, Magento times."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from amazon_commerce_sync.settings import DEFAULT_CARRIER_MAP
from amazon_commerce_sync.shipments import (
    Hold,
    Refuse,
    amazon_carrier,
    amazon_package_refs,
    package_detail,
    shipped_on_amazon,
)
from amazon_commerce_sync.times import parse_time


@pytest.mark.parametrize(
    ("track", "expected"),
    [
        ({"carrier_code": "ups", "title": "United Parcel Service"}, ("UPS", None, None)),
        ({"carrier_code": "fedex", "title": "Federal Express"}, ("FedEx", None, None)),
        ({"carrier_code": "custom", "title": "Royal Mail"}, ("Royal Mail", None, None)),  # by title
        ({"carrier_code": "custom", "title": "Royal Mail Tracked 24"}, ("Royal Mail", None, "Tracked 24")),
        ({"carrier_code": "custom", "title": "DHL Express"}, ("DHL Express", None, None)),  # on Amazon's list
        ({"carrier_code": "custom", "title": "Speedy Couriers"}, ("Other", "Speedy Couriers", None)),
        ({"carrier_code": "tablerate", "title": ""}, ("Other", "tablerate", None)),
        ({"carrier_code": "custom", "title": "custom"}, ("Other", "custom", None)),
    ],
)
def test_amazon_carrier(track, expected):
    match = amazon_carrier(track, DEFAULT_CARRIER_MAP)
    assert (match.carrier_code, match.carrier_name, match.shipping_method) == expected


def test_account_carrier_map_wins():
    match = amazon_carrier({"carrier_code": "custom", "title": "Speedy"}, {"speedy": "Yodel"})
    assert (match.carrier_code, match.carrier_name) == ("Yodel", None)


SHIPMENT = {
    "entity_id": 42,
    "order_id": 7,
    "created_at": "2026-03-01 10:20:30",
    "items": [
        {"order_item_id": 11, "sku": "A", "qty": 2},
        {"order_item_id": 12, "sku": "B", "qty": "1.0000"},
        {"order_item_id": 13, "sku": "C", "qty": 0},
    ],
    "tracks": [{"track_number": " 1Z999 ", "carrier_code": "ups", "title": "UPS"}],
}
ITEMS = {11: "111", 12: "222", 13: "333"}


def test_package_detail_maps_items_and_tracking():
    assert package_detail(SHIPMENT, ITEMS, DEFAULT_CARRIER_MAP) == {
        "packageReferenceId": "42",
        "carrierCode": "UPS",
        "trackingNumber": "1Z999",
        "shipDate": "2026-03-01T10:20:30Z",
        "orderItems": [{"orderItemId": "111", "quantity": 2}, {"orderItemId": "222", "quantity": 1}],
    }


def test_package_detail_sends_the_service_as_shipping_method():
    shipment = {
        **SHIPMENT,
        "tracks": [{"track_number": "TT012345678GB", "carrier_code": "custom", "title": "Royal Mail Tracked 24"}],
    }
    detail = package_detail(shipment, ITEMS, DEFAULT_CARRIER_MAP)
    assert (detail["carrierCode"], detail["shippingMethod"]) == ("Royal Mail", "Tracked 24")
    assert "carrierName" not in detail


def test_package_detail_holds_without_tracking_and_refuses_foreign_items():
    with pytest.raises(Hold, match="tracking"):
        package_detail({**SHIPMENT, "tracks": [{"track_number": ""}]}, ITEMS, DEFAULT_CARRIER_MAP)
    with pytest.raises(Refuse, match="Commerce order item 12"):
        package_detail(SHIPMENT, {11: "111"}, DEFAULT_CARRIER_MAP)
    with pytest.raises(Refuse, match="whole number"):
        package_detail({**SHIPMENT, "items": [{"order_item_id": 11, "qty": "1.5"}]}, ITEMS, DEFAULT_CARRIER_MAP)
    with pytest.raises(Refuse, match="no quantity"):
        package_detail({**SHIPMENT, "items": [{"order_item_id": 11, "qty": 0}]}, ITEMS, DEFAULT_CARRIER_MAP)


def test_parse_time_reads_magento_and_iso_times_as_utc():
    want = datetime(2026, 3, 1, 10, 20, 30, tzinfo=UTC)
    assert parse_time("2026-03-01 10:20:30") == want
    assert parse_time("2026-03-01T10:20:30Z") == want
    assert parse_time("2026-03-01T12:20:30+02:00") == want


def test_amazon_package_refs_skips_cancelled_packages():
    order = {
        "packages": [
            {"packageReferenceId": "1", "trackingNumber": "T1", "packageStatus": {"status": "SHIPPED"}},
            {"packageReferenceId": "2", "packageStatus": {"status": "CANCELLED"}},
            {"packageReferenceId": 3},
        ]
    }
    assert amazon_package_refs(order) == {"1": "T1", "3": ""}


def amazon_order(*packages, unfulfilled=None):
    """An Orders 2026-01-01 order of item A (2 units) and B (1 unit) with ``packages``."""
    items = [{"orderItemId": "A", "quantityOrdered": 2}, {"orderItemId": "B", "quantityOrdered": 1}]
    if unfulfilled is not None:
        for item in items:
            item["fulfillment"] = {"quantityUnfulfilled": unfulfilled[item["orderItemId"]]}
    return {"orderItems": items, "packages": list(packages)}


def amazon_pkg(ref, tracking, *items, status="SHIPPED"):
    return {
        "packageReferenceId": ref,
        "trackingNumber": tracking,
        "packageStatus": {"status": status},
        "packageItems": [{"orderItemId": i, "quantity": q} for i, q in items],
    }


OURS = {
    "packageReferenceId": "42",
    "trackingNumber": "1Z999AA10123456784",
    "orderItems": [{"orderItemId": "A", "quantity": 2}],
}


@pytest.mark.parametrize(
    ("order", "ours", "expected"),
    [
        # Nothing on Amazon yet: send.
        (amazon_order(), set(), None),
        # Seller Central shipped A with the same tracking: already confirmed.
        (
            amazon_order(amazon_pkg("1", "1Z999AA10123456784", ("A", 2))),
            set(),
            (True, ("1",), ("1Z999AA10123456784",)),
        ),
        # ... under the very reference our package would have (Seller Central numbers its packages too).
        (
            amazon_order(amazon_pkg("42", "1Z999AA10123456784", ("A", 2))),
            set(),
            (True, ("42",), ("1Z999AA10123456784",)),
        ),
        # ... but a package we sent ourselves is ours, not someone else's.
        (amazon_order(amazon_pkg("42", "1Z999AA10123456784", ("A", 2))), {"42"}, None),
        # Another tracking number for A's units: they are no longer unshipped.
        (amazon_order(amazon_pkg("1", "1ZOTHER", ("A", 2))), set(), (False, ("1",), ("1ZOTHER",))),
        # Another tracking number for one unit of A: the other unit and ours do not fit.
        (amazon_order(amazon_pkg("1", "1ZOTHER", ("A", 1))), set(), (False, ("1",), ("1ZOTHER",))),
        # FULFILLMENT data says both units of A are still unfulfilled (e.g. a package being prepared): send.
        (amazon_order(amazon_pkg("1", "1ZOTHER", ("A", 1)), unfulfilled={"A": 2, "B": 1}), set(), None),
        # Only B shipped elsewhere, or a cancelled package: A can still be confirmed.
        (amazon_order(amazon_pkg("1", "1ZOTHER", ("B", 1))), set(), None),
        (amazon_order(amazon_pkg("1", "1ZOTHER", ("A", 2), status="CANCELLED")), set(), None),
    ],
)
def test_shipped_on_amazon(order, ours, expected):
    found = shipped_on_amazon(OURS, order, ours)
    assert (found and (found.same_tracking, found.references, found.tracking_numbers)) == expected
