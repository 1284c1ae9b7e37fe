"""Where the state store is, as a deployment configures it: the sales_channel_db connection fails closed.

Real Airflow connections throughout: AIRFLOW_CONN_SALES_CHANNEL_DB read by Airflow's environment-variable backend,
and Airflow's LocalFilesystemBackend configured as the secrets backend (in a subprocess: Airflow loads its backends
once per process). Only a connection no backend has may fall back to SALES_CHANNEL_DB_URL or the SQLite default,
and the SQLite default only under the LocalExecutor.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest
import sqlalchemy
from sqlalchemy.engine import make_url

from amazon_commerce_sync.store.db import StateStoreConfigError, default_url, make_engine

ROOT = Path(__file__).resolve().parents[2]
CONN_VAR = "AIRFLOW_CONN_SALES_CHANNEL_DB"
PASSWORD = "pw-marker-9f3/c@d:e"  # characters that need quoting in a URL; never in an error message
QUOTED_PASSWORD = quote(PASSWORD, safe="")


@pytest.fixture(autouse=True)
def nothing_configured(monkeypatch):
    for name in (CONN_VAR, "SALES_CHANNEL_DB_URL", "AIRFLOW__CORE__EXECUTOR"):
        monkeypatch.delenv(name, raising=False)


def postgres_conn(**fields) -> str:
    """AIRFLOW_CONN_* in Airflow's JSON form."""
    return json.dumps({"conn_type": "postgres", "host": "db.example.internal", "port": 5432, **fields})


def test_not_defined_falls_back_to_the_url_then_to_sqlite_in_airflow_home(monkeypatch):
    assert default_url() == f"sqlite:///{Path(os.environ['AIRFLOW_HOME']) / 'sales_channel.db'}"
    monkeypatch.setenv("SALES_CHANNEL_DB_URL", "postgresql+psycopg2://store@db.example.internal/sales_channel")
    assert default_url() == "postgresql+psycopg2://store@db.example.internal/sales_channel"
    monkeypatch.setenv(CONN_VAR, "")  # an empty variable defines nothing, for Airflow too
    assert default_url() == "postgresql+psycopg2://store@db.example.internal/sales_channel"


@pytest.mark.parametrize(
    "value",
    [
        f"postgres://store:{QUOTED_PASSWORD}@db.example.internal:5432/sales_channel?sslmode=require&connect_timeout=10",
        postgres_conn(
            login="store",
            password=PASSWORD,
            schema="sales_channel",
            extra={"sslmode": "require", "connect_timeout": 10},
        ),
    ],
    ids=["uri", "json"],
)
def test_a_postgres_connection_becomes_a_psycopg2_url_and_wins_over_the_url_variable(monkeypatch, value):
    monkeypatch.setenv(CONN_VAR, value)
    monkeypatch.setenv("SALES_CHANNEL_DB_URL", "sqlite:///elsewhere.db")
    url = make_url(default_url())
    assert (url.drivername, url.username, url.password, url.host, url.port, url.database) == (
        "postgresql+psycopg2",
        "store",
        PASSWORD,
        "db.example.internal",
        5432,
        "sales_channel",
    )
    assert dict(url.query) == {"sslmode": "require", "connect_timeout": "10"}


