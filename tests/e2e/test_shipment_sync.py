"""amazon_shipment_sync end to end with dag.test(), against both sandboxes.

Each Commerce shipment of a merchant-fulfilled Amazon order must reach Amazon exactly once
(checked on the Amazon sandbox's record of every confirmShipment it accepted), and every
Amazon-side shipment must exist once in Commerce.
"""

from __future__ import annotations

import time
from decimal import Decimal

import pytest
import requests

from tests.store_queries import audit_entries, open_mismatches, open_quarantine

pytestmark = pytest.mark.e2e

DAG = "amazon_shipment_sync"
VERIFY_NOW = {"mismatch_grace_minutes": 0}


def assert_success(states):
    failed = {k: v for k, v in states.items() if v not in ("success", "skipped")}
    assert not failed, failed


class Merchant:
    """What a merchant does in the Commerce admin: ship orders, over the REST API."""

    def __init__(self, channel):
        self.base = channel.commerce_url + "/rest/default"
        token = requests.post(
            self.base + "/V1/integration/admin/token",
            json={"username": "admin", "password": "sandbox-admin-password"},
            timeout=30,
        ).json()
        self.headers = {"Authorization": f"Bearer {token}"}

    def call(self, method, path, **kw):
        response = requests.request(method, self.base + path, headers=self.headers, timeout=30, **kw)
        assert response.ok, response.text
        return response.json()

    def ship(self, commerce_order_id, items, track_number, carrier_code="ups", title="United Parcel Service"):
        """``items``: ``[(commerce order item id, qty)]``; returns the shipment id."""
        body = {
            "items": [{"order_item_id": i, "qty": q} for i, q in items],
            "tracks": [{"track_number": track_number, "carrier_code": carrier_code, "title": title}],
        }
        return self.call("POST", f"/V1/order/{commerce_order_id}/ship", json=body)

    def shipments(self, commerce_order_id):
        params = {
            "searchCriteria[filter_groups][0][filters][0][field]": "order_id",
            "searchCriteria[filter_groups][0][filters][0][value]": commerce_order_id,
        }
        return self.call("GET", "/V1/shipments", params=params)["items"]


def confirmations(channel):
    return channel.amazon("GET", "/_sandbox/shipment-confirmations")["confirmations"]


def confirmed_refs(channel):
    """``[(order id, packageReferenceId)]`` of every confirmShipment Amazon accepted."""
    return sorted((c["orderId"], c["body"]["packageDetail"]["packageReferenceId"]) for c in confirmations(channel))


def import_merchant_orders(channel, count, seed, status="UNSHIPPED", min_units=1):
    """Import merchant-fulfilled orders with at least ``min_units`` units; returns them with their Commerce orders."""
    orders = [
        o
        for o in channel.generated_orders(count * 4, seed=seed, status=status, fulfilled_by="MERCHANT")
        if sum(i["quantityOrdered"] for i in o["orderItems"]) >= min_units
    ][:count]
    assert len(orders) == count
    channel.load_amazon_orders(orders)
    assert_success(channel.run_dag("amazon_order_import"))
    by_id = channel.commerce_orders_by_amazon_id()
    return [(o, by_id[o["orderId"]][0]) for o in orders]


def all_items(commerce_order):
    return [(int(i["item_id"]), int(Decimal(str(i["qty_ordered"])))) for i in commerce_order["items"]]


def outbox(channel):
    return {e["natural_key"]: e for e in channel.store.outbox.entries(kind="shipment_confirmation")}


def summary(channel):
    """The summaries returned by the last run's mapped sync tasks, added up."""
    total: dict[str, int] = {}
    for ti in channel.last_run.get_task_instances():
        if ti.task_id == "sync":
            value = ti.xcom_pull(task_ids="sync", map_indexes=ti.map_index)
            for key, n in (value or {}).items():
                if isinstance(n, int):
                    total[key] = total.get(key, 0) + n
    return total


