"""Alerts fire with a message that says which account, what and what to do, and stay quiet otherwise.

The checks run against a real state store (SQLite; PostgreSQL too where the server is available).
"""

from __future__ import annotations

import base64
import dataclasses
import logging
import socketserver
import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace

import pytest
from airflow.sdk import BaseNotifier
from airflow.sdk.exceptions import AirflowFailException

from amazon_commerce_sync import alerts, monitor
from amazon_commerce_sync.dag_defaults import notify_failure
from amazon_commerce_sync.settings import parse_settings
from amazon_commerce_sync.store import OrderSync, StagedOrder
from tests.store_queries import audit_entries

US, CA = "ATVPDKIKX0DER", "A2EUQ1WTGCTBG2"
WAITING_ID, FRESH_ID, QUARANTINED_ID = "111-0000001-0000001", "111-0000002-0000002", "111-0000003-0000003"


def accounts(**overrides):
    raw = {"account_id": "us-main", "marketplace_ids": [US, CA], "import_orders_after": "2026-01-01T00:00:00Z"}
    return parse_settings({"accounts": [{**raw, **overrides}]}).accounts


def staged(order_id: str, updated: datetime) -> StagedOrder:
    return StagedOrder(
        amazon_order_id=order_id,
        account_id="us-main",
        marketplace_id=US,
        fulfilled_by="MERCHANT",
        amazon_status="UNSHIPPED",
        amazon_created_at=updated - timedelta(hours=1),
        amazon_updated_at=updated,
        currency="USD",
        order_total=Decimal("10.00"),
        buyer_cancel_requested=False,
        payload={"orderId": order_id},
        items=[{"amazon_order_item_id": f"{order_id}-1", "seller_sku": "SKU-1", "quantity_ordered": 1}],
        pii={"buyer_name": "Qzxmarker Buyer", "buyer_email": "qzxmarker@example.test"},
    )


# -- import lag ------------------------------------------------------------------------------------
NA = "orders:us-main:NA"  # one extraction cursor for the account's marketplaces of Amazon's NA region (US, CA)
LAG_KEY = "import_lag:us-main:NA"


def watched(store, now: datetime, minutes: int = 120) -> None:
    """The monitor has watched us-main/NA for ``minutes`` before ``now``, last checking 10 minutes ago."""
    store.ops.set_cursor(monitor.WATCHING + LAG_KEY, now - timedelta(minutes=minutes))
    store.ops.set_cursor(monitor.CHECKED + LAG_KEY, now - timedelta(minutes=10))


def test_lag_alert_fires_per_account_and_region_with_what_to_do(state_store):
    now = datetime.now(UTC)
    state_store.ops.set_cursor(NA, now - timedelta(minutes=95), scope=(US, CA))
    watched(state_store, now)

    fired = monitor.check_import_lag(state_store, accounts(), now)

    assert [a.key for a in fired] == ["import_lag:us-main:NA"]
    alert = fired[0]
    assert alert.account_id == "us-main"
    assert alert.subject == "Amazon order import is 95 min behind for region NA"
    assert f"us-main / NA ({US}, {CA})" in alert.what
    assert "the threshold is 60 min" in alert.what and "have not reached Commerce" in alert.what
    assert "amazon_order_import" in alert.action and "sales_channel_healthcheck" in alert.action
    assert "Account: us-main" in alert.text and "What to do:" in alert.text


def test_lag_is_quiet_when_fresh_or_under_the_threshold(state_store):
    now = datetime.now(UTC)
    state_store.ops.set_cursor(NA, now - timedelta(minutes=95), scope=(US, CA))
    watched(state_store, now, minutes=600)
    assert monitor.check_import_lag(state_store, accounts(alert_import_lag_minutes=120), now) == []
    state_store.ops.set_cursor(NA, now - timedelta(minutes=3))
    assert monitor.check_import_lag(state_store, accounts(), now) == []


def test_before_the_first_region_window_the_oldest_per_marketplace_cursor_counts(state_store):
    now = datetime.now(UTC)
    state_store.ops.set_cursor(f"orders:us-main:{US}", now - timedelta(minutes=95))  # an earlier release's
    state_store.ops.set_cursor(f"orders:us-main:{CA}", now - timedelta(minutes=7))
    watched(state_store, now)
    fired = monitor.check_import_lag(state_store, accounts(), now)
    assert [a.subject for a in fired] == ["Amazon order import is 95 min behind for region NA"]


