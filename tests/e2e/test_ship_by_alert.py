"""Ship-by deadlines end to end: orders imported from the Amazon sandbox, shipped (or not) in the Commerce sandbox,
and the real ``sales_channel_monitor`` DAG run with ``dag.test()``.

Amazon counts a merchant-fulfilled order confirmed after ``fulfillment.shipByWindow.latestDateTime`` as a late
shipment; the monitor alerts once per order when it is within ``alert_ship_by_hours`` and still unshipped.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.e2e.test_shipment_sync import Merchant, all_items, assert_success
from tests.store_queries import audit_entries

pytestmark = pytest.mark.e2e

MONITOR = "sales_channel_monitor"


def _iso(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def _ship_by_alerts(caplog) -> list[str]:
    return [line for line in caplog.text.splitlines() if "SALES CHANNEL ALERT [ship_by]" in line]


def test_ship_by_alert_once_per_order_and_never_for_shipped_ones(channel, debug_logs, caplog):
    now = datetime.now(UTC)
    orders = channel.generated_orders(4, seed=71, status="UNSHIPPED", fulfilled_by="MERCHANT")
    # ship-by in 2 h, 5 h and 9 h (within the default 12 h), and in 30 h (not yet at risk)
    for order, hours in zip(orders, (2, 5, 9, 30), strict=True):
        order["fulfillment"]["shipByWindow"]["latestDateTime"] = _iso(now + timedelta(hours=hours))
    soon, later, shipped, calm = (o["orderId"] for o in orders)
    channel.load_amazon_orders(orders)
    assert_success(channel.run_dag("amazon_order_import"))
    by_id = channel.commerce_orders_by_amazon_id()
    assert {soon, later, shipped, calm} <= set(by_id)

    # The merchant ships one of them in Commerce; the shipment sync confirms it to Amazon.
    merchant = Merchant(channel)
    commerce = by_id[shipped][0]
    merchant.ship(commerce["entity_id"], all_items(commerce), "1ZSHIPBY01")
    assert_success(channel.run_dag("amazon_shipment_sync", {"mismatch_grace_minutes": 0}))

    caplog.clear()
    debug_logs()
    assert_success(channel.run_dag(MONITOR))
    [alert] = _ship_by_alerts(caplog)
    assert "account=us-main: 2 merchant-fulfilled order(s) due to ship within 12 h" in alert
    assert alert.index(soon) < alert.index(later)  # soonest first
    assert shipped not in alert and calm not in alert
    assert "1 h" in alert or "2 h" in alert or "min left" in alert
    # only ids and deadlines: no buyer data
    pii = channel.store.orders.pii(soon)
    assert pii and pii.get("buyer_name") and pii["buyer_name"] not in alert
    rows = {r["amazon_order_id"]: r for r in channel.store.ship_by.at_risk(now + timedelta(hours=12))}
    assert set(rows) == {soon, later}
    assert all(r["ship_by_alerted_at"] is not None for r in rows.values())
    [sent] = [e for e in audit_entries(channel.store, action="alert_sent") if e["entity_id"] == "ship_by:us-main"]
    assert sorted(sent["detail"]["orders"]) == sorted([soon, later])

    # A second run (and a rerun of the DAG) sends nothing more for the same orders.
    caplog.clear()
    debug_logs()
    assert_success(channel.run_dag(MONITOR))
    assert _ship_by_alerts(caplog) == []

    # The fourth order comes within reach (Amazon moved its deadline): it alone is alerted on.
    calm_order = channel.amazon_order(calm)
    calm_order["fulfillment"]["shipByWindow"]["latestDateTime"] = _iso(now + timedelta(hours=3))
    calm_order["lastUpdatedTime"] = _iso(datetime.now(UTC) - timedelta(minutes=5))
    channel.load_amazon_orders([calm_order])
    assert_success(channel.run_dag("amazon_order_import"))
    caplog.clear()
    debug_logs()
    assert_success(channel.run_dag(MONITOR))
    [alert] = _ship_by_alerts(caplog)
    assert "1 merchant-fulfilled order(s)" in alert and calm in alert
    assert soon not in alert and later not in alert and shipped not in alert