def test_full_partial_and_unknown_carrier_shipments_are_confirmed_once(channel):
    merchant = Merchant(channel)
    (full, full_c), (partial, partial_c) = import_merchant_orders(channel, 2, seed=51, min_units=2)

    full_ship = merchant.ship(full_c["entity_id"], all_items(full_c), "1ZFULL0001")
    first_item, first_qty = all_items(partial_c)[0]
    rest = [(i, q) for i, q in all_items(partial_c)[1:]]
    if first_qty > 1:  # ship one unit of the first item now, the rest later
        rest.insert(0, (first_item, first_qty - 1))
    part_ship = merchant.ship(partial_c["entity_id"], [(first_item, 1)], "FX-PART-1", "fedex", "Federal Express")

    assert_success(channel.run_dag(DAG, VERIFY_NOW))
    got = {c["body"]["packageDetail"]["packageReferenceId"]: c for c in confirmations(channel)}
    assert set(got) == {str(full_ship), str(part_ship)}
    full_pkg = got[str(full_ship)]["body"]["packageDetail"]
    assert got[str(full_ship)]["orderId"] == full["orderId"]
    assert full_pkg["carrierCode"] == "UPS" and full_pkg["trackingNumber"] == "1ZFULL0001"
    assert "carrierName" not in full_pkg
    assert sorted((i["orderItemId"], i["quantity"]) for i in full_pkg["orderItems"]) == sorted(
        (i["orderItemId"], i["quantityOrdered"]) for i in full["orderItems"]
    )
    part_pkg = got[str(part_ship)]["body"]["packageDetail"]
    amazon_first = next(i["ext_order_item_id"] for i in partial_c["items"] if int(i["item_id"]) == first_item)
    assert part_pkg["carrierCode"] == "FedEx"
    assert part_pkg["orderItems"] == [{"orderItemId": amazon_first, "quantity": 1}]
    assert channel.amazon_order(full["orderId"])["fulfillment"]["fulfillmentStatus"] == "SHIPPED"
    assert channel.amazon_order(partial["orderId"])["fulfillment"]["fulfillmentStatus"] == "PARTIALLY_SHIPPED"
    entries = outbox(channel)
    assert entries[f"shipment:{full_ship}"]["status"] == "accepted"
    assert "SHIPPED" in entries[f"shipment:{full_ship}"]["amazon_message"]
    assert "PARTIALLY_SHIPPED" in entries[f"shipment:{part_ship}"]["amazon_message"]
    assert summary(channel)["confirmed"] == 2 and summary(channel)["verified"] == 2

    # The rest of the partial order goes with a carrier Amazon does not know: "Other" + carrierName.
    rest_ship = merchant.ship(partial_c["entity_id"], rest, "SPD-777", "custom", "Speedy Couriers")
    assert_success(channel.run_dag(DAG, VERIFY_NOW))
    rest_pkg = next(
        c["body"]["packageDetail"]
        for c in confirmations(channel)
        if c["body"]["packageDetail"]["packageReferenceId"] == str(rest_ship)
    )
    assert rest_pkg["carrierCode"] == "Other" and rest_pkg["carrierName"] == "Speedy Couriers"
    assert channel.amazon_order(partial["orderId"])["fulfillment"]["fulfillmentStatus"] == "SHIPPED"

    # The import stages Amazon's new packages; they are ours, so nothing is mirrored back to Commerce,
    # and reruns send nothing again.
    assert_success(channel.run_dag("amazon_order_import"))
    assert_success(channel.run_dag(DAG, VERIFY_NOW))
    assert_success(channel.run_dag(DAG, VERIFY_NOW))
    assert len(confirmations(channel)) == 3
    assert len(merchant.shipments(full_c["entity_id"])) == 1
    assert len(merchant.shipments(partial_c["entity_id"])) == 2
    assert summary(channel)["mirrored"] == 0 and summary(channel)["confirmed"] == 0
    assert not open_mismatches(channel.store)


