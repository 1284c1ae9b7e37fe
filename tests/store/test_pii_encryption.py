"""Buyer data in ``order_pii``: encrypted at rest under a key id, read back, rotated in batches, failing closed.

Runs on both state-store backends (SQLite and a real PostgreSQL), through the store's own code; raw reads
bypass decryption (``type_coerce(..., Text)``) to see what a copy of the store would show.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic import command
from cryptography.fernet import Fernet
from sqlalchemy import Text, func, select, type_coerce

from amazon_commerce_sync.pipelines.retention import BATCH, rotate_keys
from amazon_commerce_sync.store import StagedOrder, StateStore, pii_crypto
from amazon_commerce_sync.store.db import _alembic_config, make_engine, migrate
from amazon_commerce_sync.store.schema import PII_FIELDS, order_pii, pii_keys
from tests.store_queries import staged_order

ORDER_ID = "111-0000009-0000009"
PII = {
    "buyer_name": "Zoë Ørsted",
    "buyer_email": "zoe@example.test",
    "buyer_company": "Ørsted & Søn",
    "shipping_address": {"name": "Zoë Ørsted", "addressLine1": "1 Rue de la Paix", "countryCode": "FR"},
    "buyer_purchase_order": "PO-Ørsted-1",
    "buyer_tax_registrations": [{"entityType": "BUYER", "taxRegistrationType": "VAT", "taxRegistrationNumber": "FR1"}],
    "gift_messages": {"12345678901234": "Joyeux anniversaire, Zoë!"},
}
MARKERS = ("Ørsted", "example.test", "Paix", "PO-", "FR1", "anniversaire")
NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)


def new_key() -> str:
    return Fernet.generate_key().decode()


def _order(order_id: str, pii=PII) -> StagedOrder:
    return staged_order(order_id, pii)


def _stage(state_store, pii=PII, order_id=ORDER_ID):
    state_store.orders.stage([_order(order_id, pii)])


def _raw(state_store, order_id=ORDER_ID) -> dict:
    p = order_pii.c
    with state_store.engine.connect() as conn:
        row = conn.execute(
            select(*(type_coerce(getattr(p, c), Text).label(c) for c in PII_FIELDS)).where(
                p.amazon_order_id == order_id
            )
        ).one()
    return dict(row._mapping)


def _set_raw(state_store, order_id: str, **values) -> None:
    p = order_pii.c
    with state_store.engine.begin() as conn:
        conn.execute(
            order_pii.update()
            .where(p.amazon_order_id == order_id)
            .values({getattr(p, c): type_coerce(v, Text) for c, v in values.items()})
        )


def test_buyer_data_is_stored_encrypted_under_its_key_id_and_read_back(state_store, monkeypatch):
    key = new_key()
    monkeypatch.setenv(pii_crypto.KEYS_ENV, key)
    kid = pii_crypto.key_id(key)
    _stage(state_store)
    for column, stored in _raw(state_store).items():
        assert stored.startswith(f"fernet:{kid}:gAAAAA"), column
        assert not any(m in stored for m in MARKERS), column
    pii = state_store.orders.pii(ORDER_ID)
    assert {k: pii[k] for k in PII} == PII


def test_key_id_is_a_short_stable_fingerprint_that_reveals_nothing_of_the_key():
    key = new_key()
    kid = pii_crypto.key_id(key)
    assert re.fullmatch(r"[0-9a-f]{8}", kid) and kid == pii_crypto.key_id(key)
    assert kid != pii_crypto.key_id(new_key())
    assert kid not in key and kid not in Fernet(key)._signing_key.hex() + Fernet(key)._encryption_key.hex()
    with pytest.raises(pii_crypto.PiiKeyError, match="twice"):
        pii_crypto.PiiCipher([key, key])


def test_rotation_reencrypts_old_key_legacy_and_clear_rows_in_batches_and_counts_them_in_sql(state_store, monkeypatch):
    old = new_key()
    monkeypatch.setenv(pii_crypto.KEYS_ENV, old)
    ids = [f"111-0000009-{n:07d}" for n in range(BATCH + 7)]
    state_store.orders.stage([_order(i) for i in ids])
    # rows an earlier version wrote: clear text (before encryption) and fernet:<token> (before key ids)
    _set_raw(state_store, ids[0], buyer_company="Clear Text GmbH", buyer_email=None)
    legacy = "fernet:" + Fernet(old).encrypt(b"Legacy Name").decode()
    _set_raw(state_store, ids[1], buyer_name=legacy)
    assert state_store.orders.pii(ids[0])["buyer_company"] == "Clear Text GmbH"
    assert state_store.orders.pii(ids[1])["buyer_name"] == "Legacy Name"

    new = new_key()
    old_id, new_id = pii_crypto.key_id(old), pii_crypto.key_id(new)
    monkeypatch.setenv(pii_crypto.KEYS_ENV, f"{new},{old}")
    usage = state_store.retention.key_usage(new_id)
    assert usage["stale_rows"] == len(ids)
    values = len(ids) * len(PII_FIELDS) - 1  # one e-mail set to NULL
    assert usage["values"] == {old_id: values - 2, pii_crypto.CLEAR: 1, pii_crypto.LEGACY: 1}

    # a dry run counts and changes nothing
    dry = rotate_keys(state_store, now=NOW, dry_run=True)
    assert (dry["reencrypted"], dry["remaining"], dry["key_id"]) == (0, len(ids), new_id)

    result = rotate_keys(state_store, now=NOW)
    assert (result["reencrypted"], result["remaining"], result["values"]) == (len(ids), 0, {new_id: values})
    assert rotate_keys(state_store, now=NOW)["reencrypted"] == 0  # a rerun changes nothing

    monkeypatch.setenv(pii_crypto.KEYS_ENV, new)  # the old key dropped: everything still reads
    assert state_store.orders.pii(ids[0])["buyer_company"] == "Clear Text GmbH"
    assert state_store.orders.pii(ids[0])["buyer_email"] is None
    assert state_store.orders.pii(ids[1])["buyer_name"] == "Legacy Name"
    assert state_store.orders.pii(ids[-1])["shipping_address"] == PII["shipping_address"]
    for i in (ids[0], ids[1], ids[-1]):
        assert all(v is None or v.startswith(f"fernet:{new_id}:") for v in _raw(state_store, i).values())
    with state_store.engine.connect() as conn:
        assert conn.execute(select(pii_keys.c.key_id)).scalars().all() == [new_id]


def test_a_rotation_stopped_midway_commits_whole_batches_and_a_rerun_finishes(state_store, monkeypatch, caplog):
    old = new_key()
    monkeypatch.setenv(pii_crypto.KEYS_ENV, old)
    ids = [f"111-0000008-{n:07d}" for n in range(2 * BATCH + 3)]
    state_store.orders.stage([_order(i, {"buyer_name": f"Buyer {n}"}) for n, i in enumerate(ids)])
    # one row in the second batch under a key that is not configured: the task fails there, naming its id
    stray = new_key()
    _set_raw(state_store, ids[BATCH + 10], buyer_name=pii_crypto.PiiCipher([stray]).encrypt("Stray"))
    new = new_key()
    monkeypatch.setenv(pii_crypto.KEYS_ENV, f"{new},{old}")
    with pytest.raises(pii_crypto.PiiKeyError, match=pii_crypto.key_id(stray)):
        rotate_keys(state_store, now=NOW)
    new_id = pii_crypto.key_id(new)
    # the first batch was committed; the failed one was rolled back as a whole
    assert state_store.retention.key_usage(new_id)["stale_rows"] == len(ids) - BATCH

    caplog.set_level(logging.INFO)
    monkeypatch.setenv(pii_crypto.KEYS_ENV, f"{new},{old},{stray}")  # the missing key put back: the rerun finishes
    result = rotate_keys(state_store, now=NOW)
    assert (result["reencrypted"], result["remaining"]) == (len(ids) - BATCH, 0)
    assert f"{len(ids) - BATCH} order(s) re-encrypted with key {new_id}; 0 order(s) remain" in caplog.text
    assert state_store.orders.pii(ids[BATCH + 10])["buyer_name"] == "Stray"
    assert "Buyer" not in caplog.text and "Stray" not in caplog.text


def test_without_a_key_buyer_data_is_refused_not_stored_in_clear(state_store, monkeypatch):
    monkeypatch.delenv(pii_crypto.KEYS_ENV)
    with pytest.raises(pii_crypto.PiiKeyError, match="SALES_CHANNEL_PII_KEYS.*generate_key"):
        _stage(state_store)
    with state_store.engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(order_pii)) == 0


def test_a_copy_of_the_store_without_the_right_key_yields_nothing_readable(state_store, monkeypatch):
    key = new_key()
    monkeypatch.setenv(pii_crypto.KEYS_ENV, key)
    _stage(state_store)
    copy = json.dumps(_raw(state_store))  # what a backup, a replica or the copied file holds
    assert not any(m in copy for m in MARKERS)

    monkeypatch.delenv(pii_crypto.KEYS_ENV)  # no key at all
    with pytest.raises(pii_crypto.PiiKeyError, match="no encryption key"):
        state_store.orders.pii(ORDER_ID)

    wrong = new_key()  # a wrong key: names the key id the data needs, returns no ciphertext as data
    monkeypatch.setenv(pii_crypto.KEYS_ENV, wrong)
    with pytest.raises(pii_crypto.PiiKeyError, match=f"key id {pii_crypto.key_id(key)} cannot be read"):
        state_store.orders.pii(ORDER_ID)

    # a value without key id (an earlier version's) under a wrong key, and a tampered value: fail closed too
    crypt = pii_crypto.PiiCipher([wrong])
    with pytest.raises(pii_crypto.PiiKeyError, match="any configured key"):
        crypt.decrypt("fernet:" + Fernet(key).encrypt(b"x").decode())
    token = crypt.encrypt("Zoë")
    with pytest.raises(pii_crypto.PiiKeyError, match="altered"):
        crypt.decrypt(token[:-6] + ("A" if token[-6] != "A" else "B") + token[-5:])


@pytest.mark.parametrize("keys", ["not-a-key", " , "])
def test_malformed_or_empty_keys_are_refused(keys):
    with pytest.raises(pii_crypto.PiiKeyError):
        pii_crypto.PiiCipher(keys.split(","))


def test_a_store_of_the_previous_version_keeps_no_clear_text_after_upgrade_and_rotation(state_db_url, monkeypatch):
    """A store at migration 0005 with rows in clear and as fernet:<token>: the upgrade keeps them readable (it
    runs without keys), the rotation task then leaves nothing in clear (raw check)."""
    key = new_key()
    monkeypatch.setenv(pii_crypto.KEYS_ENV, key)
    engine = make_engine(state_db_url)
    with engine.begin() as conn:
        command.upgrade(_alembic_config(conn), "0005")
    legacy = "fernet:" + Fernet(key).encrypt(b"Legacy Qzxold").decode()
    with engine.begin() as conn:
        for n, (name, address) in enumerate(
            [("Clear Qzxold", json.dumps({"addressLine1": "Qzxold Street 1"})), (legacy, None)]
        ):
            order_id = f"111-0000007-000000{n}"
            conn.exec_driver_sql(
                "INSERT INTO amazon_orders (amazon_order_id, account_id, marketplace_id, fulfilled_by, amazon_status,"
                " amazon_created_at, amazon_updated_at, buyer_cancel_requested, payload, sync_status, attempts,"
                " first_seen_at, updated_at) VALUES (%s, 'acct', 'ATVPDKIKX0DER', 'MERCHANT', 'UNSHIPPED',"
                " %s, %s, %s, '{}', 'staged', 0, %s, %s)".replace(
                    "%s", "?" if engine.dialect.name == "sqlite" else "%s"
                ),
                (order_id, NOW, NOW, False, NOW, NOW),
            )
            conn.exec_driver_sql(
                "INSERT INTO order_pii (amazon_order_id, buyer_name, buyer_email, shipping_address) VALUES"
                " (%s, %s, %s, %s)".replace("%s", "?" if engine.dialect.name == "sqlite" else "%s"),
                (order_id, name, "qzxold@example.test" if n == 0 else None, address),
            )
    store = StateStore(engine, actor="tests")
    migrate(engine)
    assert store.orders.pii("111-0000007-0000000")["shipping_address"] == {"addressLine1": "Qzxold Street 1"}
    result = rotate_keys(store, now=NOW)
    assert (result["reencrypted"], result["remaining"]) == (2, 0)
    with engine.connect() as conn:
        dump = " ".join(str(tuple(r)) for r in conn.exec_driver_sql("SELECT * FROM order_pii"))
    assert "fernet:" in dump and "qzx" not in dump.lower()
    if engine.dialect.name == "sqlite":  # a copy of the file, taken while the store is in use: no clear text left
        files = [Path(engine.url.database + suffix) for suffix in ("", "-wal", "-shm")]
        data = b"".join(f.read_bytes() for f in files if f.exists())
        assert b"CREATE TABLE order_pii" in data and b"qzxold" not in data.lower()
    assert store.orders.pii("111-0000007-0000000")["buyer_email"] == "qzxold@example.test"
    assert store.orders.pii("111-0000007-0000001")["buyer_name"] == "Legacy Qzxold"
    engine.dispose()


def test_key_age_is_recorded_once_from_its_first_sighting(state_store):
    first = state_store.retention.note_key("0123abcd", NOW - timedelta(days=100))
    assert first == NOW - timedelta(days=100)
    assert state_store.retention.note_key("0123abcd", NOW) == first  # never moved


def _erase_and_hold(engine):
    """An erasure of ORDER_ID in a transaction left open (it holds the row lock): returns (connection, transaction)."""
    p = order_pii.c
    erasing = engine.connect()
    tx = erasing.begin()
    erasing.execute(
        order_pii.update().where(p.amazon_order_id == ORDER_ID).values(erased_at=NOW, **dict.fromkeys(PII_FIELDS))
    )
    return erasing, tx


def _race_with_an_erasure(engine, statement: str, work) -> dict:
    """PostgreSQL, two sessions: an erasure holds ORDER_ID's row; ``work()`` runs in a thread until its ``statement``
    (the start of its SQL) waits for that row lock; then the erasure commits and ``work`` finishes. Returns
    ``{"done": work()}``."""
    import threading
    import time

    erasing, tx = _erase_and_hold(engine)
    result: dict = {}
    worker = threading.Thread(target=lambda: result.update(done=work()))
    worker.start()
    with engine.connect() as watch:  # until the worker's write waits for the erasure's row lock
        for _ in range(200):
            waiting = watch.exec_driver_sql(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE %s",
                (statement + "%",),
            ).scalar()
            watch.rollback()  # a transaction sees one snapshot of pg_stat_activity
            if waiting:
                break
            time.sleep(0.05)
    try:
        assert waiting, f"the worker did not reach {statement!r}: {result}"
    finally:
        tx.commit()
        erasing.close()
        worker.join(30)
    return result


def test_a_rotation_never_undoes_an_erasure_made_while_it_runs(postgres_url, monkeypatch):
    """The rotation has read the row when the erasure commits; its compare-and-set write then finds the row erased
    and leaves it so."""
    old = new_key()
    monkeypatch.setenv(pii_crypto.KEYS_ENV, old)
    engine = make_engine(postgres_url)
    migrate(engine)
    store = StateStore(engine, actor="tests")
    _stage(store)
    monkeypatch.setenv(pii_crypto.KEYS_ENV, f"{new_key()},{old}")

    result = _race_with_an_erasure(engine, "UPDATE order_pii", store.retention.reencrypt_batch)
    assert result["done"] == (0, ORDER_ID)  # read, not written
    assert set(_raw(store).values()) == {None}
    engine.dispose()


def test_a_restaging_never_undoes_an_erasure_made_while_it_runs(postgres_url, monkeypatch):
    """An import re-stages the order (Amazon changed it) and has found it not erased when the erasure commits: its
    upsert then leaves the tombstone empty (retention never looks at an erased row again, so values written back
    would be kept for ever)."""
    monkeypatch.setenv(pii_crypto.KEYS_ENV, new_key())
    engine = make_engine(postgres_url)
    migrate(engine)
    store = StateStore(engine, actor="tests")
    _stage(store)

    changed = dataclasses.replace(
        _order(ORDER_ID, {**PII, "buyer_name": "Zoë Later"}), amazon_updated_at=NOW, amazon_status="SHIPPED"
    )
    result = _race_with_an_erasure(engine, "INSERT INTO order_pii", lambda: store.orders.stage([changed]))
    assert result["done"]["changed"] == 1
    assert set(_raw(store).values()) == {None}
    engine.dispose()
