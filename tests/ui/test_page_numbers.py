"""The Sales Channel page's numbers add up, its lists of orders that need a person, their CSV export, and what it
reads from Airflow (DAG runs by start time, the import's schedule). A real state store (SQLite) and, for the DAG
table, a real Airflow metadata database with runs of a real DAG (``dag.test()``)."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import insert, update

from amazon_commerce_sync.constants import DAG_CANCEL_DECISION, DAG_HEALTHCHECK, DAG_MONITOR
from amazon_commerce_sync.store import OrderSync
from amazon_commerce_sync.store.schema import amazon_orders, outbox
from amazon_commerce_sync.ui import airflow_meta, queries
from amazon_commerce_sync.ui.app import PAGE_DAGS, create_app, require_user
from amazon_commerce_sync.ui.template import STATUSES, render_page

from .conftest import seed

ROOT = Path(__file__).resolve().parents[2]
SCHEDULE = {"summary": "*/5 * * * *", "description": "Every 5 minutes", "interval_minutes": 5, "source": "airflow"}


def client(store, *, signed_in: bool = True) -> TestClient:
    app = create_app(lambda: store, dag_ids=())
    if signed_in:
        app.dependency_overrides[require_user()] = lambda: {"username": "tester"}
    return TestClient(app)


def _cells(row_html: str) -> list[str]:
    return [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", row_html, re.S)]


def test_staged_is_the_sum_of_the_status_columns(small_store):
    data = queries.page_data(small_store.store, small_store.now, schedule=SCHEDULE)
    assert set(STATUSES) == {str(s) for s in OrderSync}  # a column for every status an order can have
    assert sum(c.statuses.get("not_eligible", 0) for c in data.channels) == len(small_store.not_eligible_ids) > 0
    for c in data.channels:
        assert c.total == sum(c.statuses.get(s, 0) for s in STATUSES)
        assert sum(c.not_eligible_reasons.values()) == c.statuses.get("not_eligible", 0)
    reasons = {r for c in data.channels for r in c.not_eligible_reasons}
    assert {"cancelled on Amazon before import", "placed before import_orders_after"} <= reasons
    # an order id in a reason is elided, so one reason is one row however many orders it names
    assert "replacement of Amazon order …: not imported (import_replacement_orders is false)" in reasons

    # the rendered table: per row, "Orders staged" equals the sum of the status columns shown
    html = render_page(data)
    table = html[html.index('id="lag"') : html.index('id="lag-legend"')]
    rows = [r for r in re.findall(r"<tr>(.*?)</tr>", table, re.S) if "<td" in r and 'class="num staged"' in r]
    assert len(rows) == len(data.channels)
    for row in rows:
        numbers = [int(x) for x in _cells(row)[5:]]
        assert len(numbers) == 1 + len(STATUSES)
        assert numbers[0] == sum(numbers[1:]) > 0
    # the reasons: on hover over the count, and listed below the table
    assert re.search(r'<abbr title="\d+ (cancelled on Amazon before import|placed before import_orders_after)', html)
    assert "Not eligible because" in html and "placed before import_orders_after" in html


def test_orders_at_ship_by_risk_soonest_first_and_shipped_ones_left_out(small_store):
    store, now = small_store.store, small_store.now
    due = {oid: at for oid, at in small_store.ship_by.items() if at <= now + timedelta(hours=12)}
    data = queries.page_data(store, now, schedule=SCHEDULE)
    rows = data.ship_by_risk.rows
    assert data.ship_by_risk.total == len(due) and [r["amazon_order_id"] for r in rows] == sorted(due, key=due.get)
    assert rows[0]["left"] < timedelta(0)  # past its deadline: still listed, first
    html = render_page(data)
    assert f"Orders at risk of shipping late ({len(due)})" in html and " late</span>" in html
    assert html.index(rows[0]["amazon_order_id"]) < html.index(rows[1]["amazon_order_id"])

    # shipped in Commerce (a confirmation on its way to Amazon), or shipped on Amazon: no longer at risk
    shipped_here, shipped_there = rows[0]["amazon_order_id"], rows[1]["amazon_order_id"]
    with store.engine.begin() as conn:
        conn.execute(
            insert(outbox).values(
                natural_key=f"shipment:{shipped_here}:1",
                kind="shipment_confirmation",
                account_id=rows[0]["account_id"],
                amazon_order_id=shipped_here,
                payload={},
                status="pending",
                attempts=0,
                created_at=now,
                updated_at=now,
            )
        )
        conn.execute(
            update(amazon_orders)
            .where(amazon_orders.c.amazon_order_id == shipped_there)
            .values(amazon_status="SHIPPED")
        )
    later = queries.page_data(store, now, schedule=SCHEDULE).ship_by_risk
    assert later.total == len(due) - 2
    assert {shipped_here, shipped_there}.isdisjoint(r["amazon_order_id"] for r in later.rows)
    # the monitor's query agrees with the page's
    assert [r["amazon_order_id"] for r in store.ship_by.at_risk(now + timedelta(hours=12))] == [
        r["amazon_order_id"] for r in later.rows
    ]


def test_orders_on_hold_link_to_their_decision_run(small_store):
    data = queries.page_data(small_store.store, small_store.now, schedule=SCHEDULE)
    assert data.on_hold.total == len(small_store.on_hold_ids) > 0
    html = render_page(data)
    assert f"On hold for the buyer's cancellation request ({len(small_store.on_hold_ids)})" in html
    for row in data.on_hold.rows:
        run_id = f"buyer_request__{row['account_id']}__{row['amazon_order_id']}"
        assert f'href="/dags/{DAG_CANCEL_DECISION}/runs/{run_id}"' in html


def test_long_lists_export_as_csv_for_signed_in_users_only(make_store):
    store = make_store()
    seeded = seed(store, 6000, datetime.now(UTC))
    assert len(seeded.waiting_ids) > queries.LIST_LIMIT
    page = client(store).get("/").text
    assert f"The oldest 50 of {len(seeded.waiting_ids)} · " in page
    assert f'<a href="csv/waiting_product" class="csv">all {len(seeded.waiting_ids)} as CSV</a>' in page

    response = client(store).get("/csv/waiting_product")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [r["amazon_order_id"] for r in rows] == sorted(
        seeded.waiting_ids, key=lambda oid: next(r for r in rows if r["amazon_order_id"] == oid)["first_seen_at"]
    )
    assert len(rows) == len(seeded.waiting_ids) and "out of stock" in rows[0]["sync_reason"]
    assert "PIIMARKER" not in response.text
    ship_by = list(csv.DictReader(io.StringIO(client(store).get("/csv/ship_by").text)))
    assert ship_by and [r["ship_by"] for r in ship_by] == sorted(r["ship_by"] for r in ship_by)
    assert client(store).get("/csv/order_pii").status_code == 404
    assert client(store, signed_in=False).get("/csv/waiting_product").status_code == 401


def test_the_chart_has_a_value_axis(small_store):
    data = queries.page_data(small_store.store, small_store.now, schedule=SCHEDULE)
    html = render_page(data)
    chart = html[html.index('id="chart"') : html.index('id="today"')]
    busiest = max(max(c.created_per_hour) for c in data.channels)
    labels = [int(x) for x in re.findall(r'class="axis">(\d+)</text>', chart)]
    assert 0 in labels and busiest <= max(labels) <= 2 * busiest + 1  # the axis' top: the next 1, 2 or 5 x 10^n


def test_the_lag_legend_reads_the_import_schedule(small_store):
    hourly = {"summary": "0 * * * *", "description": "At 0 minutes past the hour", "source": "airflow"}
    hourly["interval_minutes"] = airflow_meta.interval_minutes(hourly["summary"])
    data = queries.page_data(small_store.store, small_store.now, schedule=hourly)
    html = render_page(data)
    legend = html[html.index('id="lag-legend"') :][:900]
    assert "up to 180 min (three runs of" in legend and "at 0 minutes past the hour (0 * * * *)" in legend
    assert "5-minute" not in html
    off = queries.page_data(small_store.store, small_store.now, schedule={"summary": None, "source": "airflow"})
    assert "is not scheduled (triggered only)" in render_page(off)
    assert airflow_meta.interval_minutes("*/2 * * * *") == 2 and airflow_meta.interval_minutes("@daily") is None


def test_without_airflow_the_schedule_is_the_deployment_switch(make_store, monkeypatch):
    """The page served on its own (no metadata database with the DAG): SALES_CHANNEL_IMPORT_SCHEDULE, else the
    DAG's default."""
    monkeypatch.setenv("SALES_CHANNEL_IMPORT_SCHEDULE", "*/2 * * * *")
    switched = airflow_meta.schedule_from_environment()
    assert switched == {"summary": "*/2 * * * *", "description": None, "interval_minutes": 2, "source": "environment"}
    assert queries.ok_minutes_for(switched) == 6
    monkeypatch.setenv("SALES_CHANNEL_IMPORT_SCHEDULE", "none")
    assert "is not scheduled" in render_page(
        queries.page_data(make_store(), schedule=airflow_meta.schedule_from_environment())
    )
    monkeypatch.delenv("SALES_CHANNEL_IMPORT_SCHEDULE")
    # a DAG the metadata database does not know: the default schedule, so the page still says something true
    default = airflow_meta.import_schedule("no_such_dag")
    assert default["source"] == "default" and default["interval_minutes"] == 5


