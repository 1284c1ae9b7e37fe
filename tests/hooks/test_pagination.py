"""Paginators: every page once, and a named error (never a silent stop) when the server repeats itself."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from amazon_commerce_sync.errors import RepeatedPageError
from amazon_commerce_sync.hooks.amazon import AmazonSpApiHook
from amazon_commerce_sync.hooks.commerce import CommerceHook, Filter
from amazon_commerce_sync.hooks.pagination import CurrentPagePaginator, NextTokenPaginator
from amazon_commerce_sync.ratelimit import LocalLimiter
from tests.hooks.test_amazon_hook import US, generate, set_conn, stats
from tests.hooks.test_commerce_hook import ADMIN_PASSWORD, admin, calls
from tests.hooks.test_commerce_hook import set_conn as set_commerce_conn
from tests.hooks.token_replay import token_replay_proxy

SEARCH_ORDERS = "/orders/2026-01-01/orders"
TRANSACTIONS = "/finances/2024-06-19/transactions"


# -- the generators' contract ---------------------------------------------------------------------
def test_next_token_paginator_yields_the_page_then_refuses_its_repeated_token():
    answers = {None: {"n": 1, "next": "a"}, "a": {"n": 2, "next": "b"}, "b": {"n": 3, "next": "a"}}
    asked: list[str | None] = []

    def fetch(token):
        asked.append(token)
        return answers[token]

    pages = NextTokenPaginator(fetch, lambda body: body["next"], operation="searchOrders")
    read = []
    with pytest.raises(RepeatedPageError) as info:
        for body in pages:
            read.append(body["n"])
    assert read == [1, 2, 3]  # the page carrying the repeated token is itself new
    assert asked == [None, "a", "b"]  # ... but the token is never followed
    assert info.value.operation == "searchOrders" and info.value.pages == 3


def test_next_token_paginator_ends_without_a_token_and_says_so_while_on_the_last_page():
    answers = {None: {"next": "a"}, "a": {"next": ""}}
    pages = NextTokenPaginator(lambda token: answers[token], lambda body: body["next"], operation="op")
    finished = [pages.finished for _ in pages]
    assert finished == [False, True] and pages.pages_read == 2


def test_current_page_paginator_refuses_a_page_it_already_yielded():
    # Magento clamps a currentPage beyond the end to the last page: after the result shrank to
    # one page, page 2 answers page 1's items again.
    first = {"items": [{"entity_id": i} for i in range(1, 4)], "total_count": 6}
    again = {"items": [{"entity_id": i} for i in range(1, 4)], "total_count": 3}
    answers = {1: first, 2: again}
    pages = CurrentPagePaginator(answers.__getitem__, page_size=3, operation="GET /V1/orders")
    read = []
    with pytest.raises(RepeatedPageError) as info:
        for body in pages:
            read.append(body)
    assert read == [first]  # the repeated page is never yielded: its items would be processed twice
    assert info.value.pages == 2


def test_current_page_paginator_stops_by_count_or_short_page():
    def fetch(page):
        return {"items": [{"sku": f"S{page}-{i}"} for i in range(2 if page < 3 else 1)], "total_count": 5}

    pages = CurrentPagePaginator(fetch, page_size=2, operation="GET /V1/products")
    assert [len(body["items"]) for body in pages] == [2, 2, 1] and pages.finished
    # a short page ends the listing even when the count promised more
    pages = CurrentPagePaginator(lambda page: {"items": [{"id": 1}], "total_count": 9}, page_size=2, operation="op")
    assert len(list(pages)) == 1
    with pytest.raises(ValueError):
        CurrentPagePaginator(fetch, page_size=0, operation="op")


# -- against the sandboxes ------------------------------------------------------------------------
def test_search_orders_raises_when_amazon_repeats_a_token(amazon_sandbox, monkeypatch):
    base_url, _ = amazon_sandbox
    generate(base_url, 25, marketplaceIds=[US], status="UNSHIPPED")
    with token_replay_proxy(base_url, SEARCH_ORDERS, "nextToken") as proxy:
        # The hook talks to the proxy; LWA stays on the sandbox.
        set_conn(monkeypatch, base_url, host=proxy.url)
        hook = AmazonSpApiHook(limiter=LocalLimiter())
        pages = hook.search_orders(
            last_updated_after=datetime.now(UTC) - timedelta(days=5), marketplace_ids=[US], max_results_per_page=10
        )
        sizes = []
        with pytest.raises(RepeatedPageError) as info:
            for page in pages:
                sizes.append(len(page.orders))
    assert sizes == [10, 10]  # page 2 carried page 1's token: page 3 was never asked for
    assert info.value.operation == "searchOrders" and info.value.retriable
    assert stats(base_url, "searchOrders")["requests"] == 2


def test_transactions_raise_when_amazon_repeats_a_next_token(amazon_sandbox, monkeypatch):
    base_url, app = amazon_sandbox
    for order_id in generate(base_url, 4, status="UNSHIPPED", fulfilledBy="MERCHANT"):
        admin_amazon(base_url, f"/orders/{order_id}/events", {"type": "ship"})
    with app.state.sandbox.lock:  # posted 10 minutes ago: inside Amazon's "2 minutes before now" window
        for event in app.state.sandbox.shipment_events:
            event["postedAt"] -= 600
    admin_amazon(base_url, "/settings", {"finances_page_size": 1})
    since = datetime.now(UTC) - timedelta(days=1)
    with token_replay_proxy(base_url, TRANSACTIONS, "nextToken") as proxy:
        set_conn(monkeypatch, base_url, host=proxy.url)
        hook = AmazonSpApiHook(limiter=LocalLimiter())
        with pytest.raises(RepeatedPageError):
            list(hook.list_transactions(posted_after=since))
        proxy.enabled = False  # the same listing, told the truth, is read to its end
        pages = list(hook.list_transactions(posted_after=since))
    assert len([t for page in pages for t in page if t["transactionType"] == "Shipment"]) == 4


def admin_amazon(base_url: str, path: str, body: dict) -> None:
    httpx.post(f"{base_url}/_sandbox{path}", json=body, timeout=10).raise_for_status()


def test_commerce_search_raises_when_the_result_shrinks_under_its_pages(commerce_sandbox, monkeypatch):
    base_url, _ = commerce_sandbox
    set_commerce_conn(monkeypatch, base_url, login="admin", password=ADMIN_PASSWORD, extra={"auth": "admin"})
    skus = [f"BULK-{i:02d}" for i in range(23)]
    admin(base_url, "POST", "/products", {"products": [{"sku": s, "price": "1.00", "qty": 1} for s in skus]})
    hook = CommerceHook()
    in_stock = [[Filter("sku", "BULK-%", "like")], [Filter("quantity", 0, "gt")]]
    pages = hook.search("inventory/source-items", in_stock, page_size=10, sort=(("sku", "ASC"),))
    assert [i["sku"] for i in next(pages)] == skus[:10]
    # Meanwhile the items of pages 2 and 3 sell out: the result is one page long, and Magento
    # answers currentPage 2 with page 1 again.
    hook.save_source_items([{"sku": s, "source_code": "default", "quantity": 0, "status": 0} for s in skus[10:]])
    before = calls(base_url, "GET /V1/inventory/source-items")
    with pytest.raises(RepeatedPageError) as info:
        next(pages)
    assert info.value.operation == "GET /V1/inventory/source-items"
    assert calls(base_url, "GET /V1/inventory/source-items") - before == 1


def test_extraction_keeps_its_cursor_when_amazon_repeats_a_token(amazon_sandbox, monkeypatch, tmp_path):
    from amazon_commerce_sync.pipelines.order_extract import extract_orders
    from amazon_commerce_sync.resources import open_resources
    from amazon_commerce_sync.settings import parse_settings

    base_url, _ = amazon_sandbox
    ids = generate(base_url, 25, marketplaceIds=[US], status="UNSHIPPED")
    after = (datetime.now(UTC) - timedelta(days=4)).strftime("%Y-%m-%dT%H:%M:%SZ")
    settings = parse_settings(
        {"accounts": [{"account_id": "us", "marketplace_ids": [US], "import_orders_after": after, "page_size": 10}]}
    )
    ctx = open_resources("tests", settings=settings, db_url=f"sqlite:///{tmp_path / 'state.db'}")
    account = ctx.settings.accounts[0]
    stream = account.orders_cursor("NA")
    with token_replay_proxy(base_url, SEARCH_ORDERS, "nextToken") as proxy:
        set_conn(monkeypatch, base_url, host=proxy.url)
        with pytest.raises(RepeatedPageError):
            extract_orders(ctx, account, now=datetime.now(UTC))
        assert ctx.store.ops.get_cursor(stream) is None  # pages 1-2 staged, page 3 unread: the cursor stays
        assert len(ctx.store.orders.get_many(set(ids))) == 20
        proxy.enabled = False  # Amazon behaves again: the next run reads the whole window and moves on
        now = datetime.now(UTC)
        summary = extract_orders(ctx, account, now=now)
    assert summary["fetched"] == 25 and summary["new"] == 5
    assert ctx.store.ops.get_cursor(stream) == now - timedelta(minutes=2)
    assert set(ctx.store.orders.get_many(set(ids))) == set(ids)
    ctx.store.engine.dispose()
