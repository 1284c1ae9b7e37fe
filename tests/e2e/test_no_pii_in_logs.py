"""No buyer personal data and no credential in task logs, XCom or the state store outside order_pii."""

from __future__ import annotations

import logging

import pytest

from tests.store_queries import table_rows

pytestmark = pytest.mark.e2e

MARKERS = ["Qzxmarker", "qzxmarker@example.test", "Qzxstreet 12", "+1 555 0199 123"]
SECRETS = ["sandbox-client-secret", "sandbox-refresh-token", "sandbox-admin-password"]


def test_import_leaks_nothing(channel, caplog, capfd, debug_logs):
    orders = channel.generated_orders(4, seed=77, status="UNSHIPPED", fulfilled_by="MERCHANT")
    for order in orders:
        order["buyer"] = {"buyerName": "Qzxmarker Buyer", "buyerEmail": "qzxmarker@example.test"}
        order["recipient"]["deliveryAddress"].update(
            name="Qzxmarker Buyer", addressLine1="Qzxstreet 12", phone="+1 555 0199 123"
        )
    bad = orders[-1]
    bad["proceeds"]["grandTotal"]["amount"] = "0.02"  # quarantined: its reason must not carry PII either
    channel.load_amazon_orders(orders)
    debug_logs()
    states = channel.run_dag("amazon_order_import")
    assert states["account.load[0]"] == "success"
    assert len(channel.commerce_orders_by_amazon_id()) == 3

    output = caplog.text + "".join(capfd.readouterr())
    assert "staged" in output and "do not add up" in output, "the task logs were not captured"
    assert any(r.levelno == logging.DEBUG for r in caplog.records), "DEBUG records were not captured"
    for needle in MARKERS + SECRETS:
        assert needle not in output, f"{needle!r} appeared in the task logs"

    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        values = [str(v) for (v,) in session.query(XComModel.value).filter(XComModel.dag_id == "amazon_order_import")]
    assert values, "the run left no XCom to check"
    for needle in MARKERS + SECRETS:
        assert not any(needle in v for v in values), f"{needle!r} appeared in XCom"

    from amazon_commerce_sync.store.schema import metadata

    for table in metadata.tables:
        if table == "order_pii":
            continue
        dump = " ".join(str(row) for row in table_rows(channel.store, table))
        for needle in MARKERS + SECRETS:
            assert needle not in dump, f"{needle!r} appeared in state-store table {table}"
    pii = channel.store.orders.pii(orders[0]["orderId"])
    assert pii["buyer_email"] == "qzxmarker@example.test"  # kept where it belongs
