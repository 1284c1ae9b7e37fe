"""Extraction: one searchOrders window per account and Amazon region, whatever the number of marketplaces.

Amazon's rate limit is per seller and operation (searchOrders 0.0056 requests/s, burst 20) and
``marketplaceIds`` takes up to 50 ids of the endpoint's region, so the extraction asks once for all of an
account's marketplaces (one call per page of orders) under one cursor ``orders:<account>:<region>``. Against
the Amazon sandbox over HTTP (it counts calls per operation and refuses another region's marketplaces as
Amazon's endpoints do) and a real SQLite state store.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from amazon_commerce_sync.settings import SettingsError
from tests.hooks.test_amazon_hook import set_conn, stats

US, CA, MX, DE = "ATVPDKIKX0DER", "A2EUQ1WTGCTBG2", "A1AM78C64UM0Y8", "A1PA6795UKMFR9"
NA_MARKETPLACES = (US, CA, MX)
AFTER = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def sandbox(monkeypatch):
    """The Amazon sandbox with the default seller selling in Amazon.com, .ca and .com.mx."""
    from sandboxes.amazon.app import create_app
    from sandboxes.amazon.config import DEFAULT_REFRESH_TOKEN, DEFAULT_SELLER_ID, AmazonSandboxConfig, Seller
    from sandboxes.server import serve_in_thread

    config = AmazonSandboxConfig(
        speed=100.0,
        seed=7,
        initial_orders=0,
        sellers=[Seller(DEFAULT_SELLER_ID, DEFAULT_REFRESH_TOKEN, list(NA_MARKETPLACES))],
    )
    with serve_in_thread(create_app(config)) as base_url:
        set_conn(monkeypatch, base_url)
        yield base_url


def put_orders(base_url: str, marketplace: str, updated: datetime, count: int = 1, seed: int = 1) -> list[str]:
    """Orders of ``marketplace`` last updated at ``updated`` (created an hour before)."""
    from sandboxes.amazon.generator import generate_orders

    orders = generate_orders(seed, count, updated.timestamp(), marketplace_ids=[marketplace], status="UNSHIPPED")
    for order in orders:
        order["createdTime"] = (updated - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        order["lastUpdatedTime"] = updated.strftime("%Y-%m-%dT%H:%M:%SZ")
    httpx.post(f"{base_url}/_sandbox/orders", json={"orders": orders}, timeout=30).raise_for_status()
    return [o["orderId"] for o in orders]


@pytest.fixture
def resources(tmp_path):
    """Open Resources for an account with the given marketplaces on a fresh SQLite state store."""
    from amazon_commerce_sync.resources import open_resources
    from amazon_commerce_sync.settings import parse_settings

    opened = []

    def _open(*marketplaces: str, **account):
        raw = {
            "account_id": "seller",
            "marketplace_ids": list(marketplaces),
            "import_orders_after": AFTER.strftime("%Y-%m-%dT%H:%M:%SZ"),
            **account,
        }
        ctx = open_resources("tests", settings=parse_settings({"accounts": [raw]}), db_url=f"sqlite:///{tmp_path}/s.db")
        opened.append(ctx)
        return ctx, ctx.settings.accounts[0]

    yield _open
    for ctx in opened:
        ctx.store.engine.dispose()


def searches(base_url: str) -> int:
    return stats(base_url, "searchOrders")["requests"]


def test_all_marketplaces_of_the_region_in_one_call_under_one_cursor(sandbox, resources):
    from amazon_commerce_sync.pipelines.order_extract import extract_orders

    now = datetime.now(UTC)
    ids = [i for n, m in enumerate(NA_MARKETPLACES) for i in put_orders(sandbox, m, now - timedelta(hours=1), 2, n)]
    ctx, account = resources(*NA_MARKETPLACES)

    first = now - timedelta(minutes=10)
    summary = extract_orders(ctx, account, now=first)

    assert searches(sandbox) == 1  # three marketplaces, one token of Amazon's searchOrders bucket
    assert summary | {"account": "seller"} == {
        "account": "seller",
        "region": "NA",
        "marketplaces": 3,
        "pages": 1,
        "fetched": 6,
        "new": 6,
        "changed": 0,
    }
    assert set(ctx.store.orders.get_many(set(ids))) == set(ids)
    assert ctx.store.ops.get_cursor("orders:seller:NA") == first - timedelta(minutes=2)
    assert ctx.store.ops.cursor_scope("orders:seller:NA") == NA_MARKETPLACES
    # the next run reads [cursor - overlap, now - 2 min] of all three in one call again
    extract_orders(ctx, account, now=now)
    assert searches(sandbox) == 2


def test_the_region_cursor_starts_from_the_oldest_per_marketplace_cursor_and_replaces_them(sandbox, resources):
    from amazon_commerce_sync.pipelines.order_extract import extract_orders

    now = datetime.now(UTC)
    ctx, account = resources(US, CA)
    # an earlier release's cursors: Amazon.com read up to 3 h ago, Amazon.ca up to 20 min ago
    ctx.store.ops.set_cursor(f"orders:seller:{US}", now - timedelta(hours=3))
    ctx.store.ops.set_cursor(f"orders:seller:{CA}", now - timedelta(minutes=20))
    [gap] = put_orders(sandbox, US, now - timedelta(hours=2))  # after US's cursor, before CA's
    [long_read] = put_orders(sandbox, CA, now - timedelta(hours=5), seed=2)  # before both: read already

    summary = extract_orders(ctx, account, now=now)

    assert searches(sandbox) == 1 and summary["fetched"] == 1
    assert set(ctx.store.orders.get_many({gap, long_read})) == {gap}  # no gap; nothing read twice
    assert ctx.store.ops.get_cursor("orders:seller:NA") == now - timedelta(minutes=2)
    assert ctx.store.ops.get_cursor(f"orders:seller:{US}") is None  # taken over in the same transaction
    assert ctx.store.ops.get_cursor(f"orders:seller:{CA}") is None


def test_a_marketplace_added_later_is_read_from_import_orders_after_once(sandbox, resources):
    from amazon_commerce_sync.pipelines.order_extract import extract_orders

    now = datetime.now(UTC)
    ctx, account = resources(US, CA)
    extract_orders(ctx, account, now=now - timedelta(days=1))  # the cursor covers US and CA up to a day ago
    [old_us] = put_orders(sandbox, US, now - timedelta(days=3))
    [old_mx] = put_orders(sandbox, MX, now - timedelta(days=3), seed=2)
    [new_us] = put_orders(sandbox, US, now - timedelta(hours=1), seed=3)
    before = searches(sandbox)
    ctx, account = resources(US, CA, MX)  # the seller now sells on Amazon.com.mx too

    extract_orders(ctx, account, now=now - timedelta(minutes=10))

    assert searches(sandbox) - before == 2  # the window of US and CA, and MX's first one
    assert set(ctx.store.orders.get_many({old_us, old_mx, new_us})) == {old_mx, new_us}
    assert ctx.store.ops.cursor_scope("orders:seller:NA") == (US, CA, MX)
    extract_orders(ctx, account, now=now)
    assert searches(sandbox) - before == 3  # from then on one call for all three


def test_the_cursor_stays_until_every_window_is_staged(sandbox, resources, monkeypatch):
    from amazon_commerce_sync.pipelines import order_extract

    now = datetime.now(UTC)
    ctx, account = resources(US, CA)
    ctx.store.ops.set_cursor("orders:seller:NA", now - timedelta(hours=1), scope=(US,))
    put_orders(sandbox, CA, now - timedelta(days=2))
    real_stage = order_extract._stage_page
    calls = []

    def failing_second_window(ctx_, account_, orders, summary):
        calls.append(len(orders))
        if len(calls) == 2:
            raise RuntimeError("the state store went away")
        real_stage(ctx_, account_, orders, summary)

    monkeypatch.setattr(order_extract, "_stage_page", failing_second_window)
    with pytest.raises(RuntimeError):
        order_extract.extract_orders(ctx, account, now=now)
    assert ctx.store.ops.get_cursor("orders:seller:NA") == now - timedelta(hours=1)
    assert ctx.store.ops.cursor_scope("orders:seller:NA") == (US,)  # CA still to be read from the start


def test_marketplaces_of_two_regions_fail_the_account_with_the_fix_before_any_call(sandbox, resources):
    from amazon_commerce_sync.pipelines.order_extract import extract_orders

    ctx, account = resources(US, DE)
    with pytest.raises(SettingsError) as info:
        extract_orders(ctx, account, now=datetime.now(UTC))
    message = str(info.value)
    assert f"NA: {US}; EU: {DE}" in message and "its own account with its own amazon_conn_id" in message
    assert searches(sandbox) == 0


def test_a_backfill_moves_the_cursor_only_when_it_reads_on_from_it(sandbox, resources):
    from amazon_commerce_sync.pipelines.order_extract import extract_orders

    now = datetime.now(UTC)
    ctx, account = resources(US, CA)
    ctx.store.ops.set_cursor("orders:seller:NA", now - timedelta(days=2), scope=(US, CA))
    [old] = put_orders(sandbox, CA, now - timedelta(days=5))

    extract_orders(ctx, account, now=now, backfill_from=now - timedelta(hours=6))  # starts after the cursor
    assert ctx.store.ops.get_cursor("orders:seller:NA") == now - timedelta(days=2)

    extract_orders(ctx, account, now=now, backfill_from=now - timedelta(days=6))
    assert ctx.store.ops.get_cursor("orders:seller:NA") == now - timedelta(minutes=2)
    assert set(ctx.store.orders.get_many({old})) == {old}