def test_lag_alert_when_a_region_was_never_imported_unless_import_is_off(state_store):
    now = datetime.now(UTC)
    # a new deployment: the first import has the threshold's time to complete before anyone is alerted
    assert monitor.check_import_lag(state_store, accounts(), now) == []
    fired = monitor.check_import_lag(state_store, accounts(), now + timedelta(minutes=61))
    assert [a.subject for a in fired] == ["no Amazon order import has completed for region NA"]
    assert monitor.check_import_lag(state_store, accounts(import_enabled=False), now) == []


def test_no_lag_alert_before_the_import_of_a_restarted_deployment_had_its_time(state_store):
    # `make run` again after a day: the cursor is a day old, but the import has not had a chance to run yet
    now = datetime.now(UTC)
    state_store.ops.set_cursor(NA, now - timedelta(days=1), scope=(US, CA))
    state_store.ops.set_cursor(monitor.WATCHING + LAG_KEY, now - timedelta(days=3))
    state_store.ops.set_cursor(monitor.CHECKED + LAG_KEY, now - timedelta(days=1))  # the monitor's last check
    for minutes in (0, 10, 30, 60):
        assert monitor.check_import_lag(state_store, accounts(), now + timedelta(minutes=minutes)) == []
    # the threshold's time after the restart and still behind: that is a real lag
    fired = monitor.check_import_lag(state_store, accounts(), now + timedelta(minutes=70))
    assert [a.subject for a in fired] == ["Amazon order import is 25 h behind for region NA"]
    starts = [e["detail"]["since"] for e in audit_entries(state_store, action=monitor.IMPORT_AWAITED)]
    assert starts == [now.isoformat()]


def test_no_lag_alert_for_an_account_first_seen_with_an_old_cursor(state_store):
    # an account added to the settings whose cursor an earlier deployment left behind
    now = datetime.now(UTC)
    state_store.ops.set_cursor(NA, now - timedelta(hours=5), scope=(US, CA))
    assert monitor.check_import_lag(state_store, accounts(), now) == []
    assert monitor.check_import_lag(state_store, accounts(), now + timedelta(minutes=50)) == []
    assert len(monitor.check_import_lag(state_store, accounts(), now + timedelta(minutes=61))) == 1


def test_a_monitor_scheduled_less_often_than_the_threshold_is_no_restart(state_store):
    now = datetime.now(UTC)
    state_store.ops.set_cursor(NA, now - timedelta(hours=5), scope=(US, CA))
    assert monitor.check_import_lag(state_store, accounts(), now) == []
    # hourly or 90-minute monitor runs with a 60-minute threshold: each run still judges the lag
    assert len(monitor.check_import_lag(state_store, accounts(), now + timedelta(minutes=90))) == 1
    assert len(monitor.check_import_lag(state_store, accounts(), now + timedelta(minutes=180))) == 1
    # a rerun of an earlier run moves nothing back
    assert monitor.check_import_lag(state_store, accounts(), now + timedelta(minutes=30)) == []
    assert state_store.ops.get_cursor(monitor.CHECKED + LAG_KEY) == now + timedelta(minutes=180)


def test_no_lag_alert_for_an_account_whose_marketplaces_the_extract_refuses(state_store):
    # an id that is no Amazon marketplace: the extract task fails with the settings error, which alerts
    assert (
        monitor.check_import_lag(state_store, accounts(marketplace_ids=[US, "AXXXXXXXXXXX"]), datetime.now(UTC)) == []
    )


# -- orders waiting for a product or quarantined ----------------------------------------------------
def _stuck_fixture(store) -> datetime:
    """Two waiting orders (one since now, one changed by Amazon 2 h from now) and one quarantined."""
    now = datetime.now(UTC)
    store.orders.stage(
        [
            staged(WAITING_ID, now - timedelta(days=1)),
            staged(FRESH_ID, now + timedelta(hours=2)),
            staged(QUARANTINED_ID, now - timedelta(days=1)),
        ]
    )
    for order_id in (WAITING_ID, FRESH_ID):
        store.orders.set_sync(order_id, OrderSync.WAITING_PRODUCT, reason="SKU-1: not in Commerce")
    store.orders.set_sync(QUARANTINED_ID, OrderSync.QUARANTINED, reason="the amounts do not add up")
    store.ops.quarantine("amazon_order", QUARANTINED_ID, "the amounts do not add up")
    return now