def test_dag_table_reads_airflow_runs_by_start_time_and_links_the_latest_run(airflow_db, tmp_path, monkeypatch):
    """Two runs of the real monitor DAG (``dag.test()``) in Airflow's metadata database."""
    from airflow.dag_processing.dagbag import DagBag

    from amazon_commerce_sync.store.db import get_engine, migrate

    assert {DAG_HEALTHCHECK, DAG_CANCEL_DECISION, "amazon_order_events", "amazon_notifications_setup"} <= set(PAGE_DAGS)
    db_url = f"sqlite:///{tmp_path / 'state.db'}"
    monkeypatch.setenv("SALES_CHANNEL_DB_URL", db_url)
    monkeypatch.setenv("SALES_CHANNEL_MONITOR_SCHEDULE", "*/10 * * * *")
    settings = tmp_path / "settings.json"
    settings.write_text(
        json.dumps(
            {
                "accounts": [
                    {
                        "account_id": "us-main",
                        "marketplace_ids": ["ATVPDKIKX0DER"],
                        "import_orders_after": "2026-01-01T00:00:00Z",
                    }
                ]
            }
        )
    )
    monkeypatch.setenv("SALES_CHANNEL_SETTINGS_FILE", str(settings))
    migrate(get_engine(db_url))
    dag = DagBag(dag_folder=str(ROOT / "dags" / f"{DAG_MONITOR}.py")).dags[DAG_MONITOR]
    runs = [dag.test(logical_date=datetime.now(UTC) + timedelta(seconds=i)) for i in range(2)]

    [info] = airflow_meta.last_dag_runs([DAG_MONITOR])
    latest = max(runs, key=lambda r: r.start_date)
    assert info["last_run_id"] == latest.run_id and info["last_state"] == "success"
    assert info["last_start"] == latest.start_date and info["last_success"] == latest.start_date
    schedule = airflow_meta.import_schedule(DAG_MONITOR)
    assert schedule["source"] == "airflow" and schedule["summary"] == "*/10 * * * *"
    assert schedule["interval_minutes"] == 10
    assert airflow_meta.last_dag_runs(["no_such_dag"])[0]["last_run_id"] is None

    data = queries.PageData(
        now=datetime.now(UTC),
        channels=[],
        hours=[],
        waiting_product=queries.Listing([], 0),
        quarantined=queries.Listing([], 0),
        outbox=queries.Listing([], 0),
        outbox_counts={},
        mismatches=queries.Listing([], 0),
        dag_runs=[info],
        import_schedule=schedule,
    )
    html = render_page(data)
    assert f'<a href="/dags/{DAG_MONITOR}/runs/{latest.run_id.replace("+", "%2B").replace(":", "%3A")}"' in html
    assert "Last run (started)" in html and "Last success (started)" in html
