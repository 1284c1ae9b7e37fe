"""The Sales Channel page: its content, its authentication, no personal data, and its speed."""

from __future__ import annotations

import importlib.util
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event

from amazon_commerce_sync.ui import queries
from amazon_commerce_sync.ui.app import create_app, require_user
from tests.store_queries import audit_entries

from .conftest import PII_MARKERS, airflow_api_server, seed

ROOT = Path(__file__).resolve().parents[2]


def signed_in_client(store) -> TestClient:
    app = create_app(lambda: store, dag_ids=())
    app.dependency_overrides[require_user()] = lambda: {"username": "tester"}
    return TestClient(app)


def test_page_shows_every_section_from_the_store(small_store):
    response = signed_in_client(small_store.store).get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    for section in ("lag", "chart", "today", "waiting", "quarantined", "outbox", "mismatches"):
        assert f'id="{section}"' in html
    # lag per account and marketplace, coloured: 4 min ok, 40 min behind, 5 h late
    for account, marketplace in (("acct-eu", "A1PA6795UKMFR9"), ("acct-us", "ATVPDKIKX0DER")):
        assert account in html and marketplace in html
    assert '<span class="pill ok">4 min</span>' in html
    assert '<span class="pill warn">40 min</span>' in html
    assert '<span class="pill late">5 h 00 min</span>' in html
    # the chart has bars, the lists their rows, with counts
    assert html.count("<svg") == 3 and "<rect" in html
    assert f"Waiting for a product ({len(small_store.waiting_ids)})" in html
    assert small_store.waiting_ids[0] in html and "out of stock in Commerce" in html
    assert f"Quarantined ({len(small_store.quarantined_ids)})" in html
    assert small_store.quarantined_ids[0] in html and "no shipping address on the order" in html
    assert "Pushes to Amazon not yet accepted (5)" in html  # 3 pending + 1 rejected + 1 submitted; accepted hidden
    assert "AMAZON-MSG: The tracking number is invalid" in html
    assert "MISMATCH-DETAIL: Amazon SHIPPED, Commerce still processing" in html
    assert "redrive_quarantined" in html


def test_counts_match_the_store(small_store):
    data = queries.page_data(small_store.store, small_store.now)
    assert sum(c.total for c in data.channels) == 600
    created = audit_entries(small_store.store, action="order_created")
    in_window = [e for e in created if e["at"].replace(tzinfo=UTC) >= data.hours[0]]
    assert 0 < len(in_window) <= small_store.imported
    assert sum(sum(c.created_per_hour) for c in data.channels) == len(in_window)
    assert len(data.hours) == 7 * 24
    assert data.waiting_product.total == len(small_store.waiting_ids)
    assert data.quarantined.total == len(small_store.quarantined_ids)
    assert data.outbox_counts == {("shipment", "pending"): 3, ("shipment", "rejected"): 1, ("refund", "submitted"): 1}
    assert data.outbox.rows[0]["status"] == "rejected"  # what needs a person comes first
    assert data.mismatches.total == 1
    assert {(c.account_id, c.marketplace_id): c.lag_level for c in data.channels} == {
        ("acct-eu", "A1PA6795UKMFR9"): "ok",
        ("acct-eu", "A13V1IB3VIYZZH"): "warn",
        ("acct-us", "ATVPDKIKX0DER"): "late",
    }


def test_an_empty_store_renders(make_store):
    response = signed_in_client(make_store()).get("/")
    assert response.status_code == 200
    assert "No orders imported yet." in response.text


def test_no_buyer_personal_data_on_the_page(small_store):
    # an e-mail address that slipped into a reason is removed too
    small_store.store.ops.quarantine("amazon_order", "999-0000000-0000001", "bad address for piimarker.x@example.com")
    html = signed_in_client(small_store.store).get("/").text
    assert "bad address for &lt;email&gt;" in html
    markers = [v for v in PII_MARKERS.values() if isinstance(v, str)]
    markers += list(PII_MARKERS["shipping_address"].values())[:2]
    markers += ["PIIMARKER", "piimarker"]
    for marker in markers:
        assert marker not in html


def test_anonymous_requests_are_rejected(small_store):
    """The real dependency of the API server: no token and no session cookie -> 401."""
    client = TestClient(create_app(lambda: small_store.store, dag_ids=()))
    response = client.get("/")
    assert response.status_code == 401
    assert small_store.waiting_ids[0] not in response.text
    assert client.get("/", headers={"Authorization": "Basic dGVzdDp0ZXN0"}).status_code == 401


