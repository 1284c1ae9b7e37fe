"""amazon_order_import end to end with dag.test(), against both sandboxes."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.e2e.test_shipment_sync import Merchant
from tests.store_queries import audit_entries, open_quarantine

pytestmark = pytest.mark.e2e


def merchant_orders(channel, count, status="UNSHIPPED", seed=11):
    return channel.generated_orders(count, seed=seed, status=status, fulfilled_by="MERCHANT")


def assert_success(states):
    failed = {k: v for k, v in states.items() if v not in ("success", "skipped")}
    assert not failed, failed


def test_imports_each_order_once_with_amazons_totals(channel):
    orders = merchant_orders(channel, 12)
    channel.load_amazon_orders(orders)
    assert_success(channel.run_dag("amazon_order_import"))

    by_id = channel.commerce_orders_by_amazon_id()
    for order in orders:
        [commerce] = by_id[order["orderId"]]
        assert Decimal(str(commerce["grand_total"])) == Decimal(order["proceeds"]["grandTotal"]["amount"])
        assert {i["ext_order_item_id"] for i in commerce["items"]} == {i["orderItemId"] for i in order["orderItems"]}
        assert commerce["state"] == "processing"  # invoiced on import (the default)
        row = channel.store.orders.get(order["orderId"])
        assert row["sync_status"] == "imported" and row["commerce_order_id"] == int(commerce["entity_id"])

    # a rerun changes nothing
    before = channel.commerce("GET", "/_sandbox/stats")
    assert_success(channel.run_dag("amazon_order_import"))
    assert {k: len(v) for k, v in channel.commerce_orders_by_amazon_id().items()} == {o["orderId"]: 1 for o in orders}
    after = channel.commerce("GET", "/_sandbox/stats")
    writes = lambda stats: {k: v for k, v in (stats.get("calls") or stats).items() if not str(k).startswith("GET")}  # noqa: E731
    assert writes(after) == writes(before)


def test_pending_fba_and_missing_products(channel, debug_logs, caplog, capfd):
    pending = merchant_orders(channel, 2, status="PENDING", seed=21)
    fba_unshipped = channel.generated_orders(1, seed=22, status="UNSHIPPED", fulfilled_by="AMAZON")
    fba_shipped = channel.generated_orders(1, seed=23, status="SHIPPED", fulfilled_by="AMAZON")
    unknown_sku = merchant_orders(channel, 1, seed=24)
    unknown_sku[0]["orderItems"][0]["product"]["sellerSku"] = "NOT-IN-CATALOG"
    channel.load_amazon_orders(pending + fba_unshipped + fba_shipped + unknown_sku)
    debug_logs()
    assert_success(channel.run_dag("amazon_order_import"))
    # the load task's log ends with a sentence per account, not a dict
    output = caplog.text + "".join(capfd.readouterr())
    assert (
        "1 created, 1 not eligible (1 Amazon-fulfilled, not shipped yet), 2 pending payment on Amazon, "
        "1 waiting for a product"
    ) in output, output[-3000:]
    ours = [r.getMessage() for r in caplog.records if r.name == "amazon_commerce_sync.pipelines.order_import"]
    assert ours and not any("{" in line for line in ours), ours

    by_id = channel.commerce_orders_by_amazon_id()
    assert not any(o["orderId"] in by_id for o in pending + fba_unshipped + unknown_sku)
    [fba] = by_id[fba_shipped[0]["orderId"]]
    assert fba["state"] == "complete"
    # Amazon shows FBA orders without packages: one shipment of every unit, without a track
    assert "packages" not in channel.amazon_order(fba_shipped[0]["orderId"])
    [shipment] = Merchant(channel).shipments(fba["entity_id"])
    assert shipment["tracks"] == []
    assert all(Decimal(str(i["qty_shipped"])) == Decimal(str(i["qty_ordered"])) for i in fba["items"])
    assert channel.store.orders.get(pending[0]["orderId"])["sync_status"] == "pending_payment"
    waiting = channel.store.orders.get(unknown_sku[0]["orderId"])
    assert waiting["sync_status"] == "waiting_product" and "NOT-IN-CATALOG" in waiting["sync_reason"]

    # the product appears: the waiting order is created on the next run
    channel.seed_products([{"sku": "NOT-IN-CATALOG", "name": "Late product", "price": "5.00", "status": 1, "qty": 50}])
    assert_success(channel.run_dag("amazon_order_import"))
    assert len(channel.commerce_orders_by_amazon_id()[unknown_sku[0]["orderId"]]) == 1


@pytest.mark.parametrize(
    ("first", "then", "fulfilled_by", "state"),
    [
        ("UNSHIPPED", "ship", "AMAZON", "complete"),  # FBA: not eligible until Amazon ships it
        ("PENDING", "authorize_payment", "MERCHANT", "processing"),  # pending until paid
    ],
)
def test_follow_ups_failing_after_the_create_are_finished_next_run(channel, first, then, fulfilled_by, state):
    """The order is created, then Commerce fails the invoice: the next run finishes the invoice (and the FBA
    shipment) instead of taking the order as imported (found by the soak: the order's earlier status was put back
    over the WAITING the create had set, and it stayed uninvoiced and unshipped)."""
    [order] = channel.generated_orders(1, seed=27, status=first, fulfilled_by=fulfilled_by)
    channel.load_amazon_orders([order])
    assert_success(channel.run_dag("amazon_order_import"))
    assert order["orderId"] not in channel.commerce_orders_by_amazon_id()
    channel.amazon_event(order["orderId"], {"type": then})
    channel.commerce_faults(
        fail_next=[{"route": "POST /V1/order/*/invoice", "kind": "error", "status": 503, "count": 50}]
    )
    channel.run_dag("amazon_order_import")
    [created] = channel.commerce_orders_by_amazon_id()[order["orderId"]]
    assert created["state"] == "new"  # created, not invoiced
    assert channel.store.orders.get(order["orderId"])["sync_status"] == "waiting"
    channel.commerce_faults()
    assert_success(channel.run_dag("amazon_order_import"))
    [done] = channel.commerce_orders_by_amazon_id()[order["orderId"]]
    assert done["state"] == state and Decimal(str(done["total_invoiced"])) == Decimal(str(done["grand_total"]))
    assert channel.store.orders.get(order["orderId"])["sync_status"] == "imported"


@pytest.mark.parametrize("lost_answer", [False, True], ids=["plain", "hold-answer-lost"])
def test_buyer_cancellation_request_holds_the_commerce_order(channel, lost_answer):
    """The buyer asks Amazon to cancel an imported, unshipped order: the Commerce order goes on hold with a comment
    saying what to do. When the hold's answer is lost and the retry is refused ("A hold action is not available",
    found by the soak), the order is on hold all the same and nothing is quarantined."""
    [order] = merchant_orders(channel, 1, seed=29)
    channel.load_amazon_orders([order])
    assert_success(channel.run_dag("amazon_order_import"))
    channel.amazon_event(order["orderId"], {"type": "request_cancellation", "reason": "BuyerCanceled"})
    if lost_answer:
        channel.commerce_faults(fail_next=[{"route": "POST /V1/orders/*/hold", "kind": "commit_then_fail"}])
    assert_success(channel.run_dag("amazon_order_import"))
    [held] = channel.commerce_orders_by_amazon_id()[order["orderId"]]
    assert held["state"] == "holded"
    assert any("asked Amazon to cancel" in (h.get("comment") or "") for h in held["status_histories"])
    assert channel.store.orders.get(order["orderId"])["sync_status"] == "on_hold"
    assert open_quarantine(channel.store) == []


def test_malformed_order_is_quarantined_and_others_go_on(channel):
    good = merchant_orders(channel, 3, seed=31)
    bad = merchant_orders(channel, 1, seed=32)
    bad[0]["proceeds"]["grandTotal"]["amount"] = "0.01"
    channel.load_amazon_orders(good + bad)
    assert_success(channel.run_dag("amazon_order_import"))
    by_id = channel.commerce_orders_by_amazon_id()
    assert all(o["orderId"] in by_id for o in good)
    assert bad[0]["orderId"] not in by_id
    [q] = open_quarantine(channel.store, "amazon_order")
    assert q["entity_id"] == bad[0]["orderId"] and "do not add up" in q["reason"]


def test_commit_then_fail_never_duplicates(channel):
    orders = merchant_orders(channel, 6, seed=41)
    channel.load_amazon_orders(orders)
    channel.commerce_faults(fail_next=[{"route": "POST /V1/orders", "kind": "commit_then_fail", "count": 3}])
    channel.run_dag("amazon_order_import")
    channel.commerce_faults()
    assert_success(channel.run_dag("amazon_order_import"))
    by_id = channel.commerce_orders_by_amazon_id()
    assert {o["orderId"]: len(by_id.get(o["orderId"], [])) for o in orders} == {o["orderId"]: 1 for o in orders}


def stock_of(channel, skus):
    from amazon_commerce_sync.hooks.commerce import CommerceHook

    items = CommerceHook().get_source_items(sorted(skus))
    return {sku: Decimal(str(items[sku][0]["quantity"])) for sku in skus}


def units_ordered(orders):
    """Units per seller SKU over the Amazon orders."""
    ordered: dict[str, int] = {}
    for order in orders:
        for item in order["orderItems"]:
            sku = item["product"]["sellerSku"]
            ordered[sku] = ordered.get(sku, 0) + item["quantityOrdered"]
    return ordered


def expire_leases(channel):
    """The leases of a worker that was killed expire (as they do after ``LEASE_SECONDS``)."""
    from amazon_commerce_sync.store.schema import leases

    channel.store.engine.dispose()
    with channel.store.engine.begin() as conn:
        conn.execute(leases.update().values(expires_at=0))


def test_stock_moves_once_per_order_and_comes_back_on_cancellation(channel):
    orders = merchant_orders(channel, 20, seed=51)  # 20 orders over 18 SKUs: several share a SKU in one page
    ordered = units_ordered(orders)
    channel.load_amazon_orders(orders)
    assert_success(channel.run_dag("amazon_order_import"))
    assert_success(channel.run_dag("amazon_order_import"))  # a rerun moves nothing
    assert stock_of(channel, ordered) == {sku: Decimal(1000 - qty) for sku, qty in ordered.items()}

    # Amazon cancels one order: Commerce cancels it (invoiced: refunded offline) and the stock comes back
    cancelled = orders[0]
    channel.amazon_event(cancelled["orderId"], {"type": "cancel"})
    assert_success(channel.run_dag("amazon_order_import"))
    [commerce] = channel.commerce_orders_by_amazon_id()[cancelled["orderId"]]
    assert commerce["state"] in ("closed", "canceled")
    back = dict(ordered)
    for item in cancelled["orderItems"]:
        back[item["product"]["sellerSku"]] -= item["quantityOrdered"]
    assert stock_of(channel, ordered) == {sku: Decimal(1000 - qty) for sku, qty in back.items()}
    assert channel.store.orders.get(cancelled["orderId"])["sync_status"] == "canceled"


def test_out_of_stock_waits_and_last_unit_is_not_sold_twice(channel):
    orders = merchant_orders(channel, 2, seed=61)
    sku = "ACS-LAMP-DESK-LED"
    for order in orders:
        order["orderItems"] = order["orderItems"][:1]
        order["orderItems"][0]["product"]["sellerSku"] = sku
        order["orderItems"][0]["quantityOrdered"] = 1
        order["orderItems"][0].pop("fulfillment", None)
        from sandboxes.amazon.generator import recompute_proceeds

        unit = order["orderItems"][0]["product"]["price"]["unitPrice"]
        order["orderItems"][0]["proceeds"] = {"breakdowns": [{"type": "ITEM", "subtotal": unit}]}
        recompute_proceeds(order)
    channel.seed_products([{"sku": sku, "name": "LED Desk Lamp", "price": "34.90", "status": 1, "qty": 1}])
    channel.load_amazon_orders(orders)
    assert_success(channel.run_dag("amazon_order_import"))
    created = [o for o in orders if o["orderId"] in channel.commerce_orders_by_amazon_id()]
    assert len(created) == 1
    [waiting] = [o for o in orders if o not in created]
    row = channel.store.orders.get(waiting["orderId"])
    assert row["sync_status"] == "waiting_product" and "out of stock" in row["sync_reason"]
    assert stock_of(channel, [sku]) == {sku: Decimal(0)}


def test_rejected_order_is_quarantined_then_redriven(channel):
    orders = merchant_orders(channel, 2, seed=71)
    channel.load_amazon_orders(orders)
    # Commerce refuses the first create with a 400: that order is quarantined, the other goes on
    channel.commerce_faults(fail_next=[{"route": "POST /V1/orders", "kind": "error", "status": 400, "count": 1}])
    assert_success(channel.run_dag("amazon_order_import"))
    quarantined = [q["entity_id"] for q in open_quarantine(channel.store, "amazon_order")]
    assert len(quarantined) == 1 and len(channel.commerce_orders_by_amazon_id()) == 1
    # a plain rerun leaves it alone; a re-drive after the fix creates it, once
    assert_success(channel.run_dag("amazon_order_import"))
    assert len(channel.commerce_orders_by_amazon_id()) == 1
    assert_success(channel.run_dag("amazon_order_import", conf={"redrive_quarantined": quarantined}))
    assert {k: len(v) for k, v in channel.commerce_orders_by_amazon_id().items()} == {o["orderId"]: 1 for o in orders}
    assert open_quarantine(channel.store) == []
    assert audit_entries(channel.store, entity_id=quarantined[0], action="order_redriven")


def assert_exactly_once_with_totals(channel, orders):
    by_id = channel.commerce_orders_by_amazon_id()
    assert {o["orderId"]: len(by_id.get(o["orderId"], [])) for o in orders} == {o["orderId"]: 1 for o in orders}
    for order in orders:
        [commerce] = by_id[order["orderId"]]
        assert Decimal(str(commerce["grand_total"])) == Decimal(order["proceeds"]["grandTotal"]["amount"])


def drain_search_bucket(channel):
    import requests

    token = requests.post(
        f"{channel.amazon_url}/auth/o2/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": "sandbox-refresh-token",
            "client_id": "sandbox-client-id",
            "client_secret": "sandbox-client-secret",
        },
        timeout=10,
    ).json()["access_token"]
    for _ in range(25):
        requests.get(
            f"{channel.amazon_url}/orders/2026-01-01/orders",
            params={"marketplaceIds": "ATVPDKIKX0DER", "createdAfter": "2026-01-01T00:00:00Z"},
            headers={"x-amz-access-token": token},
            timeout=10,
        )


def test_fault_storm_converges_to_exactly_n_orders(channel):
    """5xx, dropped connections and 429s on Amazon; 5xx, drops and commit-then-fail on Commerce."""
    orders = merchant_orders(channel, 15, seed=81)
    channel.load_amazon_orders(orders)
    channel.amazon("POST", "/_sandbox/settings", json={"speed": 50})  # Amazon now 2x stricter than our buckets
    drain_search_bucket(channel)  # and another client has just used up the searchOrders burst
    channel.amazon_faults(error_rate=0.3, error_statuses=[500, 503], drop_rate=0.05, seed=3)
    channel.commerce_faults(error_rate=0.15, drop_rate=0.05, commit_then_fail_rate=0.25)
    for _ in range(3):
        channel.run_dag("amazon_order_import")
    channel.amazon_faults()
    channel.commerce_faults()
    channel.amazon("POST", "/_sandbox/settings", json={"speed": 100})
    assert_success(channel.run_dag("amazon_order_import"))
    assert_exactly_once_with_totals(channel, orders)
    stats = channel.commerce("GET", "/_sandbox/stats")["calls"]
    assert stats.get("POST /V1/orders", 0) > len(orders), "the storm did not hit the creates"
    throttled = channel.amazon("GET", "/_sandbox/stats")["operations"].get("searchOrders", {}).get("throttled", 0)
    assert throttled > 0, "no 429 was provoked"


def held_leases(channel) -> list[str]:
    from amazon_commerce_sync.store.schema import leases

    with channel.store.engine.connect() as conn:
        return [r.lease_key for r in conn.execute(leases.select())]


@pytest.mark.parametrize(
    "route",
    [
        "GET /V1/orders",  # the page's natural-key look-up (ext_order_id) fails: nothing of the page is written
        "POST /V1/inventory/source-items",  # the page's stock write fails after its orders are created
    ],
)
def test_failed_page_gives_its_leases_back_for_the_next_run(channel, route):
    """A page whose look-up or stock write fails stops the run; the next run (within ``LEASE_SECONDS``, no
    worker died) finds its orders free, not "busy elsewhere"."""
    orders = merchant_orders(channel, 6, seed=83)
    channel.load_amazon_orders(orders)
    channel.commerce_faults(fail_next=[{"route": route, "kind": "error", "status": 503, "count": 100}])
    states = channel.run_dag("amazon_order_import")
    assert "failed" in states.values()
    assert held_leases(channel) == []
    channel.commerce_faults()
    assert_success(channel.run_dag("amazon_order_import"))
    assert_exactly_once_with_totals(channel, orders)
    ordered = units_ordered(orders)
    assert stock_of(channel, ordered) == {sku: Decimal(1000 - qty) for sku, qty in ordered.items()}


def test_worker_killed_mid_batch_converges(channel):
    import os
    import signal
    import subprocess
    import sys
    import time

    orders = merchant_orders(channel, 12, seed=91)
    channel.load_amazon_orders(orders)
    channel.commerce("POST", "/_sandbox/settings", json={"latency_ms": 150})
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from datetime import UTC, datetime\n"
            "from amazon_commerce_sync.pipelines import tasks\n"
            "tasks.extract_orders('us-main', 'killed', {}, run_after=datetime.now(UTC))\n"
            "tasks.load_orders('us-main', 'killed')\n",
        ],
        env={**os.environ, "PYTHONPATH": os.pathsep.join(["include", "."])},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while len(channel.commerce_orders()) < 3 and time.monotonic() < deadline and child.poll() is None:
        time.sleep(0.05)
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert 0 < len(channel.commerce_orders()) < len(orders), "the kill did not land mid-batch"
    channel.commerce("POST", "/_sandbox/settings", json={"latency_ms": 0})
    expire_leases(channel)  # a rerun after that converges, the stock of each order moved once
    assert_success(channel.run_dag("amazon_order_import"))
    assert_exactly_once_with_totals(channel, orders)
    ordered = units_ordered(orders)
    assert stock_of(channel, ordered) == {sku: Decimal(1000 - qty) for sku, qty in ordered.items()}


# The child dies (``os._exit``: no cleanup, as under SIGKILL) at its page's stock write: before the batch is recorded
# (its orders' moves in no batch), before ``POST /V1/inventory/source-items`` (in a batch not written) or after it (a
# batch written but not recorded). Its orders are created and marked imported, so no run takes them up again.
_DIE_AT_STOCK_WRITE = """
import os
from datetime import UTC, datetime
from amazon_commerce_sync.commerce_writes import stock
from amazon_commerce_sync.pipelines import tasks