def test_stuck_orders_alert_names_the_orders_reason_and_fix(state_store):
    now = _stuck_fixture(state_store)

    later = now + timedelta(hours=25, minutes=5)
    fired = {a.kind: a for a in monitor.check_stuck_orders(state_store, accounts(), later)}

    assert set(fired) == {"orders_waiting", "orders_quarantined"}
    waiting = fired["orders_waiting"]
    assert waiting.key == "orders_waiting:us-main" and waiting.account_id == "us-main"
    assert waiting.subject == "1 Amazon order(s) waiting for a product for more than 24 h"
    assert f"{WAITING_ID} (25 h: SKU-1: not in Commerce)" in waiting.what
    assert FRESH_ID not in waiting.what  # Amazon changed it 23 h before: not stuck yet
    assert "sku_map" in waiting.action
    quarantined = fired["orders_quarantined"]
    assert quarantined.subject == "1 Amazon order(s) quarantined for more than 24 h"
    assert f"{QUARANTINED_ID} (25 h: the amounts do not add up)" in quarantined.what
    assert "redrive_quarantined" in quarantined.action
    for alert in fired.values():
        assert "Qzxmarker" not in alert.text and "qzxmarker" not in alert.text


def test_stuck_orders_quiet_before_the_threshold_or_once_resolved(state_store):
    now = _stuck_fixture(state_store)
    assert monitor.check_stuck_orders(state_store, accounts(), now + timedelta(hours=23)) == []
    assert monitor.check_stuck_orders(state_store, accounts(alert_stuck_hours=48), now + timedelta(hours=25)) == []
    state_store.orders.redrive([QUARANTINED_ID])
    state_store.orders.set_sync(WAITING_ID, OrderSync.IMPORTED)
    assert monitor.check_stuck_orders(state_store, accounts(), now + timedelta(hours=25)) == []


# -- the monitor: send, repeat, stay quiet ---------------------------------------------------------
def test_monitor_sends_once_per_repeat_interval_and_records_it(state_store):
    now = datetime.now(UTC)
    state_store.ops.set_cursor(NA, now - timedelta(hours=3))
    watched(state_store, now)
    sent: list[alerts.Alert] = []

    first = monitor.run_monitor(state_store, accounts(), now=now, deliver=sent.append)
    again = monitor.run_monitor(state_store, accounts(), now=now, deliver=sent.append)

    assert first["sent"] == ["import_lag:us-main:NA"] and again["sent"] == []
    assert again["repeat_suppressed"] == ["import_lag:us-main:NA"]
    assert len(sent) == 1
    entries = audit_entries(state_store, action="alert_sent")
    assert [(e["entity_id"], e["detail"]) for e in entries] == [
        ("import_lag:us-main:NA", {"kind": "import_lag", "account_id": "us-main"})
    ]
    later = monitor.run_monitor(state_store, accounts(), now=now + timedelta(minutes=61), deliver=sent.append)
    assert later["sent"] == ["import_lag:us-main:NA"] and len(sent) == 2
    always = monitor.run_monitor(state_store, accounts(alert_repeat_minutes=0), now=now, deliver=sent.append)
    assert always["sent"] and len(sent) == 3


def test_monitor_is_quiet_when_healthy(state_store, caplog):
    now = datetime.now(UTC)
    state_store.ops.set_cursor(NA, now - timedelta(minutes=4), scope=(US, CA))
    sent: list[alerts.Alert] = []
    caplog.set_level(logging.INFO)
    summary = monitor.run_monitor(state_store, accounts(), now=now, deliver=sent.append)
    assert summary == {"firing": [], "sent": [], "repeat_suppressed": []}
    assert sent == [] and audit_entries(state_store, action="alert_sent") == []
    assert "all quiet" in caplog.text


# -- task failures -----------------------------------------------------------------------------------
LOG_URL = "http://airflow.local/dags/x/runs/y/tasks/sync/mapped/0"


def failure_context(exc: BaseException, *, dag_id="amazon_shipment_sync", account_id="us-main", tries=4):
    ti = SimpleNamespace(
        dag_id=dag_id, task_id="sync", map_index=0, run_id="scheduled__2026-11-26", try_number=tries, log_url=LOG_URL
    )
    task = SimpleNamespace(op_kwargs={"account_id": account_id})
    return {"ti": ti, "task": task, "params": {}, "exception": exc}