def _statements(store, action) -> int:
    """How many SQL statements ``action()`` sends to the store's database."""
    seen: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        seen.append(statement)

    event.listen(store.engine, "after_cursor_execute", record)
    try:
        action()
    finally:
        event.remove(store.engine, "after_cursor_execute", record)
    return len(seen)


def test_page_work_does_not_grow_with_the_orders(make_store):
    """At 100,000 orders the page sends the same statements as at 600 and stays small; how long it takes is
    measured by the benchmark (benchmarks/page.py), not here."""
    small = seed(make_store(), 600, datetime.now(UTC))
    store = make_store()
    seeded = seed(store, 100_000, datetime.now(UTC))
    client = signed_in_client(store)
    client.get("/")  # first request: builds the engine's pool

    data = queries.page_data(store, seeded.now)
    response = client.get("/")

    assert response.status_code == 200
    assert sum(c.total for c in data.channels) == 100_000
    assert data.waiting_product.total == len(seeded.waiting_ids) and len(data.waiting_product.rows) == 50
    assert f"The oldest 50 of {len(seeded.quarantined_ids)} · " in response.text
    assert len(response.content) < 400_000
    at_600 = _statements(small.store, lambda: queries.page_data(small.store, small.now))
    at_100k = _statements(store, lambda: queries.page_data(store, seeded.now))
    assert at_100k == at_600 > 0  # no statement per order, account or row


