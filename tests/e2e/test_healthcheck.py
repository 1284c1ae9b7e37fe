"""sales_channel_healthcheck: green against the sandboxes, red with a clear message when a connection is wrong."""

from __future__ import annotations

import json
import logging

import pytest

pytestmark = pytest.mark.e2e


def test_healthcheck_succeeds(channel, debug_logs, caplog, capfd):
    debug_logs()
    states = channel.run_dag("sales_channel_healthcheck")
    assert states == {"check": "success"}
    # the log reads as sentences and a table of rate-limit headroom with rounded figures, not a dict
    output = caplog.text + "".join(capfd.readouterr())
    assert "Amazon SP-API OK for us-main (amazon_sp_api): token in" in output
    assert "Commerce OK for us-main (commerce): store default" in output
    header = next(line for line in output.splitlines() if line.split()[:2] == ["operation", "Amazon"])
    assert header.split() == ["operation", "Amazon", "/s", "ours", "/s", "burst"]
    ours = [r.getMessage() for r in caplog.records if r.name == "amazon_commerce_sync.pipelines.healthcheck"]
    assert len(ours) == 3 and not any("{" in line for line in ours), ours  # Amazon, Commerce, the buyer-data key
    # Alembic's start-up lines are not in every task log (the store is already migrated)
    assert "Context impl" not in output and "Will assume transactional DDL" not in output


def test_healthcheck_fails_clearly_on_wrong_credentials(channel, monkeypatch, caplog, capfd):
    conn = json.loads(__import__("os").environ["AIRFLOW_CONN_AMAZON_SP_API"])
    conn["password"] = "wrong-secret-value"
    monkeypatch.setenv("AIRFLOW_CONN_AMAZON_SP_API", json.dumps(conn))
    caplog.set_level(logging.INFO)
    states = channel.run_dag("sales_channel_healthcheck")
    assert states == {"check": "failed"}
    output = caplog.text + "".join(capfd.readouterr())
    assert "Amazon SP-API check failed for account us-main (connection 'amazon_sp_api')" in output
    assert "invalid_client" in output
    assert "wrong-secret-value" not in output  # never the secret itself


def test_healthcheck_warns_ahead_of_an_amazon_removal(channel, monkeypatch, caplog, capfd):
    """An operation the hook calls, removed by Amazon within deprecation_warning_days (default 90): the check
    stays green and its log names the operation, the date and the replacement."""
    import dataclasses
    from datetime import UTC, datetime, timedelta

    from amazon_commerce_sync.hooks.operations import OPERATIONS

    removal = datetime.now(UTC).date() + timedelta(days=60)
    row = dataclasses.replace(
        OPERATIONS["confirmShipment"],
        deprecated=removal - timedelta(days=365),
        removal=removal,
        replacement="a later confirmShipment",
        source="https://example.invalid/notice",
    )
    monkeypatch.setitem(OPERATIONS, "confirmShipment", row)
    caplog.set_level(logging.WARNING)
    assert channel.run_dag("sales_channel_healthcheck") == {"check": "success"}
    output = caplog.text + "".join(capfd.readouterr())
    assert (
        f"confirmShipment (Orders v0) is removed by Amazon on {removal.isoformat()} (in 60 days): "
        "move to a later confirmShipment" in output
    )


def test_healthcheck_warns_when_the_buyer_data_key_is_older_than_the_setting(channel, monkeypatch, caplog, capfd):
    """The age counts from when the key was first seen encrypting (pii_keys); past pii_key_max_age_days the check
    stays green and its log names the key id and the rotation steps. Without a key, the check fails naming it."""
    from datetime import UTC, datetime, timedelta

    from amazon_commerce_sync.store import pii_crypto

    kid = pii_crypto.cipher().current_key_id
    channel.store.retention.note_key(kid, datetime.now(UTC) - timedelta(days=45))
    caplog.set_level(logging.INFO)
    assert channel.run_dag("sales_channel_healthcheck") == {"check": "success"}  # 45 days: within the default 90
    report = channel.last_run.get_task_instance("check").xcom_pull(task_ids="check")["pii_keys"]
    assert (report["key_id"], report["age_days"], report["max_age_days"]) == (kid, 45, 90) and "warning" not in report
    assert "has encrypted since" not in caplog.text + "".join(capfd.readouterr())

    settings = json.loads(channel.settings_path.read_text())
    channel.settings_path.write_text(json.dumps({**settings, "pii_key_max_age_days": 30}))
    assert channel.run_dag("sales_channel_healthcheck") == {"check": "success"}
    output = caplog.text + "".join(capfd.readouterr())
    assert f"buyer-data key {kid} has encrypted since" in output and "(45 days; pii_key_max_age_days is 30)" in output
    assert "put a new key first in SALES_CHANNEL_PII_KEYS" in output

    monkeypatch.delenv(pii_crypto.KEYS_ENV)
    assert channel.run_dag("sales_channel_healthcheck") == {"check": "failed"}
    output = caplog.text + "".join(capfd.readouterr())
    assert "buyer-data encryption key: no encryption key for buyer data: set SALES_CHANNEL_PII_KEYS" in output


def test_healthcheck_fails_when_stored_buyer_data_needs_a_key_that_is_not_configured(
    channel, monkeypatch, caplog, capfd
):
    """A key replaced instead of rotated (the new one put in place of the old): every order encrypted with the old one
    can no longer be imported or rotated. The healthcheck says so, naming the key id and how many values need it."""
    from cryptography.fernet import Fernet

    from amazon_commerce_sync.store import pii_crypto
    from tests.store_queries import staged_order

    pii = {"buyer_name": "Qzx Replaced", "buyer_email": "qzx@example.test"}
    order = staged_order("111-0000006-0000006", pii, account_id="us-main", currency="USD")
    channel.store.orders.stage([order])
    old_id = pii_crypto.cipher().current_key_id
    caplog.set_level(logging.INFO)
    assert channel.run_dag("sales_channel_healthcheck") == {"check": "success"}

    monkeypatch.setenv(pii_crypto.KEYS_ENV, Fernet.generate_key().decode())  # the old key dropped too early
    assert channel.run_dag("sales_channel_healthcheck") == {"check": "failed"}
    output = caplog.text + "".join(capfd.readouterr())
    assert (
        f"buyer data is encrypted with key id {old_id} (2 values), which is not configured in SALES_CHANNEL_PII_KEYS"
        in output
    )
    assert "Qzx" not in output