def test_failure_alert_says_where_what_and_what_to_do():
    exc = AirflowFailException("Invalid Sales Channel settings: accounts[0].page_size: 500 must be from 1 to 100")
    alert = alerts.failure_alert(failure_context(exc))
    assert alert.kind == "task_failed" and alert.account_id == "us-main"
    assert alert.subject == "amazon_shipment_sync.sync[0] failed (run scheduled__2026-11-26)"
    assert alert.what == f"AirflowFailException: {exc}"
    assert alert.action.startswith("This failure is not retried: fix what the message names")
    assert "Shipment confirmations stay in the outbox" in alert.action
    assert LOG_URL in alert.action

    retried = alerts.failure_alert(failure_context(ConnectionError("Commerce answered 503 five times")))
    assert retried.what == "ConnectionError: Commerce answered 503 five times"
    assert "failed after 4 attempt(s)" in retried.action and "rerun duplicates nothing" in retried.action


def test_failure_alert_of_a_fatal_error_says_it_was_not_retried_and_carries_the_tasks_note():
    from amazon_commerce_sync.errors import AuthenticationError, ServiceUnavailableError

    exc = AuthenticationError("Access to requested resource is denied.", operation="searchOrders", status=403)
    exc.add_note("amazon_order_import extract for account us-main stopped without retrying; check ...")
    alert = alerts.failure_alert(failure_context(exc, dag_id="amazon_order_import", tries=1))
    assert alert.what == (
        "AuthenticationError: searchOrders failed HTTP 403: Access to requested resource is denied. "
        "amazon_order_import extract for account us-main stopped without retrying; check ..."
    )
    assert alert.action.startswith("This failure is not retried")
    busy = alerts.failure_alert(failure_context(ServiceUnavailableError("busy", status=503), tries=4))
    assert "failed after 4 attempt(s)" in busy.action


def test_failure_alert_carries_no_email_or_newlines_and_is_bounded():
    exc = RuntimeError("order for qzxmarker@example.test\nfailed " + "x" * 2000)
    alert = alerts.failure_alert(failure_context(exc, account_id=None))
    assert "qzxmarker@example.test" not in alert.text and "<email>" in alert.what
    assert "\n" not in alert.what and len(alert.what) < 700
    assert alert.account_id == "all accounts"


def test_default_notifier_writes_one_error_line(monkeypatch, caplog):
    monkeypatch.delenv(alerts.NOTIFIER_ENV, raising=False)
    caplog.set_level(logging.ERROR, logger="amazon_commerce_sync.alerts")
    notify_failure(failure_context(ValueError("boom")))
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    line = errors[0].getMessage()
    assert line.startswith("SALES CHANNEL ALERT [task_failed] account=us-main: amazon_shipment_sync.sync[0] failed")
    assert "what happened: ValueError: boom | what to do:" in line and "\n" not in line


class RecordingNotifier(BaseNotifier):
    """Stands for any provider notifier (Slack, SMTP provider...): a templated text field."""

    template_fields = ("text",)
    received: list[str] = []

    def __init__(self, text: str, channel: str = "") -> None:
        super().__init__()
        self.text = text
        self.channel = channel

    def notify(self, context) -> None:
        RecordingNotifier.received.append(f"{self.channel}: {self.text}")


def test_any_base_notifier_plugs_in_with_templated_kwargs(monkeypatch):
    monkeypatch.setenv(alerts.NOTIFIER_ENV, f"{__name__}.RecordingNotifier")
    monkeypatch.setenv(alerts.NOTIFIER_KWARGS_ENV, '{"channel": "#ops", "text": "{{ sales_channel_alert.subject }}"}')
    RecordingNotifier.received.clear()
    notify_failure(failure_context(ValueError("boom")))
    assert RecordingNotifier.received == ["#ops: amazon_shipment_sync.sync[0] failed (run scheduled__2026-11-26)"]


def test_a_broken_notifier_still_leaves_the_alert_in_the_log(monkeypatch, caplog):
    monkeypatch.setenv(alerts.NOTIFIER_ENV, "no.such.module.Notifier")
    caplog.set_level(logging.WARNING, logger="amazon_commerce_sync.alerts")
    notify_failure(failure_context(ValueError("boom")))
    assert "the configured notifier failed (ModuleNotFoundError)" in caplog.text
    assert "SALES CHANNEL ALERT [task_failed]" in caplog.text


