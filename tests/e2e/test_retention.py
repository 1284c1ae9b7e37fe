"""amazon_pii_retention end to end: real orders imported from the Amazon sandbox, then erased on time."""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from amazon_commerce_sync.pipelines.retention import delivery_time
from amazon_commerce_sync.store import PII_FIELDS, pii_crypto
from tests.store_queries import audit_entries

pytestmark = pytest.mark.e2e

NOW = datetime.now(UTC).replace(microsecond=0)


def ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


def iso(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def shape(order, *, updated_days, status=None, package=None, ship_days=None, promised_days=None, fba=False):
    """Date an order ``updated_days`` ago and shape its packages and promised delivery."""
    order["createdTime"] = iso(ago(updated_days + 3))
    order["lastUpdatedTime"] = iso(ago(updated_days))
    window = order["fulfillment"]["deliverByWindow"]
    window["earliestDateTime"] = iso(ago(updated_days + 1))
    if promised_days is not None:
        window["latestDateTime"] = iso(ago(promised_days))
    if fba:
        order.pop("packages", None)  # Amazon-fulfilled orders carry no packages
    for p in order.get("packages") or []:
        if package:
            p["packageStatus"] = {"status": package}
        if ship_days is not None:
            p["shipTime"] = iso(ago(ship_days))
    return order


def scenario(channel):
    """One order per retention rule, each with its own marker in the buyer's name, e-mail and address."""

    def one(seed, status, fulfilled_by="MERCHANT"):
        [order] = channel.generated_orders(1, seed=seed, status=status, fulfilled_by=fulfilled_by)
        return order

    orders = {
        "delivered_old": shape(one(1, "SHIPPED"), updated_days=40, package="DELIVERED", ship_days=43),
        "delivered_recent": shape(one(2, "SHIPPED"), updated_days=10, package="DELIVERED", ship_days=12),
        "fba_promised_old": shape(one(3, "SHIPPED", "AMAZON"), updated_days=36, promised_days=33, fba=True),
        "in_transit_old": shape(
            one(4, "SHIPPED"), updated_days=49, package="IN_TRANSIT", ship_days=50, promised_days=40
        ),
        "in_transit_recent": shape(
            one(5, "SHIPPED"), updated_days=24, package="SHIPPED", ship_days=25, promised_days=20
        ),
        "promised_in_future": shape(
            one(6, "SHIPPED"), updated_days=1, package="SHIPPED", ship_days=1, promised_days=-3
        ),
        "cancelled_old": shape(one(7, "CANCELLED"), updated_days=31),
        "open_old": shape(one(8, "UNSHIPPED"), updated_days=45),
    }
    for name, order in orders.items():
        marker = f"Qzx{name.replace('_', '')}"
        order["buyer"] = {"buyerName": f"{marker} Buyer", "buyerEmail": f"{marker.lower()}@example.test"}
        order["recipient"]["deliveryAddress"].update(name=f"{marker} Buyer", addressLine1=f"{marker} Street 1")
    channel.load_amazon_orders(list(orders.values()))
    return orders


DONE = {"erase": "success", "rotate_keys": "success"}
ERASED = {"delivered_old", "fba_promised_old", "in_transit_old", "cancelled_old"}
KEPT = {"delivered_recent", "in_transit_recent", "promised_in_future", "open_old"}


def test_retention_erases_personal_data_30_days_after_delivery(channel, caplog, capfd, monkeypatch):
    orders = scenario(channel)
    ids = {name: order["orderId"] for name, order in orders.items()}
    states = channel.run_dag("amazon_order_import")
    assert states["account.extract[0]"] == "success", states
    for order_id in ids.values():
        assert channel.store.orders.pii(order_id)["buyer_name"], "the import did not stage the buyer's data"

    # a dry run counts what is due and erases nothing
    states = channel.run_dag("amazon_pii_retention", {"dry_run": True})
    assert states == DONE
    dry = channel.last_run.get_task_instance("erase").xcom_pull(task_ids="erase")
    assert dry["due"] == len(ERASED) and dry["erased"] == 0
    assert all(channel.store.orders.pii(i)["erased_at"] is None for i in ids.values())

    with channel.store.engine.connect() as conn:  # the erased orders' ciphertext, as stored
        tokens = [
            value
            for row in conn.exec_driver_sql("SELECT * FROM order_pii")
            if row._mapping["amazon_order_id"] in {ids[n] for n in ERASED}
            for value in (row._mapping[c] for c in PII_FIELDS)
            if value
        ]
    assert len(tokens) >= 3 * len(ERASED) and all(t.startswith("fernet:") for t in tokens)

    caplog.set_level(logging.DEBUG)
    states = channel.run_dag("amazon_pii_retention")
    assert states == DONE
    # erased for real: the SQLite file (database and write-ahead log) no longer holds those bytes anywhere
    db = Path(channel.store.engine.url.database)
    data = b"".join(f.read_bytes() for f in (db, Path(f"{db}-wal")) if f.exists())
    assert b"CREATE TABLE order_pii" in data
    assert not [t for t in tokens if t[-40:].encode() in data], "erased ciphertext left in the state store file"
    summary = channel.last_run.get_task_instance("erase").xcom_pull(task_ids="erase")
    assert summary["erased"] == len(ERASED) and summary["accounts"][0]["retention_days"] == 30

    # the retention clock follows the documented rules
    clock = {name: channel.store.orders.get(order_id)["delivered_at"] for name, order_id in ids.items()}
    assert clock["delivered_old"] == ago(40)  # DELIVERED: the order's last update
    assert clock["fba_promised_old"] == ago(33)  # no packages: the promised delivery
    assert clock["in_transit_old"] == ago(40)  # not reported delivered: the promised delivery
    assert clock["in_transit_recent"] == ago(20)
    assert clock["cancelled_old"] == ago(31)  # cancelled: the cancellation
    assert clock["promised_in_future"] is None and clock["open_old"] is None

    for name in ERASED:
        pii = channel.store.orders.pii(ids[name])
        assert pii["erased_at"] is not None, name
        assert [pii[k] for k in ("buyer_name", "buyer_email", "buyer_company", "shipping_address")] == [None] * 4
    with channel.store.engine.connect() as conn:  # the raw rows: SQL NULLs (no ciphertext left, no JSON 'null')
        raw = {r.amazon_order_id: r for r in conn.exec_driver_sql("SELECT * FROM order_pii")}
    for name in ERASED:
        row = raw[ids[name]]._mapping
        assert [row[c] for c in PII_FIELDS] == [None] * len(PII_FIELDS), name
    for name in KEPT:
        assert raw[ids[name]]._mapping["buyer_name"].startswith("fernet:"), name
    for name in KEPT:
        pii = channel.store.orders.pii(ids[name])
        assert pii["erased_at"] is None and pii["buyer_name"].startswith("Qzx"), name
        assert pii["shipping_address"]["addressLine1"].startswith("Qzx"), name

    # recorded in the audit trail, without the erased values
    audit = audit_entries(channel.store, action="pii_erased")
    assert sorted(e["entity_id"] for e in audit) == sorted(ids[n] for n in ERASED)
    entry = next(e for e in audit if e["entity_id"] == ids["delivered_old"])
    assert entry["detail"]["delivered_at"] == ago(40).isoformat() and entry["detail"]["retention_days"] == 30
    output = caplog.text + "".join(capfd.readouterr())
    assert "erased" in output, "the task log was not captured"
    for name in orders:
        marker = f"Qzx{name.replace('_', '')}"
        assert marker not in str(audit) and marker.lower() not in str(audit)
        assert marker not in output and marker.lower() not in output, f"{marker} in the task log"
        assert marker not in str(summary) and marker not in str(dry)

    # idempotent: a rerun erases nothing more and records nothing more
    assert channel.run_dag("amazon_pii_retention") == DONE
    again = channel.last_run.get_task_instance("erase").xcom_pull(task_ids="erase")
    assert again["erased"] == 0 and again["due"] == 0
    assert len(audit_entries(channel.store, action="pii_erased")) == len(ERASED)

    # key rotation: a new key first, the run re-encrypts what is kept and says how much is left
    old_key = pii_crypto.cipher().current_key_id
    new_key = Fernet.generate_key().decode()
    monkeypatch.setenv(pii_crypto.KEYS_ENV, f"{new_key},{os.environ[pii_crypto.KEYS_ENV]}")
    capfd.readouterr()
    assert channel.run_dag("amazon_pii_retention") == DONE
    rotation = channel.last_run.get_task_instance("rotate_keys").xcom_pull(task_ids="rotate_keys")
    new_id = pii_crypto.key_id(new_key)
    assert (rotation["key_id"], rotation["reencrypted"], rotation["remaining"]) == (new_id, len(KEPT), 0)
    assert set(rotation["values"]) == {new_id} and old_key != new_id
    output = caplog.text + "".join(capfd.readouterr())
    assert f"{len(KEPT)} order(s) re-encrypted with key {new_id}; 0 order(s) remain" in output
    monkeypatch.setenv(pii_crypto.KEYS_ENV, new_key)  # the old key dropped
    assert channel.store.orders.pii(ids["open_old"])["buyer_name"].startswith("Qzx")

    # an erased order re-read from Amazon (a backfill after a change) never gets its data back
    changed = dict(orders["delivered_old"], lastUpdatedTime=iso(ago(39)))
    channel.load_amazon_orders([changed])
    states = channel.run_dag("amazon_order_import", {"backfill_from": iso(ago(60))})
    assert states["account.extract[0]"] == "success", states
    assert channel.store.orders.get(ids["delivered_old"])["amazon_updated_at"] == ago(39)
    assert channel.store.orders.pii(ids["delivered_old"])["buyer_name"] is None


def test_the_window_is_a_setting(channel):
    orders = scenario(channel)
    channel.configure(pii_retention_days=15)
    assert channel.run_dag("amazon_order_import")["account.extract[0]"] == "success"
    # dry_run left empty in the trigger form (null): a real run, for the erasure and the rotation alike
    assert channel.run_dag("amazon_pii_retention", {"dry_run": None}) == DONE
    erased = {e["entity_id"] for e in audit_entries(channel.store, action="pii_erased")}
    # 20 days after the promised delivery is past 15: erased now; 10 days after delivery is not
    assert orders["in_transit_recent"]["orderId"] in erased
    assert orders["delivered_recent"]["orderId"] not in erased
    assert len(erased) == len(ERASED) + 1


def test_commerce_orders_are_anonymised_only_when_enabled(channel, caplog, capfd):
    orders = scenario(channel)
    ids = {name: order["orderId"] for name, order in orders.items()}
    assert channel.run_dag("amazon_order_import")["account.extract[0]"] == "success"
    in_commerce = {name for name in orders if ids[name] in channel.commerce_orders_by_amazon_id()}
    due = ERASED & in_commerce  # the order cancelled before import never reached Commerce
    assert due == {"delivered_old", "fba_promised_old", "in_transit_old"}

    def addresses(name):
        [order] = channel.commerce_orders_by_amazon_id()[ids[name]]
        shipping = [a["shipping"]["address"] for a in order["extension_attributes"]["shipping_assignments"]]
        return [order["billing_address"], *shipping]

    # off by default: the state store is erased, the Commerce order is left alone
    assert channel.run_dag("amazon_pii_retention") == DONE
    assert all(a["firstname"].startswith("Qzx") for a in addresses("delivered_old"))

    # on, with Commerce failing every address save: the task fails, naming the count; nothing is marked done
    channel.configure(anonymise_commerce_orders=True)
    channel.commerce_faults(fail_next=[{"route": "PUT /V1/orders/{parent_id}", "kind": "error", "count": 100}])
    assert channel.run_dag("amazon_pii_retention") == {"erase": "failed", "rotate_keys": "success"}
    assert not audit_entries(channel.store, action="commerce_order_anonymised")
    channel.commerce_faults()

    caplog.set_level(logging.DEBUG)
    assert channel.run_dag("amazon_pii_retention") == DONE
    summary = channel.last_run.get_task_instance("erase").xcom_pull(task_ids="erase")
    assert summary["commerce_anonymised"] == len(due) and summary["commerce_failed"] == 0
    for name in due:
        for address in addresses(name):
            assert (address["firstname"], address["lastname"], address["street"]) == ("Erased", "Erased", ["Erased"])
            assert address["telephone"] == "0000000000" and "qzx" not in str(address).lower()
            assert address["city"] and address["country_id"]  # the place stays for tax and accounting
    for name in in_commerce - due:
        assert all(a["firstname"].startswith("Qzx") for a in addresses(name)), name
    audit = audit_entries(channel.store, action="commerce_order_anonymised")
    assert sorted(e["entity_id"] for e in audit) == sorted(ids[n] for n in due)
    output = caplog.text + "".join(capfd.readouterr())
    assert "anonymised" in output and "qzx" not in (output + str(audit) + str(summary)).lower()

    # idempotent
    assert channel.run_dag("amazon_pii_retention") == DONE
    again = channel.last_run.get_task_instance("erase").xcom_pull(task_ids="erase")
    assert again["commerce_anonymised"] == 0
    assert len(audit_entries(channel.store, action="commerce_order_anonymised")) == len(due)


@pytest.mark.parametrize(
    ("payload", "status", "expected"),
    [
        (
            {
                "packages": [
                    {"packageStatus": {"status": "DELIVERED"}, "shipTime": "2026-10-01T00:00:00Z"},
                    {"packageStatus": {"status": "CANCELLED"}},
                ]
            },
            "SHIPPED",
            ("2026-10-10", "delivered"),
        ),
        (
            {
                "packages": [
                    {"packageStatus": {"status": "DELIVERED"}},
                    {"packageStatus": {"status": "SHIPPED"}, "shipTime": "2026-10-02T00:00:00Z"},
                ]
            },
            "SHIPPED",
            ("2026-10-02", "last_ship_time"),
        ),
        (
            {
                "fulfillment": {"deliverByWindow": {"latestDateTime": "2026-10-05T00:00:00Z"}},
                "packages": [{"packageStatus": {"status": "SHIPPED"}, "shipTime": "2026-10-07T00:00:00Z"}],
            },
            "SHIPPED",
            ("2026-10-07", "promised_delivery"),
        ),  # shipped late: never before the ship time
        ({}, "SHIPPED", ("2026-10-10", "last_update")),
        ({}, "CANCELLED", ("2026-10-10", "cancelled")),
        ({"packages": [{"packageStatus": {"status": "DELIVERED"}}]}, "PARTIALLY_SHIPPED", (None, "open")),
    ],
)
def test_delivery_time_rules(payload, status, expected):
    when, rule = delivery_time(payload, status, datetime(2026, 10, 10, tzinfo=UTC))
    assert (when.date().isoformat() if when else None, rule) == expected