write = stock.StockMoves.write_quantities

def die(self, quantities):
    if {at!r} == "after_the_write":
        write(self, quantities)
    os._exit(9)

if {at!r} == "before_the_batch":
    stock.PageStockOut.flush = lambda self: os._exit(9)
stock.StockMoves.write_quantities = die
tasks.extract_orders('us-main', 'killed', {{}}, run_after=datetime.now(UTC))
tasks.load_orders('us-main', 'killed')
"""


def kill_at_stock_write(channel, orders, at):
    """Load ``orders`` in a worker that dies at ``at`` (``_DIE_AT_STOCK_WRITE``), then let its leases expire."""
    import os
    import subprocess
    import sys

    channel.load_amazon_orders(orders)
    child = subprocess.run(
        [sys.executable, "-c", _DIE_AT_STOCK_WRITE.format(at=at)],
        env={**os.environ, "PYTHONPATH": os.pathsep.join(["include", "."])},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=300,
    )
    assert child.returncode == 9, "the worker did not reach the stock write"
    assert len(channel.commerce_orders_by_amazon_id()) == len(orders)
    assert {channel.store.orders.get(o["orderId"])["sync_status"] for o in orders} == {"imported"}
    expire_leases(channel)


@pytest.mark.parametrize("at", ["before_the_batch", "before_the_write", "after_the_write"])
def test_worker_killed_at_the_stock_write_moves_each_order_once(channel, at):
    orders = merchant_orders(channel, 12, seed=93)
    ordered = units_ordered(orders)
    kill_at_stock_write(channel, orders, at)
    moved = {sku: Decimal(1000 - qty) for sku, qty in ordered.items()}
    assert stock_of(channel, ordered) == (moved if at == "after_the_write" else {sku: Decimal(1000) for sku in ordered})
    assert_success(channel.run_dag("amazon_order_import"))
    assert stock_of(channel, ordered) == moved
    assert_success(channel.run_dag("amazon_order_import"))  # a rerun moves nothing
    assert stock_of(channel, ordered) == moved
    assert all(channel.store.writes.is_done(f"stock_out:{o['orderId']}") for o in orders)


def test_stock_moves_left_by_a_killed_worker_wait_while_commerce_refuses_them(channel):
    orders = merchant_orders(channel, 6, seed=95)
    ordered = units_ordered(orders)
    kill_at_stock_write(channel, orders, "before_the_batch")
    # Commerce refuses the left moves' write (a 400: their batch is forgotten, nothing written): the load goes on
    refused = {"route": "POST /V1/inventory/source-items", "kind": "error", "status": 400, "count": 1}
    channel.commerce_faults(fail_next=[refused])
    assert_success(channel.run_dag("amazon_order_import"))
    assert stock_of(channel, ordered) == {sku: Decimal(1000) for sku in ordered}
    channel.commerce_faults()
    assert_success(channel.run_dag("amazon_order_import"))  # the moves go into a new batch, once
    assert_success(channel.run_dag("amazon_order_import"))
    assert stock_of(channel, ordered) == {sku: Decimal(1000 - qty) for sku, qty in ordered.items()}
    assert all(channel.store.writes.is_done(f"stock_out:{o['orderId']}") for o in orders)