# -- SMTP through the SMTP provider, against a real (minimal) SMTP server on loopback ---------------------
# aiosmtpd is not in the locked dependencies; this server speaks enough RFC 5321 (EHLO, AUTH PLAIN, MAIL,
# RCPT, DATA, QUIT) for smtplib, and records what it was sent.
class _SmtpHandler(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        self.wfile.write(b"220 test ESMTP\r\n")
        data_mode, lines, envelope = False, [], {"from": None, "to": []}
        while line := self.rfile.readline():
            if data_mode:
                if line in (b".\r\n", b".\n"):
                    data_mode = False
                    self.server.messages.append({**envelope, "data": b"".join(lines).decode()})
                    lines, envelope = [], {"from": None, "to": []}
                    self.wfile.write(b"250 queued\r\n")
                else:
                    lines.append(line)
                continue
            verb, _, argument = line.decode().strip().partition(" ")
            verb = verb.upper()
            if verb in ("EHLO", "HELO"):
                self.wfile.write(b"250-test\r\n250 AUTH PLAIN\r\n")
            elif verb == "AUTH":
                self.server.logins.append(base64.b64decode(argument.split()[1]).split(b"\0")[1:])
                self.wfile.write(b"235 authenticated\r\n")
            elif verb == "MAIL":
                envelope["from"] = argument.split(":", 1)[1].strip("<> ")
                self.wfile.write(b"250 ok\r\n")
            elif verb == "RCPT":
                envelope["to"].append(argument.split(":", 1)[1].strip("<> "))
                self.wfile.write(b"250 ok\r\n")
            elif verb == "DATA":
                data_mode = True
                self.wfile.write(b"354 go ahead\r\n")
            elif verb == "QUIT":
                self.wfile.write(b"221 bye\r\n")
                return
            else:
                self.wfile.write(b"250 ok\r\n")


@pytest.fixture
def smtp_server():
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _SmtpHandler)
    server.messages, server.logins = [], []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


LAG = alerts.Alert("import_lag", "import_lag:us-main:X", "us-main", "import is 2 h behind", "<email> & co", "do this")


def _smtp_connection(monkeypatch, server, **fields) -> None:
    import json

    conn = {"conn_type": "smtp", "host": "127.0.0.1", "port": server.server_address[1], **fields}
    monkeypatch.setenv("AIRFLOW_CONN_SALES_CHANNEL_SMTP", json.dumps(conn))
    monkeypatch.setenv(alerts.NOTIFIER_ENV, "amazon_commerce_sync.alerts.SmtpNotifier")


def _body(message: str) -> str:
    import email
    import html

    parsed = email.message_from_string(message)
    [part] = [p for p in parsed.walk() if p.get_content_type() == "text/html"]
    return html.unescape(part.get_payload(decode=True).decode(part.get_content_charset()))


def test_smtp_notifier_sends_the_alert_with_the_earlier_connection_extras(monkeypatch, smtp_server):
    _smtp_connection(monkeypatch, smtp_server, extra={"from": "airflow@example.test", "to": ["ops@example.test"]})
    alerts.send_alert(LAG)
    [sent] = smtp_server.messages
    assert sent["from"] == "airflow@example.test" and sent["to"] == ["ops@example.test"]
    assert "Subject: [Sales Channel] import is 2 h behind" in sent["data"]
    assert "To: ops@example.test" in sent["data"]
    assert _body(sent["data"]) == f"<pre>{LAG.text}</pre>"  # the alert text as it is, e-mail placeholder included
    assert smtp_server.logins == []  # no login/password on the connection: no AUTH


def test_smtp_notifier_reads_the_smtp_providers_connection_extras(monkeypatch, smtp_server):
    _smtp_connection(
        monkeypatch,
        smtp_server,
        login="alerts",
        password="s3cret",
        extra={
            "from_email": "sales-channel@example.test",
            "to": "ops@example.test; oncall@example.test",
            "disable_tls": True,
            "disable_ssl": True,
        },
    )
    alerts.send_alert(LAG)
    [sent] = smtp_server.messages
    assert sent["from"] == "sales-channel@example.test"
    assert sent["to"] == ["ops@example.test", "oncall@example.test"]
    assert smtp_server.logins == [[b"alerts", b"s3cret"]]
    assert "Account: us-main" in _body(sent["data"])


