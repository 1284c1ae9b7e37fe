"""The full cycle (import, shipment, refund, cancellation, retention and key rotation) leaks no buyer data and no
credential, on each state-store backend (SQLite and PostgreSQL).

Amazon orders carry marker values in every personal field (buyer and recipient names, emails, companies, phones,
address lines, purchase order number) and the connections carry marker secrets that both sandboxes are told to
accept. After the cycle, these are searched for the markers in clear:
- the raw state store: every row of every table read as text (PostgreSQL: ``row::text``), or the SQLite file's
  bytes (database, WAL and shared-memory files), ``order_pii`` included (its values are ciphertext);
- every task log line (DEBUG included), every XCom value of the runs;
- the Sales Channel page rendered over the real store;
and the state-store tables outside ``order_pii`` also for the sandboxes' access tokens and the marker stem.
Then the store is read without the key and with a wrong one: nothing readable, ``PiiKeyError``.

The cycle is a list of phases (``PHASES``): a later flow adds its own phase function (and its DAG id to ``DAGS``).
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest
import requests
from cryptography.fernet import Fernet

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

GIFT_MESSAGE = f"{STEM}gift Happy birthday dear Qzxanna"
MARKERS = [
    BUYER_NAME,
    RECIPIENT_NAME,
    EMAIL,
    BUYER_COMPANY,
    RECIPIENT_COMPANY,
    PO_NUMBER,
    GIFT_MESSAGE,
    *LINES,
    *PHONE_FORMS,
]
# Where ciphertext is scanned, a 3-letter stem would match base64 by chance: the markers' words instead.
WORDS = sorted(
    {w.lower() for m in MARKERS for w in re.split(r"[ @.|-]+", m) if w.lower().startswith(STEM) and len(w) >= 6}
)
SECRETS = [CLIENT_SECRET, REFRESH_TOKEN, ADMIN_PASSWORD, *DEFAULT_SECRETS]
DAGS = [
    "amazon_order_import",
    "amazon_shipment_sync",
    "amazon_refund_sync",
    "amazon_order_cancel",
    "amazon_buyer_cancel_decision",
    "amazon_pii_retention",
]


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
    packing = order["orderItems"][0].setdefault("fulfillment", {}).setdefault("packing", {})
    packing["giftOption"] = {"giftMessage": GIFT_MESSAGE}  # Amazon counts a gift message as personal data
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


def leaks_in_clear(text: str) -> list[str]:
    """The markers (and their words) in ``text``, case-insensitively: for raw stores that hold ciphertext."""
    lowered = text.lower()
    return [n for n in [*MARKERS, *WORDS] if n.lower() in lowered]


@dataclasses.dataclass
class Cycle:
    """One run of the cycle: the channel, the marker orders by role, and the runs made (for the XCom scan)."""

    channel: object
    backend: str
    debug_logs: Callable[[], None]
    orders: dict[str, str] = dataclasses.field(default_factory=dict)  # role -> Amazon order id
    run_ids: list[str] = dataclasses.field(default_factory=list)

    def run(self, dag_id: str, conf: dict | None = None) -> dict[str, str]:
        self.debug_logs()
        states = self.channel.run_dag(dag_id, conf)
        self.run_ids.append(self.channel.last_run.run_id)
        return states

    def commerce_order(self, role: str) -> dict:
        return self.channel.commerce_orders_by_amazon_id()[self.orders[role]][0]


# -- the phases, in order -------------------------------------------------------------------------------------
def import_orders(cycle: Cycle) -> None:
    """Marker orders imported; the markers reach Commerce (so they really went through the pipeline)."""
    channel = cycle.channel
    generated = channel.generated_orders(3, seed=313, status="UNSHIPPED", fulfilled_by="MERCHANT")
    orders = [with_markers(o, n) for n, o in enumerate(generated)]
    cycle.orders.update(zip(("shipped", "refunded", "cancelled"), (o["orderId"] for o in orders), strict=True))
    channel.load_amazon_orders(orders)
    ok(cycle.run("amazon_order_import"), "amazon_order_import")
    by_id = channel.commerce_orders_by_amazon_id()
    assert all(len(by_id.get(o["orderId"], [])) == 1 for o in orders), sorted(by_id)
    assert all(by_id[o["orderId"]][0]["customer_email"] == EMAIL for o in orders)
    commerce_dump = json.dumps(cycle.commerce_order("cancelled"))
    assert all(m in commerce_dump for m in (LINES[2], PHONE, RECIPIENT_NAME.split()[1], BUYER_COMPANY, GIFT_MESSAGE)), (
        "markers did not reach Commerce"
    )
    staged_pii = repr(channel.store.orders.pii(cycle.orders["shipped"]))
    assert all(m in staged_pii for m in (EMAIL, LINES[0], LINES[2], PHONE, PO_NUMBER)), staged_pii


def ship_and_refund(cycle: Cycle) -> None:
    """A merchant ships one order in Commerce (confirmed to Amazon) and refunds another (sent to Amazon)."""
    channel = cycle.channel
    shipment_id = merchant_ship(channel, cycle.commerce_order("shipped"), "1ZQ0000PII01")
    # refund: the order is shipped on Amazon (Amazon refunds only shipped orders), refunded in Commerce
    channel.amazon_event(cycle.orders["refunded"], {"type": "ship"})
    memo_id = credit_memo_all(cycle.commerce_order("refunded"))
    ok(cycle.run("amazon_shipment_sync", {"mismatch_grace_minutes": 0}), "amazon_shipment_sync")
    assert channel.store.outbox.get(f"shipment:{shipment_id}")["status"] == "accepted"
    assert channel.amazon_order(cycle.orders["shipped"])["fulfillment"]["fulfillmentStatus"] == "SHIPPED"

    ok(cycle.run("amazon_refund_sync"), "amazon_refund_sync")
    finish_feeds(channel)
    ok(cycle.run("amazon_refund_sync"), "amazon_refund_sync")
    assert channel.store.outbox.get(f"refund:{memo_id}")["status"] == "accepted"


def cancel(cycle: Cycle) -> None:
    """The unshipped order cancelled on both sides."""
    cancelled = cycle.orders["cancelled"]
    states = cycle.run("amazon_order_cancel", {"amazon_order_ids": [cancelled], "reason": "BuyerCanceled"})
    assert set(states.values()) == {"success"}, states
    assert cycle.channel.amazon_order(cancelled)["fulfillment"]["fulfillmentStatus"] == "CANCELLED"


def buyer_request_decided(cycle: Cycle) -> None:
    """A marker order's buyer asks to cancel: the import holds it and opens a decision; a person chooses Keep in
    Airflow (through its REST API, as the UI does) and the hold is released."""
    from tests.e2e.test_cancel_decision import Person, comments, decided_by

    channel = cycle.channel
    [order] = channel.generated_orders(1, seed=317, status="UNSHIPPED", fulfilled_by="MERCHANT")
    order_id = with_markers(order, 3)["orderId"]
    cycle.orders["decided"] = order_id
    channel.load_amazon_orders([order])
    ok(cycle.run("amazon_order_import"), "amazon_order_import")
    channel.amazon_event(order_id, {"type": "request_cancellation", "reason": f"write to {EMAIL} or call {PHONE}"})
    ok(cycle.run("amazon_order_import"), "amazon_order_import")
    assert cycle.commerce_order("decided")["state"] == "holded"
    cycle.debug_logs()
    states, person = decided_by(channel, order_id, Person("Keep"))
    cycle.run_ids.append(channel.last_run.run_id)
    ok(states, "amazon_buyer_cancel_decision")
    assert person.asked is not None and not leaks(json.dumps(person.asked, default=str), MARKERS)
    assert cycle.commerce_order("decided")["state"] == "processing"
    assert any("declined in Airflow" in c for c in comments(channel, order_id))


def retention_and_rotation(cycle: Cycle) -> None:
    """The daily retention run: nothing due yet, every kept row on the newest key."""
    ok(cycle.run("amazon_pii_retention"), "amazon_pii_retention")
    rotation = cycle.channel.last_run.get_task_instance("rotate_keys").xcom_pull(task_ids="rotate_keys")
    assert rotation["remaining"] == 0 and set(rotation["values"]) == {rotation["key_id"]}


PHASES: list[Callable[[Cycle], None]] = [
    import_orders,
    ship_and_refund,
    cancel,
    buyer_request_decided,
    retention_and_rotation,
]

# What the task logs show when they were really captured (one line per DAG at least).
KNOWN_LOG_LINES = [
    "page 1 staged:",  # amazon_order_import
    "Obtained an LWA access token for connection amazon_sp_api",  # where a secret would show, if anywhere
    "Obtained a Commerce admin token for connection commerce",
    ": 1 confirmed on Amazon",  # amazon_shipment_sync's summary sentence
    "refund sync, every account: 1 adjustment sent to Amazon",  # amazon_refund_sync
    ": cancelled: cancelled on Amazon",  # amazon_order_cancel
    "buyer data key rotation: 0 order(s) re-encrypted",  # amazon_pii_retention
    '"POST /rest/default/V1/orders HTTP/1.1" 200',  # DEBUG (urllib3) from inside the import's load task
]


# -- the scans ------------------------------------------------------------------------------------------------
def raw_store_text(store, backend: str) -> str:
    """The whole state store as a copy of it shows it: the SQLite files' bytes, or every PostgreSQL row as text."""
    from sqlalchemy import inspect

    engine = store.engine
    if backend == "sqlite":
        path = Path(engine.url.database)
        files = [f for f in (path, Path(f"{path}-wal"), Path(f"{path}-shm")) if f.exists()]
        data = b"".join(f.read_bytes() for f in files)
        assert len(data) > 10_000 and b"CREATE TABLE order_pii" in data, files
        return data.decode("latin-1")  # byte for byte (the markers are ASCII)
    tables = inspect(engine).get_table_names()
    assert {"order_pii", "amazon_orders", "audit_log", "pii_keys", "alembic_version"} <= set(tables), tables
    with engine.connect() as conn:
        rows = [
            f"{table}: {text}"
            for table in tables
            for (text,) in conn.exec_driver_sql(f'SELECT CAST(t AS text) FROM "{table}" AS t')
        ]
    assert any(r.startswith("order_pii: ") and "fernet:" in r for r in rows)
    return "\n".join(rows)