def test_plugin_registers_the_app_and_a_navigation_entry():
    from airflow.api_fastapi.core_api.datamodels.plugins import ExternalViewResponse
    from airflow.plugins_manager import AirflowPlugin

    spec = importlib.util.spec_from_file_location("sales_channel_ui", ROOT / "plugins" / "sales_channel_ui.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    plugin = module.SalesChannelPlugin
    assert issubclass(plugin, AirflowPlugin)
    (app,) = plugin.fastapi_apps
    assert app["url_prefix"] == "/sales-channel" and app["name"] == "Sales Channel"
    assert [r.path for r in app["app"].routes if getattr(r, "path", None) == "/"]
    (view,) = plugin.external_views
    parsed = ExternalViewResponse.model_validate(view)
    assert parsed.name == "Sales Channel" and parsed.href == "/sales-channel/" and parsed.destination == "nav"
    json.dumps(view)  # the UI receives it as JSON


def test_page_source_has_no_external_assets(small_store):
    html = signed_in_client(small_store.store).get("/").text
    assert not re.search(r"<(script|link)\b", html)
    assert not re.search(r'src="https?://', html)


@pytest.mark.parametrize("minutes,level", [(None, "unknown"), (3, "ok"), (15, "ok"), (16, "warn"), (61, "late")])
def test_lag_levels(minutes, level):
    from datetime import timedelta

    lag = None if minutes is None else timedelta(minutes=minutes)
    assert queries.lag_level(lag, 15, 60) == level


def test_signed_in_airflow_user_gets_the_page_and_a_forged_token_does_not(airflow_db, small_store):
    """End to end through the real auth manager (SimpleAuthManager) and the API server's JWT checks."""
    from airflow.api_fastapi.app import create_auth_manager
    from airflow.api_fastapi.auth.managers.base_auth_manager import COOKIE_NAME_JWT_TOKEN
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    auth_manager = create_auth_manager()
    auth_manager.init()
    token = auth_manager.generate_jwt(SimpleAuthManagerUser(username="ops", role="viewer"))
    # A DAG no test runs: other tests of the session run the Sales Channel DAGs in the same metadata database.
    client = TestClient(create_app(lambda: small_store.store, dag_ids=("sales_channel_never_run",)))

    assert client.get("/").status_code == 401
    assert client.get("/", headers={"Authorization": "Bearer forged.not.ajwt"}).status_code == 403
    by_header = client.get("/", headers={"Authorization": f"Bearer {token}"})
    assert by_header.status_code == 200 and small_store.waiting_ids[0] in by_header.text
    client.cookies.set(COOKIE_NAME_JWT_TOKEN, token)  # how the Airflow UI's browser session sends it
    by_cookie = client.get("/")
    assert by_cookie.status_code == 200
    # the DAG runs section reads Airflow's metadata database (no run of that DAG: never run)
    assert 'id="dags"' in by_cookie.text and "sales_channel_never_run" in by_cookie.text
    assert "never run" in by_cookie.text


def test_a_store_not_created_yet_gives_a_clear_503(tmp_path):
    from amazon_commerce_sync.store import StateStore
    from amazon_commerce_sync.store.db import make_engine

    engine = make_engine(f"sqlite:///{tmp_path / 'empty.db'}")  # never migrated
    response = signed_in_client(StateStore(engine)).get("/")
    assert response.status_code == 503
    assert "state store cannot be read yet" in response.text
    engine.dispose()


def test_airflow_api_server_mounts_the_page_and_lists_it_in_the_navigation(airflow_db, small_store, monkeypatch):
    """The real Airflow API server with this repository's plugins folder: the page sits behind its login."""
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    with airflow_api_server(monkeypatch, small_store.store) as client:
        assert client.get("/sales-channel/").status_code == 401
        token = get_auth_manager().generate_jwt(SimpleAuthManagerUser(username="ops", role="viewer"))
        auth = {"Authorization": f"Bearer {token}"}
        page = client.get("/sales-channel/", headers=auth)
        assert page.status_code == 200 and small_store.waiting_ids[0] in page.text
        plugins = client.get("/api/v2/plugins", headers=auth).json()["plugins"]
        (ours,) = [p for p in plugins if p["name"] == "sales_channel"]
        assert ours["external_views"][0]["href"] == "/sales-channel/"


def test_lag_is_per_account_and_region_once_the_region_cursor_exists(small_store):
    store, now = small_store.store, small_store.now
    # the extraction took acct-eu's two per-marketplace cursors over: one window for Amazon.de and Amazon.fr
    store.ops.set_cursor(
        "orders:acct-eu:EU",
        now - timedelta(hours=2),
        scope=("A1PA6795UKMFR9", "A13V1IB3VIYZZH"),
        replaces=("orders:acct-eu:A1PA6795UKMFR9", "orders:acct-eu:A13V1IB3VIYZZH"),
    )
    store.ops.set_cursor("orders:acct-jp:FE", now - timedelta(minutes=3), scope=("A1VC38T7YXB528",))

    data = queries.page_data(store, now)

    assert {(c.account_id, c.region, c.marketplace_id): (c.lag, c.lag_level) for c in data.channels} == {
        ("acct-eu", "EU", "A1PA6795UKMFR9"): (timedelta(hours=2), "late"),
        ("acct-eu", "EU", "A13V1IB3VIYZZH"): (timedelta(hours=2), "late"),
        ("acct-us", "NA", "ATVPDKIKX0DER"): (timedelta(hours=5), "late"),  # an earlier release's cursor still counts
        ("acct-jp", "FE", ""): (timedelta(minutes=3), "ok"),  # no orders yet: the region's own row
    }
    html = signed_in_client(store).get("/").text
    assert "<td>acct-jp</td><td>FE</td><td>(no orders yet)</td>" in html


def test_refund_check_summary_per_account_and_currency(make_store):
    store = make_store()
    common = {"account_id": "acct-us", "currency": "USD", "memo_amounts": {"A1": {"Principal": "5.00"}}}
    for n, status in enumerate(("confirmed", "confirmed", "mismatched", "sent")):
        key = f"sent:{n}"
        order = f"111-0000000-000000{n}"
        store.refund_checks.open(key, amazon_order_id=order, direction="sent", creditmemo_id=n, **common)
        if status != "sent":
            store.refund_checks.close(key, status=status, posted_amounts={}, transaction_key=None, detail=None)
    mirror = {**common, "currency": "CAD", "amazon_order_id": "111-0000000-0000009"}
    store.refund_checks.open("mirror:9", direction="mirror", creditmemo_id=9, **mirror)
    html = signed_in_client(store).get("/").text
    assert 'id="refund-checks"' in html
    today = datetime.now(UTC).date().isoformat()
    cells = re.sub(r"\s+", " ", html)
    usd = f'<td>{today}</td><td>acct-us</td><td>USD</td><td class="num">4</td> <td class="num">0</td>'
    assert usd in cells and '<td class="num">2</td> <td class="num"><a href="#mismatches">1</a></td>' in cells
    assert f'<td>{today}</td><td>acct-us</td><td>CAD</td><td class="num">0</td> <td class="num">1</td>' in cells
