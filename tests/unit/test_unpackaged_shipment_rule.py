"""The rule for units Amazon shipped without package data (``shipments.plan_mirror``), table-driven.

Amazon's own FBA example (order 250-1234567-8901234 in the Orders API 2026-01-01 model) has no ``packages``:
it must still give one shipment of every shipped unit; packages that appear later go on that shipment as tracks.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from amazon_commerce_sync.shipments import (
    MirrorPlan,
    Package,
    UnpackagedShipment,
    plan_mirror,
    shipped_quantities,
    unpackaged_units,
)

MODEL = Path(__file__).resolve().parents[2] / "reference/sp-api/models/orders_2026-01-01.json"


def amazon_fba_example():
    """Amazon's FBA example order, as the model publishes it."""
    text = MODEL.read_text()
    start = text.index('"orderId": "250-1234567-8901234"')
    decoder = json.JSONDecoder()
    begin = text.rindex("{", 0, start)
    order, _ = decoder.raw_decode(text, begin)
    return order


def test_amazons_fba_example_ships_every_unit_without_package():
    order = amazon_fba_example()
    assert order["fulfillment"]["fulfilledBy"] == "AMAZON" and "packages" not in order
    plan = plan_mirror(order, None)
    assert plan == MirrorPlan({"25012345678901": 1, "25012345678902": 2}, (), ())


def item(item_id, ordered, fulfilled=None):
    out = {"orderItemId": item_id, "quantityOrdered": ordered}
    if fulfilled is not None:
        out["fulfillment"] = {"quantityFulfilled": fulfilled, "quantityUnfulfilled": ordered - fulfilled}
    return out


def package(ref, items, tracking="", status="SHIPPED"):
    return {
        "packageReferenceId": ref,
        "carrier": "UPS",
        "trackingNumber": tracking,
        "packageStatus": {"status": status},
        "packageItems": [{"orderItemId": i, "quantity": q} for i, q in items],
    }


def order(status, items, packages=None):
    out = {"fulfillment": {"fulfillmentStatus": status}, "orderItems": items}
    if packages is not None:
        out["packages"] = packages
    return out


def pkg(ref, items, tracking=""):
    return Package(ref, "UPS", tracking, tuple(items))


A, B = "A1", "B2"
SHIPPED_NO_DATA = order("SHIPPED", [item(A, 2, 2), item(B, 1, 1)])
MADE = UnpackagedShipment(shipment_id=900, items={A: 2, B: 1}, packages_before=frozenset())