def sales_channel_page(store) -> str:
    from fastapi.testclient import TestClient

    from amazon_commerce_sync.ui.app import create_app, require_user

    app = create_app(lambda: store)
    app.dependency_overrides[require_user()] = lambda: {"username": "tester"}
    response = TestClient(app).get("/")
    assert response.status_code == 200, response.text
    return response.text


@pytest.fixture(params=["sqlite", "postgresql"])
def cycle(request, channel, marker_secrets, debug_logs, monkeypatch) -> Cycle:
    """The channel on a fresh state store of each backend (the tasks find it through SALES_CHANNEL_DB_URL)."""
    if request.param == "postgresql":
        from amazon_commerce_sync.store import StateStore
        from amazon_commerce_sync.store.db import get_engine, migrate

        url = request.getfixturevalue("postgres_url")
        monkeypatch.setenv("SALES_CHANNEL_DB_URL", url)
        engine = get_engine(url)
        migrate(engine)
        channel.store = StateStore(engine)
    return Cycle(channel=channel, backend=request.param, debug_logs=debug_logs)


def test_full_cycle_leaks_nothing(cycle, caplog, capfd, monkeypatch):
    channel = cycle.channel
    for phase in PHASES:
        phase(cycle)
    needles = MARKERS + SECRETS + issued_tokens(channel)

    # task logs: really captured, and clean
    output = caplog.text + "".join(capfd.readouterr())
    for known in KNOWN_LOG_LINES:
        assert known in output, f"the task logs were not captured: no {known!r}"
    found = leaks(output, needles)
    assert not found, f"task logs leak: {found}"

    # XCom of these runs
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = session.query(XComModel.dag_id, XComModel.task_id, XComModel.value).filter(
            XComModel.run_id.in_(cycle.run_ids), XComModel.dag_id.in_(DAGS)
        )
        values = [(dag_id, task_id, str(value)) for dag_id, task_id, value in rows]
    assert {dag_id for dag_id, _, _ in values} == set(DAGS), "a run left no XCom to check"
    for dag_id, task_id, value in values:
        found = leaks(value, needles)
        assert not found, f"XCom of {dag_id}.{task_id} leaks: {found}"

    # state store, outside order_pii: no marker, stem, secret or token at all
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

    # the raw state store, order_pii included: no marker in clear
    found = leaks_in_clear(raw_store_text(channel.store, cycle.backend))
    assert not found, f"the {cycle.backend} state store holds buyer data in clear: {found}"

    # the Sales Channel page over the real store
    html = sales_channel_page(channel.store)
    assert "us-main" in html and "amazon_order_import" in html, "the page did not render the store"
    found = leaks(html, needles)
    assert not found, f"the Sales Channel page leaks: {found}"

    # kept where it belongs, readable only with the key
    from amazon_commerce_sync.store import pii_crypto

    shipped = cycle.orders["shipped"]
    pii = channel.store.orders.pii(shipped)
    assert pii and pii["buyer_email"] == EMAIL and pii["buyer_purchase_order"] == PO_NUMBER
    key_id = pii_crypto.cipher().current_key_id
    monkeypatch.delenv(pii_crypto.KEYS_ENV)
    with pytest.raises(pii_crypto.PiiKeyError, match="no encryption key"):
        channel.store.orders.pii(shipped)
    monkeypatch.setenv(pii_crypto.KEYS_ENV, Fernet.generate_key().decode())
    with pytest.raises(pii_crypto.PiiKeyError, match=f"key id {key_id} cannot be read"):
        channel.store.orders.pii(shipped)
