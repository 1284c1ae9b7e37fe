"""A state store seeded with what the Sales Channel page shows (bulk inserts, so 100,000 orders take seconds)."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import insert

from amazon_commerce_sync.store import StateStore
from amazon_commerce_sync.store.db import make_engine, migrate
from amazon_commerce_sync.store.schema import (
    amazon_orders,
    audit_log,
    cursors,
    mismatches,
    order_pii,
    outbox,
    quarantine,
)

# Marker values in the buyer's personal data: none of them may ever reach the page.
PII_MARKERS = {
    "buyer_name": "PIIMARKER-NAME-Zoltan",
    "buyer_email": "piimarker.buyer@marketplace.amazon.example",
    "buyer_company": "PIIMARKER-COMPANY",
    "shipping_address": {"Name": "PIIMARKER-ADDR-NAME", "AddressLine1": "PIIMARKER 1 Secret Street", "City": "X"},
}

ACCOUNTS = (("acct-eu", "A1PA6795UKMFR9"), ("acct-eu", "A13V1IB3VIYZZH"), ("acct-us", "ATVPDKIKX0DER"))


# Why orders are left out of the import (``pipelines.order_import``), one of them naming another order.
NOT_ELIGIBLE_REASONS = (
    "cancelled on Amazon before import",
    "placed before import_orders_after",
    "Amazon-fulfilled: imported once shipped",
    "replacement of Amazon order {}: not imported (import_replacement_orders is false)",
)


@dataclasses.dataclass
class Seeded:
    store: StateStore
    now: datetime
    waiting_ids: list[str]
    quarantined_ids: list[str]
    imported: int
    not_eligible_ids: list[str] = dataclasses.field(default_factory=list)
    on_hold_ids: list[str] = dataclasses.field(default_factory=list)
    ship_by: dict[str, datetime] = dataclasses.field(default_factory=dict)  # imported orders with a ship-by


def order_id(n: int) -> str:
    return f"{100 + n // 10_000_000 % 900:03d}-{n // 10_000 % 10_000_000:07d}-{n % 10_000_000:07d}"


def seed(store: StateStore, n_orders: int, now: datetime) -> Seeded:
    """n_orders orders over the last 7 days across ACCOUNTS, mostly imported, with a few of everything else:
    waiting for a product, quarantined, not eligible (each reason), on hold for a buyer's request, and imported
    orders with a ship-by deadline from 5 h ago to 25 h ahead."""
    orders, pii, audit = [], [], []
    waiting, quarantined, not_eligible, on_hold = [], [], [], []
    ship_by: dict[str, datetime] = {}
    span = timedelta(days=7).total_seconds()
    for i in range(n_orders):
        account_id, marketplace_id = ACCOUNTS[i % len(ACCOUNTS)]
        oid = order_id(i)
        at = now - timedelta(seconds=span * (i + 1) / (n_orders + 1))
        status, reason, commerce_id = "imported", None, 1000 + i
        if i % 97 == 5:
            status, reason, commerce_id = "waiting_product", f"SKU SKU-{i % 7} is out of stock in Commerce", None
            waiting.append(oid)
        elif i % 89 == 3:
            status, reason, commerce_id = "quarantined", "no shipping address on the order", None
            quarantined.append(oid)
        elif i % 101 == 7:
            reason = NOT_ELIGIBLE_REASONS[i // 101 % len(NOT_ELIGIBLE_REASONS)].format(order_id(i + 1))
            status, commerce_id = "not_eligible", None
            not_eligible.append(oid)
        elif i % 103 == 9:
            status, reason = "on_hold", "the buyer asked to cancel"
            on_hold.append(oid)
        due = None
        if status == "imported" and i % 83 == 1:
            due = now.replace(microsecond=0) + timedelta(hours=i // 83 % 31 - 5, minutes=7)
            ship_by[oid] = due
        payload = {"OrderStatus": "UNSHIPPED"}
        if due:
            payload["fulfillment"] = {"shipByWindow": {"latestDateTime": due.isoformat()}}
        orders.append(
            {
                "amazon_order_id": oid,
                "account_id": account_id,
                "marketplace_id": marketplace_id,
                "fulfilled_by": "MERCHANT",
                "amazon_status": "UNSHIPPED",
                "amazon_created_at": at,
                "amazon_updated_at": at,
                "currency": "EUR",
                "order_total": "19.9900",
                "buyer_cancel_requested": status == "on_hold",
                "payload": payload,
                "ship_by": due,
                "sync_status": status,
                "sync_reason": reason,
                "commerce_order_id": commerce_id,
                "commerce_increment_id": f"AMZ{commerce_id}" if commerce_id else None,
                "attempts": 1,
                "first_seen_at": at,
                "updated_at": at,
            }
        )
        pii.append({"amazon_order_id": oid, **PII_MARKERS})
        if status == "imported":
            audit.append(
                {
                    "at": at,
                    "actor": "tests",
                    "action": "order_created",
                    "entity_type": "amazon_order",
                    "entity_id": oid,
                    "detail": {"commerce_order_id": commerce_id},
                }
            )
    with store.engine.begin() as conn:
        conn.execute(insert(amazon_orders), orders)
        conn.execute(insert(order_pii), pii)
        if audit:
            conn.execute(insert(audit_log), audit)
        conn.execute(
            insert(quarantine),
            [
                {
                    "entity_type": "amazon_order",
                    "entity_id": oid,
                    "reason": "no shipping address on the order",
                    "detail": None,
                    "occurrences": 2,
                    "first_seen_at": now - timedelta(hours=30),
                    "last_seen_at": now - timedelta(hours=1),
                }
                for oid in quarantined
            ],
        )
        conn.execute(
            insert(cursors),
            [
                {"stream": f"orders:{a}:{m}", "value": now - lag, "updated_at": now}
                for (a, m), lag in zip(
                    ACCOUNTS, (timedelta(minutes=4), timedelta(minutes=40), timedelta(hours=5)), strict=True
                )
            ],
        )
        conn.execute(
            insert(outbox),
            [
                {
                    "natural_key": f"ship:{order_id(i)}:{i}",
                    "kind": kind,
                    "account_id": ACCOUNTS[i % len(ACCOUNTS)][0],
                    "amazon_order_id": order_id(i),
                    "payload": {"carrier": "DHL"},
                    "status": status,
                    "attempts": 1,
                    "amazon_message": message,
                    "created_at": now - timedelta(hours=i % 48),
                    "updated_at": now,
                }
                for i, (kind, status, message) in enumerate(
                    [("shipment", "pending", None)] * 3
                    + [("shipment", "rejected", "AMAZON-MSG: The tracking number is invalid")]
                    + [("refund", "submitted", None), ("cancellation", "accepted", None)]
                )
            ],
        )
        conn.execute(
            insert(mismatches),
            [
                {
                    "kind": "status",
                    "amazon_order_id": order_id(1),
                    "detail": "MISMATCH-DETAIL: Amazon SHIPPED, Commerce still processing",
                    "first_seen_at": now - timedelta(hours=3),
                    "last_seen_at": now,
                }
            ],
        )
    return Seeded(store, now, waiting, quarantined, len(audit), not_eligible, on_hold, ship_by)


@pytest.fixture
def make_store(tmp_path):
    engines = []

    def _make() -> StateStore:
        engine = make_engine(f"sqlite:///{tmp_path / f'state{len(engines)}.db'}")
        migrate(engine)
        engines.append(engine)
        return StateStore(engine, actor="tests")

    yield _make
    for engine in engines:
        engine.dispose()


@pytest.fixture
def small_store(make_store) -> Seeded:
    return seed(make_store(), 600, datetime.now(UTC))


@contextlib.contextmanager
def airflow_api_server(monkeypatch, store: StateStore) -> Iterator[TestClient]:
    """A client of the real Airflow API server app (``airflow.api_fastapi.app.create_app``: its auth manager, as
    configured when called, and this repository's plugins folder, so the page is mounted) reading ``store``."""
    from airflow import plugins_manager, settings
    from airflow.api_fastapi.app import create_app

    monkeypatch.setattr(settings, "PLUGINS_FOLDER", str(Path(__file__).resolve().parents[2] / "plugins"))
    monkeypatch.setenv("SALES_CHANNEL_DB_URL", str(store.engine.url))
    caches = [f for f in vars(plugins_manager).values() if callable(getattr(f, "cache_clear", None))]
    for f in caches:
        f.cache_clear()
    try:
        yield TestClient(create_app())
    finally:
        for f in caches:
            f.cache_clear()