@pytest.mark.parametrize(
    ("amazon", "made", "expected"),
    [
        # FBA / Seller Central without package data: one shipment of every shipped unit, no track
        (SHIPPED_NO_DATA, None, MirrorPlan({A: 2, B: 1}, (), ())),
        # items without fulfillment counts on a SHIPPED order: every ordered unit
        (order("SHIPPED", [item(A, 3)]), None, MirrorPlan({A: 3}, (), ())),
        # unshipped: nothing
        (order("UNSHIPPED", [item(A, 2, 0)]), None, MirrorPlan({}, (), ())),
        # partly shipped without data: only the shipped units
        (order("PARTIALLY_SHIPPED", [item(A, 2, 1), item(B, 1, 0)]), None, MirrorPlan({A: 1}, (), ())),
        # every unit in a package: one shipment per package, nothing track-less
        (
            order("SHIPPED", [item(A, 2, 2)], [package("1", [(A, 2)], "1Z1")]),
            None,
            MirrorPlan({}, (pkg("1", [(A, 2)], "1Z1"),), ()),
        ),
        # some units in a package, the rest without data: the package and one track-less shipment
        (
            order("SHIPPED", [item(A, 2, 2), item(B, 1, 1)], [package("1", [(A, 1)], "1Z1")]),
            None,
            MirrorPlan({A: 1, B: 1}, (pkg("1", [(A, 1)], "1Z1"),), ()),
        ),
        # a cancelled package carries nothing
        (
            order("SHIPPED", [item(A, 1, 1)], [package("1", [(A, 1)], "1Z1", status="CANCELLED")]),
            None,
            MirrorPlan({A: 1}, (), ()),
        ),
        # package data arrives later for the units the track-less shipment holds: a track on it, no shipment
        (
            order("SHIPPED", [item(A, 2, 2), item(B, 1, 1)], [package("1", [(A, 2), (B, 1)], "1ZLATE")]),
            MADE,
            MirrorPlan({}, (), (pkg("1", [(A, 2), (B, 1)], "1ZLATE"),)),
        ),
        # two packages later: both tracks on the one shipment
        (
            order(
                "SHIPPED",
                [item(A, 2, 2), item(B, 1, 1)],
                [package("1", [(A, 2)], "1ZA"), package("2", [(B, 1)], "1ZB")],
            ),
            MADE,
            MirrorPlan({}, (), (pkg("1", [(A, 2)], "1ZA"), pkg("2", [(B, 1)], "1ZB"))),
        ),
        # a later package without a tracking number: nothing to add
        (order("SHIPPED", [item(A, 2, 2), item(B, 1, 1)], [package("1", [(A, 2)])]), MADE, MirrorPlan({}, (), ())),
        # units beyond what the track-less shipment holds (shipped since): those only get a shipment
        (
            order("SHIPPED", [item(A, 3, 3), item(B, 1, 1)], [package("1", [(A, 3)], "1ZX")]),
            MADE,
            MirrorPlan({}, (pkg("1", [(A, 1)], "1ZX"),), (pkg("1", [(A, 2)], "1ZX"),)),
        ),
        # partly shipped without data, then the other unit shipped with a package: a new shipment, not a track
        (
            order("SHIPPED", [item(A, 2, 2)], [package("1", [(A, 1)], "1ZNEXT")]),
            UnpackagedShipment(900, {A: 1}, frozenset()),
            MirrorPlan({}, (pkg("1", [(A, 1)], "1ZNEXT"),), ()),
        ),
        # ... whereas package data for the unit already shipped goes on its shipment
        (
            order("PARTIALLY_SHIPPED", [item(A, 2, 1)], [package("1", [(A, 1)], "1ZFIRST")]),
            UnpackagedShipment(900, {A: 1}, frozenset()),
            MirrorPlan({}, (), (pkg("1", [(A, 1)], "1ZFIRST"),)),
        ),
        # packages shown when the track-less shipment was made were shipped on their own
        (
            order(
                "SHIPPED",
                [item(A, 2, 2), item(B, 1, 1)],
                [package("1", [(A, 1)], "1Z1"), package("2", [(A, 1)], "1Z2")],
            ),
            UnpackagedShipment(900, {A: 1, B: 1}, frozenset({"1"})),
            MirrorPlan({}, (pkg("1", [(A, 1)], "1Z1"),), (pkg("2", [(A, 1)], "1Z2"),)),
        ),
        # Magento could not ship the units (order closed): no shipment to put a track on
        (
            order("SHIPPED", [item(A, 2, 2), item(B, 1, 1)], [package("1", [(A, 2)], "1ZA")]),
            UnpackagedShipment(None, {A: 2, B: 1}, frozenset()),
            MirrorPlan({}, (), ()),
        ),
    ],
)
def test_plan_mirror(amazon, made, expected):
    assert plan_mirror(amazon, made) == expected


def test_confirmed_from_commerce_are_excluded():
    amazon = order("SHIPPED", [item(A, 2, 2)], [package("55", [(A, 2)], "1ZOURS")])
    assert plan_mirror(amazon, None, exclude=frozenset({"55"})) == MirrorPlan({}, (), ())


def test_shipped_and_unpackaged_units():
    amazon = order("SHIPPED", [item(A, 2, 2), item(B, 1, 1)], [package("1", [(A, 1)], "1Z1")])
    assert shipped_quantities(amazon) == {A: 2, B: 1}
    assert unpackaged_units(amazon) == {A: 1, B: 1}