def test_fba_and_seller_central_shipments_reach_commerce_and_are_not_confirmed_back(channel):
    merchant = Merchant(channel)
    fba = channel.generated_orders(1, seed=61, status="SHIPPED", fulfilled_by="AMAZON")
    channel.load_amazon_orders(fba)
    [(seller_central, sc_c)] = import_merchant_orders(channel, 1, seed=62, min_units=2)
    fba_c = channel.commerce_orders_by_amazon_id()[fba[0]["orderId"]][0]

    # The merchant ships in Seller Central: one unit first, the rest later, each with tracking.
    first = seller_central["orderItems"][0]
    channel.amazon_event(
        seller_central["orderId"],
        {
            "type": "ship",
            "packages": [
                {
                    "carrier": "USPS",
                    "trackingNumber": "9400SC0001",
                    "items": [{"orderItemId": first["orderItemId"], "quantity": 1}],
                }
            ],
        },
    )
    assert_success(channel.run_dag("amazon_order_import"))  # stages the change
    assert_success(channel.run_dag(DAG, VERIFY_NOW))
    [mirrored] = merchant.shipments(sc_c["entity_id"])
    assert [t["track_number"] for t in mirrored["tracks"]] == ["9400SC0001"]
    assert [(i["order_item_id"], Decimal(str(i["qty"]))) for i in mirrored["items"]] == [
        (next(int(i["item_id"]) for i in sc_c["items"] if i["ext_order_item_id"] == first["orderItemId"]), 1)
    ]
    assert summary(channel)["mirrored"] == 1

    channel.amazon_event(seller_central["orderId"], {"type": "ship"})  # everything left
    assert_success(channel.run_dag("amazon_order_import"))
    assert_success(channel.run_dag(DAG, VERIFY_NOW))
    assert_success(channel.run_dag(DAG, VERIFY_NOW))
    shipments = merchant.shipments(sc_c["entity_id"])
    assert len(shipments) == 2
    commerce_order = channel.commerce("GET", "/_sandbox/orders")["items"]
    sc_now = next(o for o in commerce_order if o["entity_id"] == sc_c["entity_id"])
    assert all(Decimal(str(i["qty_shipped"])) == Decimal(str(i["qty_ordered"])) for i in sc_now["items"])

    # The FBA order's shipment was made by the import although Amazon shows no package (FBA orders have none):
    # exactly one, of every unit, without a track, the order complete; not confirmed back, not shipped again.
    assert "packages" not in channel.amazon_order(fba[0]["orderId"])
    [fba_shipment] = merchant.shipments(fba_c["entity_id"])
    assert fba_shipment["tracks"] == [] and fba_c["state"] == "complete"
    assert sum(Decimal(str(i["qty"])) for i in fba_shipment["items"]) == sum(
        i["quantityOrdered"] for i in fba[0]["orderItems"]
    )
    assert confirmations(channel) == []
    assert outbox(channel) == {}


def test_rejections_ignored_and_held_shipments(channel):
    merchant = Merchant(channel)
    (cancelled, cancelled_c), (good, good_c), (held, held_c) = import_merchant_orders(channel, 3, seed=71)

    # Amazon cancels one order after it was shipped in Commerce: Amazon answers 400.
    channel.amazon_event(cancelled["orderId"], {"type": "cancel"})
    rejected_ship = merchant.ship(cancelled_c["entity_id"], all_items(cancelled_c), "1ZREJ0001")
    good_ship = merchant.ship(good_c["entity_id"], all_items(good_c), "1ZGOOD0001")

    # A Commerce order that is not an Amazon order: its shipment is ignored.
    other = merchant.call(
        "POST",
        "/V1/orders",
        json={
            "entity": {
                "customer_email": "shop@example.com",
                "grand_total": 10,
                "base_grand_total": 10,
                "payment": {"method": "checkmo"},
                "items": [{"sku": good_c["items"][0]["sku"], "qty_ordered": 1, "price": 10}],
            }
        },
    )
    merchant.ship(other["entity_id"], [(int(other["items"][0]["item_id"]), 1)], "1ZOTHER001")

    # An order the import has not finished (waiting): its shipment is held until it has.
    channel.store.orders.set_sync(held["orderId"], "waiting")
    held_ship = merchant.ship(held_c["entity_id"], all_items(held_c), "1ZHELD0001")

    assert_success(channel.run_dag(DAG, VERIFY_NOW))
    entries = outbox(channel)
    rejected = entries[f"shipment:{rejected_ship}"]
    assert rejected["status"] == "rejected" and "cancelled" in rejected["amazon_message"]
    assert entries[f"shipment:{good_ship}"]["status"] == "accepted"
    assert entries[f"shipment:{held_ship}"]["status"] == "waiting"
    assert len(entries) == 3  # nothing for the non-Amazon order
    run = summary(channel)
    assert (run["confirmed"], run["rejected"], run["waiting"], run["ignored_not_amazon"]) == (1, 1, 1, 1)
    assert confirmed_refs(channel) == [(good["orderId"], str(good_ship))]

    # The import finishes the held order: its shipment goes on the next run; the rejected one stays rejected.
    channel.store.orders.set_sync(held["orderId"], "imported")
    assert_success(channel.run_dag(DAG, VERIFY_NOW))
    assert outbox(channel)[f"shipment:{held_ship}"]["status"] == "accepted"
    assert outbox(channel)[f"shipment:{rejected_ship}"]["status"] == "rejected"
    assert confirmed_refs(channel) == sorted([(good["orderId"], str(good_ship)), (held["orderId"], str(held_ship))])