@pytest.mark.postgres
def test_the_url_of_a_connection_reaches_a_real_postgresql(monkeypatch, postgres_server):
    server = make_url(postgres_server)
    extra = {"connect_timeout": 5, "application_name": "acs-deploy-test"}
    monkeypatch.setenv(
        CONN_VAR,
        postgres_conn(
            host=server.host,
            port=server.port or 5432,
            login=server.username,
            password=server.password,
            schema=server.database,
            extra=extra,
        ),
    )
    engine = make_engine(default_url())
    try:
        with engine.connect() as conn:
            name = conn.execute(sqlalchemy.text("SELECT current_setting('application_name')")).scalar_one()
        assert name == "acs-deploy-test"
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_sslmode_verify_full_in_the_connection_uri_reaches_libpq(monkeypatch, postgres_server, tmp_path):
    """README "Deployment: TLS and access": the URI form with sslmode=verify-full and the CA file. The test server
    speaks no TLS, so libpq must refuse to connect instead of falling back to plaintext."""
    server = make_url(postgres_server)
    ca_file = tmp_path / "db-ca.pem"
    ca_file.write_text("not used: the server refuses TLS before any certificate is read\n")
    monkeypatch.setenv(
        CONN_VAR,
        f"postgres://{server.username}@{server.host}:{server.port or 5432}/{server.database}"
        f"?sslmode=verify-full&sslrootcert={quote(str(ca_file), safe='')}&connect_timeout=5",
    )
    url = make_url(default_url())
    assert dict(url.query) == {"sslmode": "verify-full", "sslrootcert": str(ca_file), "connect_timeout": "5"}
    engine = make_engine(default_url())
    try:
        with pytest.raises(sqlalchemy.exc.OperationalError, match="SSL"):
            with engine.connect():
                pass
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ('{"conn_type": "postgres", "host": ', f"{CONN_VAR} failed to read it (JSONDecodeError)"),
        (f"http://store:{QUOTED_PASSWORD}@shop.example.com", "its type is 'http'"),
        ("sales-channel-db.example.internal", "its type is 'none'"),
        (postgres_conn(host="", password=PASSWORD), "it has no host"),
        (postgres_conn(password=PASSWORD, extra="{sslmode"), "its extra is not valid JSON"),
        (postgres_conn(password=PASSWORD, extra={"options": {"nested": 1}}), "not a JSON object of libpq parameters"),
    ],
    ids=["malformed-json", "http-type", "not-a-uri", "no-host", "extra-not-json", "extra-nested"],
)
def test_a_defined_but_unusable_connection_fails_naming_it_and_the_fix_never_falling_back(monkeypatch, value, reason):
    monkeypatch.setenv(CONN_VAR, value)
    monkeypatch.setenv("SALES_CHANNEL_DB_URL", "sqlite:///elsewhere.db")  # would hide the problem
    with pytest.raises(StateStoreConfigError) as caught:
        default_url()
    message = str(caught.value)
    assert reason in message
    assert "'sales_channel_db'" in message and f"{CONN_VAR}='postgresql://" in message
    assert PASSWORD not in message and "shop.example.com" not in message
    # The parser's own error (which may quote the value) is not chained into the task log.
    assert caught.value.__cause__ is None and (caught.value.__context__ is None or caught.value.__suppress_context__)


def test_no_sqlite_default_under_a_distributed_executor(monkeypatch):
    monkeypatch.setenv("AIRFLOW__CORE__EXECUTOR", "airflow.providers.celery.executors.celery_executor.CeleryExecutor")
    with pytest.raises(StateStoreConfigError, match=r"each worker a state store of its own.*'sales_channel_db'"):
        default_url()
    monkeypatch.setenv("AIRFLOW__CORE__EXECUTOR", "LocalExecutor,KubernetesExecutor")
    with pytest.raises(StateStoreConfigError):
        default_url()
    monkeypatch.setenv("SALES_CHANNEL_DB_URL", "postgresql+psycopg2://store@db.example.internal/sales_channel")
    assert default_url() == "postgresql+psycopg2://store@db.example.internal/sales_channel"
    monkeypatch.delenv("SALES_CHANNEL_DB_URL")
    monkeypatch.setenv(CONN_VAR, postgres_conn(schema="sales_channel"))
    assert default_url() == "postgresql+psycopg2://db.example.internal:5432/sales_channel"


def resolve_with_secrets_backend(tmp_path: Path, connections_files: list[str]) -> list[str]:
    """default_url() (or the error) in a fresh process whose secrets backend is Airflow's LocalFilesystemBackend,
    once for each content of its connections file (the backend reads the file on every lookup)."""
    path = tmp_path / "connections.json"
    env = {k: v for k, v in os.environ.items() if k not in (CONN_VAR, "SALES_CHANNEL_DB_URL")}
    env.update(
        AIRFLOW__SECRETS__BACKEND="airflow.secrets.local_filesystem.LocalFilesystemBackend",
        AIRFLOW__SECRETS__BACKEND_KWARGS=json.dumps({"connections_file_path": str(path)}),
        PYTHONPATH=os.pathsep.join([str(ROOT / "include"), str(ROOT)]),
    )
    code = """
import json, pathlib, sys
from amazon_commerce_sync.store.db import StateStoreConfigError, default_url
for content in json.loads(sys.argv[2]):
    pathlib.Path(sys.argv[1]).write_text(content)
    try:
        print("URL", default_url())
    except StateStoreConfigError as exc:
        print("ERROR", exc)
"""
    argv = [sys.executable, "-c", code, str(path), json.dumps(connections_files)]
    result = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == len(connections_files), result.stdout
    return lines


def test_a_failing_secrets_backend_fails_the_lookup_instead_of_reading_as_not_defined(tmp_path):
    """Airflow's own lookup skips a backend that raises and reports the connection as not defined."""
    broken, defined, absent = resolve_with_secrets_backend(
        tmp_path,
        [
            '{"sales_channel_db": ',
            json.dumps({"sales_channel_db": "postgres://store@db.example.internal:5433/sales_channel"}),
            json.dumps({"commerce": "http://shop.example.com"}),
        ],
    )
    assert broken.startswith("ERROR") and "LocalFilesystemBackend failed to read it" in broken, broken
    assert defined == "URL postgresql+psycopg2://store@db.example.internal:5433/sales_channel"
    assert absent.startswith("URL sqlite:///"), absent
