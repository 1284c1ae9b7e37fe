"""The full cycle (import, shipment, refund, cancellation) leaks no buyer data and no credential.

Amazon orders carry marker values in every personal field (buyer and recipient names, emails,
companies, phones, address lines) and the connections carry marker secrets that both sandboxes
are told to accept. Every task log line, every XCom value of the runs and every state-store
table except ``order_pii`` is then scanned for them, and for the access tokens the sandboxes issued.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal

import pytest
import requests

from tests.store_queries import table_rows

pytestmark = pytest.mark.e2e

# Every text marker contains "qzx": the scans also look for that stem, case-insensitively, so a
# half of a name, a lower-cased email or a truncated address line is caught as well.
STEM = "qzx"
BUYER_NAME = "Qzxbuyfirst Qzxbuylast"
RECIPIENT_NAME = "Qzxrecfirst Qzxreclast"
EMAIL = "qzxmail.buyer@example.test"
BUYER_COMPANY = "Qzxbuyercorp Ltd"
RECIPIENT_COMPANY = "Qzxshipcorp GmbH"
PO_NUMBER = "PO-QZX-4711"
LINES = ["Qzxstreet 12", "Qzxbuilding 3", "Qzxsuite 9"]
PHONE = "+1 555 0143 9876"
PHONE_FORMS = [PHONE, "0143 9876", "01439876", "15550143"]

CLIENT_SECRET = "qzx-client-secret-5c1f0b7e"
REFRESH_TOKEN = "Atzr|qzx-refresh-token-9d2e4a61"
ADMIN_PASSWORD = "qzx-admin-password-3b8c7d20"
DEFAULT_SECRETS = ["sandbox-client-secret", "sandbox-refresh-token", "sandbox-admin-password"]

MARKERS = [BUYER_NAME, RECIPIENT_NAME, EMAIL, BUYER_COMPANY, RECIPIENT_COMPANY, PO_NUMBER, *LINES, *PHONE_FORMS]
SECRETS = [CLIENT_SECRET, REFRESH_TOKEN, ADMIN_PASSWORD, *DEFAULT_SECRETS]
DAGS = ("amazon_order_import", "amazon_shipment_sync", "amazon_refund_sync", "amazon_order_cancel")


def ok(states: dict[str, str], dag_id: str) -> None:
    failed = {k: v for k, v in states.items() if v not in ("success", "skipped")}
    assert states and not failed, f"{dag_id}: {failed}"


def with_markers(order: dict, index: int) -> dict:
    order["buyer"] = {
        "buyerName": BUYER_NAME,
        "buyerEmail": EMAIL,
        "buyerCompanyName": BUYER_COMPANY,
        "buyerPurchaseOrderNumber": PO_NUMBER,
    }
    address = order["recipient"]["deliveryAddress"]
    address.update(
        name=RECIPIENT_NAME,
        addressLine1=LINES[0],
        addressLine2=LINES[1],
        addressLine3=LINES[2],
        phone=PHONE,
    )
    if index % 2:  # half of them with a company on the address too
        address["companyName"] = RECIPIENT_COMPANY
    return order


@pytest.fixture
def marker_secrets(channel, monkeypatch):
    """The connections carry marker secrets, and both sandboxes accept exactly those."""
    amazon_config = channel.amazon_app.state.sandbox.config
    monkeypatch.setattr(amazon_config, "client_secret", CLIENT_SECRET)
    monkeypatch.setattr(amazon_config.sellers[0], "refresh_token", REFRESH_TOKEN)
    monkeypatch.setattr(channel.commerce_app.state.sandbox.config, "admin_password", ADMIN_PASSWORD)
    amazon_conn = {
        "conn_type": "http",
        "host": channel.amazon_url,
        "login": "sandbox-client-id",
        "password": CLIENT_SECRET,
        "extra": {
            "refresh_token": REFRESH_TOKEN,
            "lwa_endpoint": f"{channel.amazon_url}/auth/o2/token",
            "rate_scale": 100,
        },
    }
    commerce_conn = {
        "conn_type": "http",
        "host": channel.commerce_url,
        "login": "admin",
        "password": ADMIN_PASSWORD,
        "extra": {"store_code": "default", "auth": "admin"},
    }
    monkeypatch.setenv("AIRFLOW_CONN_AMAZON_SP_API", json.dumps(amazon_conn))
    monkeypatch.setenv("AIRFLOW_CONN_COMMERCE", json.dumps(commerce_conn))
    monkeypatch.setenv("SALES_CHANNEL_FEED_POKE_SECONDS", "1")
    # the defaults no longer open anything
    bad = requests.post(
        channel.commerce_url + "/rest/default/V1/integration/admin/token",
        json={"username": "admin", "password": "sandbox-admin-password"},
        timeout=30,
    )
    assert bad.status_code == 401


def merchant_ship(channel, commerce_order: dict, track_number: str) -> int:
    """A merchant ships every item of a Commerce order over the REST API; returns the shipment id."""
    base = channel.commerce_url + "/rest/default"
    token = requests.post(
        base + "/V1/integration/admin/token", json={"username": "admin", "password": ADMIN_PASSWORD}, timeout=30
    ).json()
    body = {
        "items": [
            {"order_item_id": int(i["item_id"]), "qty": int(Decimal(str(i["qty_ordered"])))}
            for i in commerce_order["items"]
        ],
        "tracks": [{"track_number": track_number, "carrier_code": "ups", "title": "United Parcel Service"}],
    }
    response = requests.post(
        base + f"/V1/order/{commerce_order['entity_id']}/ship",
        json=body,
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert response.ok, response.text
    return int(response.json())


def credit_memo_all(commerce_order: dict) -> int:
    from amazon_commerce_sync.hooks.commerce import CommerceHook

    lines = [
        {"order_item_id": int(i["item_id"]), "qty": int(Decimal(str(i["qty_ordered"])))}
        for i in commerce_order["items"]
    ]
    return CommerceHook("commerce").refund_order(int(commerce_order["entity_id"]), lines, shipping_amount=Decimal("0"))


def finish_feeds(channel) -> None:
    for feed in channel.amazon("GET", "/_sandbox/feeds")["feeds"]:
        if feed["status"] not in ("DONE", "CANCELLED", "FATAL"):
            channel.amazon("POST", f"/_sandbox/feeds/{feed['feedId']}/complete")


def issued_tokens(channel) -> list[str]:
    """Every access token the sandboxes issued during the test: credentials too."""
    amazon = list(channel.amazon_app.state.sandbox.tokens)
    commerce = list(channel.commerce_app.state.sandbox.admin_tokens)
    return amazon + commerce


def leaks(text: str, needles: list[str]) -> list[str]:
    lowered = text.lower()
    found = [n for n in needles if n.lower() in lowered]
    if STEM in lowered:
        found += [m.group(0) for m in re.finditer(r".{0,60}qzx.{0,60}", text, re.IGNORECASE)][:3]
    return found


def test_full_cycle_leaks_nothing(channel, marker_secrets, debug_logs, caplog, capfd):
    orders = [
        with_markers(o, n)
        for n, o in enumerate(channel.generated_orders(3, seed=313, status="UNSHIPPED", fulfilled_by="MERCHANT"))
    ]
    shipped, refunded, cancelled = (o["orderId"] for o in orders)
    channel.load_amazon_orders(orders)
    run_ids: list[str] = []

    def run(dag_id: str, conf: dict | None = None) -> dict[str, str]:
        debug_logs()
        states = channel.run_dag(dag_id, conf)
        run_ids.append(channel.last_run.run_id)
        return states

    # import: the markers reach Commerce (so they really went through the pipeline)
    ok(run("amazon_order_import"), "amazon_order_import")
    by_id = channel.commerce_orders_by_amazon_id()
    assert all(len(by_id.get(o["orderId"], [])) == 1 for o in orders), sorted(by_id)
    assert all(by_id[o["orderId"]][0]["customer_email"] == EMAIL for o in orders)
    commerce_dump = json.dumps(by_id[cancelled][0])
    assert all(m in commerce_dump for m in (LINES[2], PHONE, RECIPIENT_NAME.split()[1], BUYER_COMPANY)), (
        "markers did not reach Commerce"
    )
    staged_pii = repr(channel.store.orders.pii(shipped))
    assert all(m in staged_pii for m in (EMAIL, LINES[0], LINES[2], PHONE)), staged_pii

    # shipment: made in Commerce with a tracking number, confirmed to Amazon
    shipment_id = merchant_ship(channel, by_id[shipped][0], "1ZQ0000PII01")
    # refund: the order is shipped on Amazon (Amazon refunds only shipped orders), refunded in Commerce
    channel.amazon_event(refunded, {"type": "ship"})
    memo_id = credit_memo_all(by_id[refunded][0])
    ok(run("amazon_shipment_sync", {"mismatch_grace_minutes": 0}), "amazon_shipment_sync")
    assert channel.store.outbox.get(f"shipment:{shipment_id}")["status"] == "accepted"
    assert channel.amazon_order(shipped)["fulfillment"]["fulfillmentStatus"] == "SHIPPED"

    ok(run("amazon_refund_sync"), "amazon_refund_sync")
    finish_feeds(channel)
    ok(run("amazon_refund_sync"), "amazon_refund_sync")
    assert channel.store.outbox.get(f"refund:{memo_id}")["status"] == "accepted"

    # cancellation of the unshipped order
    states = run("amazon_order_cancel", {"amazon_order_ids": [cancelled], "reason": "BuyerCanceled"})
    assert set(states.values()) == {"success"}, states
    assert channel.amazon_order(cancelled)["fulfillment"]["fulfillmentStatus"] == "CANCELLED"

    needles = MARKERS + SECRETS + issued_tokens(channel)

    # task logs: really captured, and clean
    output = caplog.text + "".join(capfd.readouterr())
    known_lines = [
        "page 1 staged:",  # amazon_order_import
        "Obtained an LWA access token for connection amazon_sp_api",  # where a secret would show, if anywhere
        "Obtained a Commerce admin token for connection commerce",
        ": 1 confirmed on Amazon",  # amazon_shipment_sync's summary sentence
        "refund sync, every account: 1 adjustment sent to Amazon",  # amazon_refund_sync
        f"{cancelled}: cancelled: cancelled on Amazon",  # amazon_order_cancel
        '"POST /rest/default/V1/orders HTTP/1.1" 200',  # DEBUG (urllib3) from inside the import's load task
    ]
    for known in known_lines:
        assert known in output, f"the task logs were not captured: no {known!r}"
    found = leaks(output, needles)
    assert not found, f"task logs leak: {found}"

    # XCom of these runs
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = session.query(XComModel.dag_id, XComModel.task_id, XComModel.value).filter(
            XComModel.run_id.in_(run_ids), XComModel.dag_id.in_(DAGS)
        )
        values = [(dag_id, task_id, str(value)) for dag_id, task_id, value in rows]
    assert {dag_id for dag_id, _, _ in values} == set(DAGS), "a run left no XCom to check"
    for dag_id, task_id, value in values:
        found = leaks(value, needles)
        assert not found, f"XCom of {dag_id}.{task_id} leaks: {found}"

    # state store, outside order_pii
    from amazon_commerce_sync.store.schema import metadata

    scanned = 0
    for table in metadata.tables:
        if table == "order_pii":
            continue
        rows = list(table_rows(channel.store, table))
        scanned += len(rows)
        found = leaks(" ".join(repr(row) for row in rows), needles)
        assert not found, f"state-store table {table} leaks: {found}"
    assert scanned
    pii = channel.store.orders.pii(shipped)
    assert pii and pii["buyer_email"] == EMAIL  # kept where it belongs