def minutes_ago(n):
    from datetime import UTC, datetime, timedelta

    return (datetime.now(UTC) - timedelta(minutes=n)).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_unshipped_after_confirmation_is_a_mismatch(channel):
    merchant = Merchant(channel)
    [(order, commerce)] = import_merchant_orders(channel, 1, seed=81)
    ship = merchant.ship(commerce["entity_id"], all_items(commerce), "1ZMIS0001")
    # The import stages the order again after the Commerce shipment, so the sync sends without reading the
    # order first; the read-back fails on this run, so the confirmation stays to be verified ...
    # (staged at least a second after the shipment: its shipDate is to the second, and a copy staged within that
    # second counts as older than the shipment, so the sync would read Amazon's first)
    time.sleep(2)
    channel.load_amazon_orders([{**order, "lastUpdatedTime": minutes_ago(3)}])
    assert_success(channel.run_dag("amazon_order_import"))
    channel.amazon_faults(error_rate=1.0, operations=["getOrder"])
    assert_success(channel.run_dag(DAG, VERIFY_NOW))
    channel.amazon_faults()
    assert outbox(channel)[f"shipment:{ship}"]["status"] == "confirmed"
    # ... and meanwhile Amazon lost it: the order is back to unshipped.
    channel.load_amazon_orders([order])
    assert_success(channel.run_dag(DAG, VERIFY_NOW))
    [mismatch] = open_mismatches(channel.store)
    assert mismatch["kind"] == "shipment_not_reflected" and mismatch["amazon_order_id"] == order["orderId"]
    assert summary(channel)["mismatches"] == 1
    assert len(confirmations(channel)) == 1


def test_5xx_and_lost_answers_never_confirm_twice(channel):
    merchant = Merchant(channel)
    pairs = import_merchant_orders(channel, 3, seed=91)
    ships = {o["orderId"]: merchant.ship(c["entity_id"], all_items(c), f"1ZF{n:07d}") for n, (o, c) in enumerate(pairs)}

    channel.amazon_faults(error_rate=1.0, operations=["confirmShipment"])
    assert_success(channel.run_dag(DAG, VERIFY_NOW))
    channel.amazon_faults()
    assert confirmations(channel) == []
    assert {e["status"] for e in outbox(channel).values()} == {"sending"}  # outcome unknown
    assert summary(channel)["retry_later"] == 3

    # Suppose Amazon had in fact taken the first one before its answer was lost.
    landed, commerce = pairs[0]
    channel.amazon_event(
        landed["orderId"],
        {
            "type": "ship",
            "packages": [
                {
                    "packageReferenceId": str(ships[landed["orderId"]]),
                    "carrier": "UPS",
                    "trackingNumber": "1ZF0000000",
                    "items": [
                        {"orderItemId": i["orderItemId"], "quantity": i["quantityOrdered"]}
                        for i in landed["orderItems"]
                    ],
                }
            ],
        },
    )
    assert_success(channel.run_dag(DAG, VERIFY_NOW))
    assert confirmed_refs(channel) == sorted((o["orderId"], str(ships[o["orderId"]])) for o, _ in pairs[1:])
    assert {e["status"] for e in outbox(channel).values()} == {"accepted"}
    assert summary(channel)["recovered_after_lost_answer"] == 1

    # The import sees Amazon's packages; nothing goes back to Commerce and nothing is sent again.
    assert_success(channel.run_dag("amazon_order_import"))
    assert_success(channel.run_dag(DAG, VERIFY_NOW))
    assert len(confirmations(channel)) == 2
    assert all(len(merchant.shipments(c["entity_id"])) == 1 for _, c in pairs)


