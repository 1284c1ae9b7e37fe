"""Buyer data in ``order_pii`` is encrypted at rest, readable through the store, and rotates to a new key."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import Text, select, type_coerce

from amazon_commerce_sync.store import pii_crypto
from amazon_commerce_sync.store.schema import order_pii

ORDER_ID = "111-0000009-0000009"
PII = {
    "buyer_name": "Zoë Ørsted",
    "buyer_email": "zoe@example.test",
    "buyer_company": "Ørsted & Søn",
    "shipping_address": {"name": "Zoë Ørsted", "addressLine1": "1 Rue de la Paix", "countryCode": "FR"},
}


def _stage(state_store, pii=PII):
    from datetime import UTC, datetime
    from decimal import Decimal

    from amazon_commerce_sync.store import StagedOrder

    t0 = datetime(2026, 11, 20, 10, tzinfo=UTC)
    order = StagedOrder(
        amazon_order_id=ORDER_ID,
        account_id="acct",
        marketplace_id="A13V1IB3VIYZZH",
        fulfilled_by="MERCHANT",
        amazon_status="UNSHIPPED",
        amazon_created_at=t0,
        amazon_updated_at=t0,
        currency="EUR",
        order_total=Decimal("10.00"),
        buyer_cancel_requested=False,
        payload={"orderId": ORDER_ID},
        items=[],
        pii=dict(pii),
    )
    state_store.orders.stage([order])


def _raw(state_store) -> dict:
    cols = ("buyer_name", "buyer_email", "buyer_company", "shipping_address")
    p = order_pii.c
    with state_store.engine.connect() as conn:
        row = conn.execute(
            select(*(type_coerce(getattr(p, c), Text).label(c) for c in cols)).where(p.amazon_order_id == ORDER_ID)
        ).one()
    return dict(row._mapping)


def test_buyer_data_is_stored_encrypted_and_read_back(state_store):
    _stage(state_store)
    raw = _raw(state_store)
    for column, stored in raw.items():
        assert stored.startswith(pii_crypto.PREFIX), column
        assert "Ørsted" not in stored and "example.test" not in stored and "Paix" not in stored
    pii = state_store.orders.pii(ORDER_ID)
    assert {k: pii[k] for k in PII} == PII


def test_rotation_moves_every_row_to_the_newest_key_and_reads_clear_text_of_older_versions(state_store, monkeypatch):
    old = Fernet.generate_key().decode()
    monkeypatch.setenv(pii_crypto.KEYS_ENV, old)
    _stage(state_store)
    # a row an older version wrote in clear text
    p = order_pii.c
    with state_store.engine.begin() as conn:
        conn.execute(
            order_pii.update()
            .where(p.amazon_order_id == ORDER_ID)
            .values({p.buyer_company: type_coerce("Clear Text GmbH", Text)})
        )
    assert state_store.orders.pii(ORDER_ID)["buyer_company"] == "Clear Text GmbH"

    new = Fernet.generate_key().decode()
    monkeypatch.setenv(pii_crypto.KEYS_ENV, f"{new},{old}")
    assert state_store.retention.reencrypt_pii() == 1
    assert state_store.retention.reencrypt_pii() == 0  # nothing left: a rerun changes nothing

    monkeypatch.setenv(pii_crypto.KEYS_ENV, new)  # the old key dropped: everything still reads
    pii = state_store.orders.pii(ORDER_ID)
    assert pii["buyer_name"] == PII["buyer_name"] and pii["buyer_company"] == "Clear Text GmbH"
    assert all(v.startswith(pii_crypto.PREFIX) for v in _raw(state_store).values())


def test_without_a_key_buyer_data_is_refused_not_stored_in_clear(state_store, monkeypatch):
    monkeypatch.delenv(pii_crypto.KEYS_ENV)
    with pytest.raises(pii_crypto.PiiKeyError, match="SALES_CHANNEL_PII_KEYS"):
        _stage(state_store)


def test_a_dropped_key_names_the_fix(state_store, monkeypatch):
    _stage(state_store)
    monkeypatch.setenv(pii_crypto.KEYS_ENV, Fernet.generate_key().decode())
    with pytest.raises(pii_crypto.PiiKeyError, match="was removed"):
        state_store.orders.pii(ORDER_ID)


@pytest.mark.parametrize("keys", ["not-a-key", " , "])
def test_malformed_or_empty_keys_are_refused(keys):
    with pytest.raises(pii_crypto.PiiKeyError):
        pii_crypto.PiiCipher(keys.split(","))