def test_smtp_notifier_without_recipients_leaves_the_alert_in_the_log(monkeypatch, smtp_server, caplog):
    _smtp_connection(monkeypatch, smtp_server, extra={"from": "airflow@example.test"})
    caplog.set_level(logging.WARNING, logger="amazon_commerce_sync.alerts")
    alerts.send_alert(LAG)
    assert smtp_server.messages == []
    assert "set host and extra.to (the recipients)" in caplog.text
    assert "SALES CHANNEL ALERT [import_lag] account=us-main" in caplog.text


def test_alert_round_trips_through_the_template_context():
    alert = alerts.Alert("k", "key", "acct", "subject", "what", "action")
    assert alerts.Alert(**{k: alert.as_dict()[k] for k in alerts.ALERT_FIELDS}) == alert
    assert dataclasses.asdict(alert).keys() <= alert.as_dict().keys()


# -- inside Airflow: the monitor DAG and the failure callback, run with dag.test() ------------------------
def _run_dag(dag_id: str, conf=None) -> dict[str, str]:
    from pathlib import Path

    from airflow.dag_processing.dagbag import DagBag

    dags = Path(__file__).resolve().parents[2] / "dags"
    dag = DagBag(dag_folder=str(dags / f"{dag_id}.py")).dags[dag_id]
    for task in dag.tasks:
        task.retries = 0
    run = dag.test(run_conf=conf, logical_date=datetime.now(UTC))
    return {ti.task_id: ti.state for ti in run.get_task_instances()}


@pytest.fixture
def airflow_env(airflow_db, tmp_path, monkeypatch):
    """Settings file and a fresh SQLite state store for DAG runs; the default (logging) notifier."""
    from amazon_commerce_sync.store import StateStore
    from amazon_commerce_sync.store.db import get_engine, migrate

    db_url = f"sqlite:///{tmp_path / 'state.db'}"
    monkeypatch.setenv("SALES_CHANNEL_DB_URL", db_url)
    settings = tmp_path / "settings.json"
    monkeypatch.setenv("SALES_CHANNEL_SETTINGS_FILE", str(settings))
    monkeypatch.delenv(alerts.NOTIFIER_ENV, raising=False)
    raw = {"account_id": "us-main", "marketplace_ids": [US], "import_orders_after": "2026-01-01T00:00:00Z"}
    settings.write_text(__import__("json").dumps({"accounts": [raw]}))
    engine = get_engine(db_url)
    migrate(engine)
    return SimpleNamespace(store=StateStore(engine), settings=settings)


def test_monitor_dag_alerts_on_lag_and_then_stays_quiet(airflow_env, caplog):
    caplog.set_level(logging.INFO)
    airflow_env.store.ops.set_cursor("orders:us-main:NA", datetime.now(UTC) - timedelta(hours=2))
    watched(airflow_env.store, datetime.now(UTC))
    assert _run_dag("sales_channel_monitor") == {"check": "success"}
    assert "SALES CHANNEL ALERT [import_lag] account=us-main: Amazon order import is 2 h behind" in caplog.text
    assert [e["entity_id"] for e in audit_entries(airflow_env.store, action="alert_sent")] == ["import_lag:us-main:NA"]

    caplog.clear()
    airflow_env.store.ops.set_cursor("orders:us-main:NA", datetime.now(UTC) - timedelta(minutes=3))
    assert _run_dag("sales_channel_monitor") == {"check": "success"}
    assert "SALES CHANNEL ALERT" not in caplog.text and "all quiet" in caplog.text


def test_a_failed_task_sends_the_failure_alert(airflow_env, caplog):
    caplog.set_level(logging.INFO)
    airflow_env.settings.write_text('{"accounts": [{"account_id": "us-main"}]}')  # invalid: fails the task
    # the key rotation needs no settings: it still runs
    assert _run_dag("amazon_pii_retention") == {"erase": "failed", "rotate_keys": "success"}
    [line] = [r.getMessage() for r in caplog.records if r.getMessage().startswith("SALES CHANNEL ALERT")]
    assert "[task_failed] account=all accounts: amazon_pii_retention.erase failed" in line
    assert "SettingsError: accounts[0].marketplace_ids: required" in line
    assert "This failure is not retried" in line and "Nothing is half-erased" in line
