"""sales_channel_healthcheck: green against the sandboxes, red with a clear message when a connection is wrong."""

from __future__ import annotations

import json
import logging

import pytest

pytestmark = pytest.mark.e2e


def test_healthcheck_succeeds(channel):
    states = channel.run_dag("sales_channel_healthcheck")
    assert states == {"check": "success"}


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