def test_429_storm_sends_each_confirmation_once(channel):
    merchant = Merchant(channel)
    pairs = import_merchant_orders(channel, 12, seed=101)
    for n, (_, commerce) in enumerate(pairs):
        merchant.ship(commerce["entity_id"], all_items(commerce), f"1ZQ{n:07d}")

    # Amazon's confirmShipment bucket (burst 10) refills almost never: the rest get 429.
    channel.amazon("POST", "/_sandbox/settings", json={"speed": 0.0001})
    assert_success(channel.run_dag(DAG, VERIFY_NOW))
    first = len(confirmations(channel))
    assert 0 < first < 12
    statuses = [e["status"] for e in outbox(channel).values()]
    assert statuses.count("pending") == 12 - first  # a 429 is known not to have been processed
    channel.amazon("POST", "/_sandbox/settings", json={"speed": 100})
    assert_success(channel.run_dag(DAG, VERIFY_NOW))
    refs = confirmed_refs(channel)
    assert len(refs) == 12 and len(set(refs)) == 12
    assert {e["status"] for e in outbox(channel).values()} == {"accepted"}


@pytest.mark.parametrize("tracking", [True, False], ids=["with-tracking", "without-tracking"])
def test_commit_then_fail_in_commerce_mirrors_once(channel, tracking):
    """The Commerce shipment of an Amazon package is found again after a lost answer, by its tracking number or,
    for a package Amazon gave none (found by the soak), by the package key in its comment."""
    merchant = Merchant(channel)
    [(order, commerce)] = import_merchant_orders(channel, 1, seed=111)
    items = [{"orderItemId": i["orderItemId"], "quantity": int(i["quantityOrdered"])} for i in order["orderItems"]]
    package = {"carrier": "UPS", "items": items, **({"trackingNumber": "1ZNOLOSS0001"} if tracking else {})}
    channel.amazon_event(order["orderId"], {"type": "ship", "packages": [package]})  # shipped in Seller Central
    assert_success(channel.run_dag("amazon_order_import"))
    channel.commerce_faults(fail_next=[{"route": "POST /V1/order/*/ship", "kind": "commit_then_fail", "count": 1}])
    channel.run_dag(DAG, VERIFY_NOW)
    channel.commerce_faults()
    assert_success(channel.run_dag(DAG, VERIFY_NOW))
    [shipment] = merchant.shipments(commerce["entity_id"])
    assert [c["comment"] for c in shipment["comments"]] == [
        f"Shipped on Amazon's side: package 1 [ship:{order['orderId']}:1]"
    ]
    assert confirmations(channel) == []
    assert outbox(channel) == {}


def test_amazon_package_of_an_order_closed_in_commerce_is_recorded_not_quarantined(channel):
    """Refunded in full in Commerce before Amazon's package is mirrored (found by the soak): Magento cannot ship a
    closed order, so the package is recorded as not mirrored, once, and nothing is quarantined or retried."""
    merchant = Merchant(channel)
    [(order, commerce)] = import_merchant_orders(channel, 1, seed=117)
    lines = [{"order_item_id": i, "qty": q} for i, q in all_items(commerce)]
    merchant.call(
        "POST",
        f"/V1/order/{commerce['entity_id']}/refund",
        json={"items": lines, "arguments": {"shipping_amount": str(commerce["base_shipping_invoiced"])}},
    )
    channel.amazon_event(order["orderId"], {"type": "ship"})  # shipped in Seller Central all the same
    assert_success(channel.run_dag("amazon_order_import"))
    assert_success(channel.run_dag(DAG, VERIFY_NOW))
    assert merchant.shipments(commerce["entity_id"]) == []
    [entry] = audit_entries(channel.store, action="amazon_shipment_not_mirrored")
    assert entry["entity_id"] == order["orderId"] and entry["detail"]["commerce_state"] == "closed"
    assert open_quarantine(channel.store) == [] and open_mismatches(channel.store) == []
    ship_calls = channel.commerce("GET", "/_sandbox/stats")["calls"].get("POST /V1/order/{order_id}/ship", 0)
    assert ship_calls >= 1  # it was tried once
    assert_success(channel.run_dag(DAG, VERIFY_NOW))
    assert_success(channel.run_dag("amazon_order_import"))
    assert channel.commerce("GET", "/_sandbox/stats")["calls"].get("POST /V1/order/{order_id}/ship", 0) == ship_calls
    assert len(audit_entries(channel.store, action="amazon_shipment_not_mirrored")) == 1
