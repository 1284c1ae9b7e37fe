"""Every shared order operation against the Commerce sandbox, with the answer lost after Commerce committed.

``commit_then_fail`` makes the sandbox apply and persist the write, then answer 500: the client cannot
tell whether it happened. Each operation must look again, find its effect, record it once, and never
write it a second time (a second call answers from the intent log without a request). Writes the hook
itself retries (hold, cancel, source items, order address) get the commit followed by errors until the
hook gives up, so that the lost answer reaches the protocol.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from amazon_commerce_sync import shipments
from amazon_commerce_sync.commerce_writes import keys, orders
from amazon_commerce_sync.commerce_writes.protocol import Source
from amazon_commerce_sync.commerce_writes.refunds import OfflineRefund, refund_offline
from amazon_commerce_sync.commerce_writes.shipments import (
    add_package_track,
    ship_amazon_packages,
    ship_unpackaged,
    unpackaged_shipment,
)
from amazon_commerce_sync.commerce_writes.stock import PageStockOut, StockMoves, plan_move
from amazon_commerce_sync.errors import BadRequestError, RetriableError
from amazon_commerce_sync.store import WriteStatus

HOOK_GIVES_UP = ("error", 20)  # more 5xx than the hook's retry policy makes attempts


def created(shop, store, seed: int, **kw) -> tuple[str, dict, int]:
    """An Amazon order created in Commerce through the protocol: (Amazon id, Amazon order, Commerce id)."""
    order = shop.amazon_order(seed, fulfilled_by="MERCHANT", status="UNSHIPPED", **kw)
    result = orders.create_order(shop.hook, store, order["orderId"], shop.entity(order), [])
    return order["orderId"], order, int(result.done.entity_id)


def assert_recorded_once(store, key: keys.WriteKey) -> dict:
    row = store.writes.get(key.natural_key)
    assert row is not None and row["status"] == WriteStatus.DONE, row
    return row


def test_create_order_found_after_a_lost_answer_and_never_created_twice(shop, state_store):
    order = shop.amazon_order(1, fulfilled_by="MERCHANT", status="UNSHIPPED")
    shop.fail_next("POST /V1/orders", ("commit_then_fail", 1))
    result = orders.create_order(shop.hook, state_store, order["orderId"], shop.entity(order), [])
    assert result.source is Source.RECOVERED and result.effected_now
    [commerce] = shop.orders_with(order["orderId"])
    assert int(result.done.entity_id) == commerce["entity_id"] and result.value["items"]
    assert assert_recorded_once(state_store, keys.create_order(order["orderId"]))["commerce_entity_id"] == str(
        commerce["entity_id"]
    )
    again = orders.create_order(shop.hook, state_store, order["orderId"], shop.entity(order), [])
    assert again.source is Source.RECORDED and len(shop.orders_with(order["orderId"])) == 1


def test_create_order_adopts_an_order_made_without_us_and_forgets_a_refused_one(shop, state_store):
    order = shop.amazon_order(2, fulfilled_by="MERCHANT", status="UNSHIPPED")
    made = shop.hook.create_order(shop.entity(order))  # e.g. a run that died before recording its intent
    found = shop.hook.find_orders_by_ext_order_ids([order["orderId"]])[order["orderId"]]
    result = orders.create_order(shop.hook, state_store, order["orderId"], shop.entity(order), found)
    assert result.source is Source.FOUND and int(result.done.entity_id) == made["entity_id"]
    assert len(shop.orders_with(order["orderId"])) == 1

    refused = shop.amazon_order(3, fulfilled_by="MERCHANT", status="UNSHIPPED")
    entity = {**shop.entity(refused), "items": []}  # Magento refuses an order without items
    with pytest.raises(BadRequestError):
        orders.create_order(shop.hook, state_store, refused["orderId"], entity, [])
    assert state_store.writes.get(keys.create_order(refused["orderId"]).natural_key) is None  # may be tried again


def test_invoice_once_after_a_lost_answer(shop, state_store):
    order_id, _, commerce_id = created(shop, state_store, 4)
    shop.fail_next("POST /V1/order/*/invoice", ("commit_then_fail", 1))
    result = orders.invoice(shop.hook, state_store, order_id, commerce_id, fresh=True)
    assert result.source is Source.RECOVERED
    assert len(shop.documents_of("invoices", commerce_id)) == 1
    assert_recorded_once(state_store, keys.invoice(order_id))
    assert orders.invoice(shop.hook, state_store, order_id, commerce_id, fresh=False).source is Source.RECORDED
    assert len(shop.documents_of("invoices", commerce_id)) == 1


def test_hold_once_after_a_lost_answer(shop, state_store):
    order_id, _, commerce_id = created(shop, state_store, 5)
    shop.fail_next("POST /V1/orders/*/hold", ("commit_then_fail", 1), HOOK_GIVES_UP)
    result = orders.hold(shop.hook, state_store, order_id, commerce_id)
    assert result.source is Source.RECOVERED
    assert shop.state.orders[commerce_id]["state"] == "holded"
    assert_recorded_once(state_store, keys.hold(order_id))


def test_comment_once_after_a_lost_answer(shop, state_store):
    order_id, _, commerce_id = created(shop, state_store, 6)
    key = keys.comment("buyer_cancel", order_id)
    shop.fail_next("POST /V1/orders/*/comments", ("commit_then_fail", 1))
    assert orders.comment(shop.hook, state_store, key, commerce_id, "Do not ship.").source is Source.RECOVERED
    assert orders.comment(shop.hook, state_store, key, commerce_id, "Do not ship.").source is Source.RECORDED
    assert shop.comments(commerce_id).count("Do not ship.") == 1


def test_cancel_once_after_a_lost_answer(shop, state_store):
    order_id, _, commerce_id = created(shop, state_store, 7)
    shop.fail_next("POST /V1/orders/*/cancel", ("commit_then_fail", 1), HOOK_GIVES_UP)
    result = orders.cancel(shop.hook, state_store, order_id, commerce_id)
    assert result.source is Source.RECOVERED and result.detail == {"action": "canceled"}
    assert shop.state.orders[commerce_id]["state"] == "canceled"
    assert assert_recorded_once(state_store, keys.cancel(order_id))["detail"] == {"action": "canceled"}


def test_cancelling_an_invoiced_held_order_refunds_it_in_full_once_after_a_lost_answer(shop, state_store):
    order_id, _, commerce_id = created(shop, state_store, 8)
    orders.invoice(shop.hook, state_store, order_id, commerce_id, fresh=True)
    orders.hold(shop.hook, state_store, order_id, commerce_id)
    shop.fail_next("POST /V1/order/*/refund", ("commit_then_fail", 1))
    result = orders.cancel(shop.hook, state_store, order_id, commerce_id)
    assert result.source is Source.RECOVERED
    assert result.detail["action"] == "refunded offline in full"
    [memo] = shop.documents_of("creditmemos", commerce_id)
    assert Decimal(str(memo["grand_total"])) == Decimal(str(shop.state.orders[commerce_id]["grand_total"]))
    assert shop.state.orders[commerce_id]["state"] == "closed"
    assert orders.cancel(shop.hook, state_store, order_id, commerce_id).source is Source.RECORDED


def test_amazon_package_shipped_once_after_a_lost_answer(shop, state_store):
    order_id, order, commerce_id = created(shop, state_store, 9)
    commerce_items = {i["ext_order_item_id"]: int(i["item_id"]) for i in shop.state.orders[commerce_id]["items"]}
    first = order["orderItems"][0]
    package = shipments.Package("PKG-1", "UPS", "", ((first["orderItemId"], first["quantityOrdered"]),))
    shop.fail_next("POST /V1/order/*/ship", ("commit_then_fail", 1))
    made = ship_amazon_packages(shop.hook, state_store, order_id, [package], commerce_id, commerce_items)
    assert made == 1  # no tracking number: found again by the key in its comment
    [shipment] = shop.documents_of("shipments", commerce_id)
    row = assert_recorded_once(state_store, keys.ship(order_id, "PKG-1"))
    assert row["commerce_entity_id"] == str(shipment["entity_id"])
    assert ship_amazon_packages(shop.hook, state_store, order_id, [package], commerce_id, commerce_items) == 0
    assert len(shop.documents_of("shipments", commerce_id)) == 1


def test_unpackaged_shipment_once_and_its_later_tracking_once_after_lost_answers(shop, state_store):
    """Units Amazon shipped without package data: one track-less shipment (found again by the key in its comment);
    the package that appears later adds its tracking to that shipment (found again by the track number on it)."""
    order_id, order, commerce_id = created(shop, state_store, 11)
    commerce_items = {i["ext_order_item_id"]: int(i["item_id"]) for i in shop.state.orders[commerce_id]["items"]}
    units = {i["orderItemId"]: int(i["quantityOrdered"]) for i in order["orderItems"]}
    shop.fail_next("POST /V1/order/*/ship", ("commit_then_fail", 1))
    assert (
        ship_unpackaged(
            shop.hook, state_store, order_id, units, commerce_id, commerce_items, packages_before=[], fba=True
        )
        == 1
    )
    [shipment] = shop.documents_of("shipments", commerce_id)
    assert shipment["tracks"] == [] and Decimal(str(shipment["total_qty"])) == sum(units.values())
    row = assert_recorded_once(state_store, keys.ship_unpackaged(order_id))
    assert row["commerce_entity_id"] == str(shipment["entity_id"])
    made = unpackaged_shipment(state_store, order_id)
    assert made.shipment_id == shipment["entity_id"] and dict(made.items) == units
    again = ship_unpackaged(
        shop.hook, state_store, order_id, units, commerce_id, commerce_items, packages_before=[], fba=True
    )
    assert again == 0 and len(shop.documents_of("shipments", commerce_id)) == 1

    package = shipments.Package("1", "UPS", "1ZLATE0001", tuple(units.items()))
    shop.fail_next("POST /V1/shipment/track", ("commit_then_fail", 1))
    assert add_package_track(shop.hook, state_store, order_id, package, commerce_id, made.shipment_id) == 1
    [shipment] = shop.documents_of("shipments", commerce_id)
    assert [t["track_number"] for t in shipment["tracks"]] == ["1ZLATE0001"]
    track = assert_recorded_once(state_store, keys.track(order_id, "1"))
    assert track["commerce_entity_id"] == str(shipment["tracks"][0]["entity_id"])
    assert add_package_track(shop.hook, state_store, order_id, package, commerce_id, made.shipment_id) == 0
    assert len(shop.documents_of("shipments", commerce_id)[0]["tracks"]) == 1


def test_package_tracking_added_by_hand_is_adopted_and_a_refused_track_is_forgotten(shop, state_store):
    order_id, order, commerce_id = created(shop, state_store, 12)
    commerce_items = {i["ext_order_item_id"]: int(i["item_id"]) for i in shop.state.orders[commerce_id]["items"]}
    units = {i["orderItemId"]: int(i["quantityOrdered"]) for i in order["orderItems"]}
    ship_unpackaged(shop.hook, state_store, order_id, units, commerce_id, commerce_items, packages_before=[], fba=False)
    shipment_id = unpackaged_shipment(state_store, order_id).shipment_id
    shop.hook.add_shipment_track(commerce_id, shipment_id, "1ZHAND0001", "UPS")  # the merchant typed it in
    package = shipments.Package("1", "UPS", "1ZHAND0001", tuple(units.items()))
    assert add_package_track(shop.hook, state_store, order_id, package, commerce_id, shipment_id) == 0
    assert_recorded_once(state_store, keys.track(order_id, "1"))
    assert len(shop.documents_of("shipments", commerce_id)[0]["tracks"]) == 1

    other_id, _, other_commerce = created(shop, state_store, 13)
    wrong = shipments.Package("1", "UPS", "1ZWRONG001", ())
    with pytest.raises(BadRequestError):  # Magento: the shipment is not the order's
        add_package_track(shop.hook, state_store, other_id, wrong, other_commerce, shipment_id)
    assert state_store.writes.get(keys.track(other_id, "1").natural_key) is None


def test_offline_refund_once_after_a_lost_answer(shop, state_store):
    order_id, _, commerce_id = created(shop, state_store, 10)
    orders.invoice(shop.hook, state_store, order_id, commerce_id, fresh=True)
    key = keys.refund_mirror("amzrefund:test-event", order_id)
    item = shop.state.orders[commerce_id]["items"][0]
    refund = OfflineRefund(
        items=[{"order_item_id": int(item["item_id"]), "qty": 0}],
        shipping_amount=Decimal(0),
        adjustment_positive=Decimal("5.00"),
        adjustment_negative=Decimal(0),
        total=Decimal("5.00"),
    )
    shop.fail_next("POST /V1/order/*/refund", ("commit_then_fail", 1))

    def refund_once():
        return refund_offline(
            shop.hook, state_store, key, commerce_id, plan=lambda: refund, claimed=lambda memo_id: False
        )

    result = refund_once()
    assert result.source is Source.RECOVERED
    [memo] = shop.documents_of("creditmemos", commerce_id)
    assert int(result.done.entity_id) == memo["entity_id"] and Decimal(str(memo["grand_total"])) == Decimal("5.00")
    assert refund_once().source is Source.RECORDED
    assert len(shop.documents_of("creditmemos", commerce_id)) == 1


def test_stock_moves_once_after_a_lost_answer(shop, state_store):
    moves = StockMoves(shop.hook, state_store, "default")
    sku = shop.amazon_order(11)["orderItems"][0]["product"]["sellerSku"]
    before = shop.quantity(sku)
    shop.fail_next("POST /V1/inventory/source-items", ("commit_then_fail", 1), HOOK_GIVES_UP)
    result = moves.move_once(keys.stock_in("111-0000000-0000011"), {sku: 3})
    assert result.source is Source.RECOVERED
    assert shop.quantity(sku) == before + 3
    assert moves.move_once(keys.stock_in("111-0000000-0000011"), {sku: 3}).source is Source.RECORDED
    assert shop.quantity(sku) == before + 3


def test_a_page_of_stock_outs_is_one_read_one_write_and_survives_a_lost_answer(shop, state_store):
    moves = StockMoves(shop.hook, state_store, "default")
    [a, b] = [shop.amazon_order(seed)["orderItems"][0]["product"]["sellerSku"] for seed in (12, 13)]
    before = {sku: shop.quantity(sku) for sku in {a, b}}
    page = PageStockOut(state_store, lambda: moves)
    page.add("111-0000000-0000012", [(a, 2)])
    page.add("111-0000000-0000013", [(b, 1), (a, 1)])
    reads = shop.state.stats["GET /V1/inventory/source-items"]
    shop.fail_next("POST /V1/inventory/source-items", ("commit_then_fail", 1), HOOK_GIVES_UP)
    page.flush()
    assert shop.state.stats["GET /V1/inventory/source-items"] - reads == 2  # the page's one read + the look
    expected = {sku: before[sku] - (3 if sku == a else 0) - (1 if sku == b else 0) for sku in before}
    assert {sku: shop.quantity(sku) for sku in before} == expected
    for order_id in ("111-0000000-0000012", "111-0000000-0000013"):
        assert state_store.writes.is_done(keys.stock_out(order_id).natural_key)
    # A later page sees them done and moves nothing again.
    PageStockOut(state_store, lambda: moves).add("111-0000000-0000012", [(a, 2)])
    assert {sku: shop.quantity(sku) for sku in before} == expected


def test_a_stock_batch_a_killed_run_left_is_finished_once_by_the_next(shop, state_store):
    moves = StockMoves(shop.hook, state_store, "default")
    sku = shop.amazon_order(14)["orderItems"][0]["product"]["sellerSku"]
    order_id = "111-0000000-0000014"
    before = shop.quantity(sku)
    PageStockOut(state_store, lambda: moves).add(order_id, [(sku, 4)])
    # What a run killed right after its one write leaves: the batch's plan, the order naming the batch, the
    # quantity written, nothing marked done.
    batch = keys.stock_batch()
    plan = plan_move({sku: before}, {sku: -4})
    state_store.writes.record_intent(batch.natural_key, batch.kind, None, {"plan": plan, "orders": [order_id]})
    state_store.writes.amend_intent(keys.stock_out(order_id).natural_key, {"lines": {sku: 4}, "batch": str(batch)})
    moves.write_quantities({sku: before - 4})

    next_page = PageStockOut(state_store, lambda: moves)
    next_page.add(order_id, [(sku, 4)])  # finds the batch, sees it applied, marks it and its order done
    next_page.flush()
    assert shop.quantity(sku) == before - 4
    assert state_store.writes.is_done(str(batch)) and state_store.writes.is_done(keys.stock_out(order_id).natural_key)


def test_anonymise_is_finished_by_the_next_run_after_a_failure(shop, state_store):
    order_id, _, commerce_id = created(shop, state_store, 15)
    shop.fail_next("PUT /V1/orders/{parent_id}", ("commit_then_fail", 1), HOOK_GIVES_UP)
    with pytest.raises(RetriableError):
        orders.anonymise(shop.hook, state_store, order_id, commerce_id, run_id="r1")
    assert state_store.writes.get(keys.anonymise(order_id).natural_key)["status"] == WriteStatus.INTENT
    shop.state.faults.fail_next.clear()
    result = orders.anonymise(shop.hook, state_store, order_id, commerce_id, run_id="r2")
    assert result.source is Source.SENT and result.detail["addresses"] >= 1
    assert shop.state.orders[commerce_id]["billing_address"]["firstname"] == orders.ERASED
    assert orders.anonymise(shop.hook, state_store, order_id, commerce_id, run_id="r3").source is Source.RECORDED


def test_bookkeeping_is_committed_with_the_outcome_or_not_at_all(shop, state_store):
    """``then`` (the import notes the Commerce order on the staged one) shares the outcome's transaction: when it
    fails, the create stays an intent, and the next attempt finds the order instead of creating a second."""
    order = shop.amazon_order(16, fulfilled_by="MERCHANT", status="UNSHIPPED")
    order_id, key = order["orderId"], keys.create_order(order["orderId"])

    def failing(result):
        state_store.ops.audit("order_created", "amazon_order", order_id, {})
        raise RuntimeError("the bookkeeping failed")

    with pytest.raises(RuntimeError):
        orders.create_order(shop.hook, state_store, order_id, shop.entity(order), [], then=failing)
    assert state_store.writes.get(key.natural_key)["status"] == WriteStatus.INTENT
    noted = []
    result = orders.create_order(shop.hook, state_store, order_id, shop.entity(order), [], then=noted.append)
    assert result.source is Source.FOUND and noted == [result] and len(shop.orders_with(order_id)) == 1
    assert_recorded_once(state_store, key)


def test_a_stock_move_queued_in_a_rolled_back_unit_is_not_written(shop, state_store):
    """The import queues an order's stock move inside the store unit that notes the created order; when that unit
    is rolled back, the page's stock write leaves the move out (the next run queues it again, once)."""
    moves = StockMoves(shop.hook, state_store, "default")
    sku = shop.amazon_order(17)["orderItems"][0]["product"]["sellerSku"]
    order_id = "111-0000000-0000017"
    before = shop.quantity(sku)
    page = PageStockOut(state_store, lambda: moves)
    with pytest.raises(RuntimeError), state_store.unit():
        assert page.queue(order_id, [(sku, 2)]) is None
        raise RuntimeError("the unit's commit failed")
    page.flush()
    assert shop.quantity(sku) == before and state_store.writes.get(keys.stock_out(order_id).natural_key) is None
    page.add(order_id, [(sku, 2)])
    page.flush()
    assert shop.quantity(sku) == before - 2 and state_store.writes.is_done(keys.stock_out(order_id).natural_key)
