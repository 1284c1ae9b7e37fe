"""Shared fixtures: the two sandboxes served on loopback ports."""

from __future__ import annotations

import os
import tempfile

import pytest

# Tests never wait for real back-off delays (see amazon_commerce_sync.retry).
os.environ.setdefault("ACS_RETRY_NO_WAIT", "1")
os.environ["AIRFLOW_HOME"] = tempfile.mkdtemp(prefix="acs-airflow-home-")
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
# Buyer data is encrypted at rest (store/pii_crypto.py): a key made for this test session.
if not os.environ.get("SALES_CHANNEL_PII_KEYS"):
    from cryptography.fernet import Fernet

    os.environ["SALES_CHANNEL_PII_KEYS"] = Fernet.generate_key().decode()
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = os.path.join(os.path.dirname(os.path.dirname(__file__)), "dags")


@pytest.fixture(autouse=True)
def no_admin_token_of_an_earlier_sandbox():
    """Every test starts with no Commerce admin token in the process: the token cache is keyed by the token URL,
    and a fresh sandbox may be served on a port an earlier test's sandbox had (its token is unknown here: a 401
    and a second token request the test did not expect)."""
    from amazon_commerce_sync.hooks import auth

    with auth._SHARED_TOKEN_LOCK:
        auth._SHARED_TOKENS.clear()


@pytest.fixture(scope="session")
def airflow_db():
    """A migrated Airflow metadata database (SQLite) in this session's AIRFLOW_HOME."""
    import subprocess
    import sys

    airflow = os.path.join(os.path.dirname(sys.executable), "airflow")
    subprocess.run([airflow, "db", "migrate"], check=True, capture_output=True, timeout=300)
    return os.environ["AIRFLOW_HOME"]


@pytest.fixture
def amazon_sandbox():
    """A fresh Amazon SP-API sandbox on a free port: yields (base_url, app)."""
    from sandboxes.amazon.app import create_app
    from sandboxes.amazon.config import AmazonSandboxConfig
    from sandboxes.server import serve_in_thread

    app = create_app(AmazonSandboxConfig(speed=100.0, seed=7, initial_orders=0, finances_v0_removed=True))
    with serve_in_thread(app) as base_url:
        yield base_url, app


@pytest.fixture
def commerce_sandbox():
    """A fresh Adobe Commerce sandbox on a free port: yields (base_url, app)."""
    from sandboxes.commerce.app import create_app
    from sandboxes.commerce.config import CommerceSandboxConfig
    from sandboxes.server import serve_in_thread

    app = create_app(CommerceSandboxConfig())
    with serve_in_thread(app) as base_url:
        yield base_url, app


# -- SQS (moto in server mode) ----------------------------------------------------
SQS_ENDPOINT_ENV = "SALES_CHANNEL_SQS_ENDPOINT"
SQS_DEFAULT_ENDPOINT = "http://127.0.0.1:8703"  # where `make sqs` runs moto


def sqs_answers(endpoint: str) -> bool:
    """True when ``endpoint`` answers the SQS API: a ListQueues whose Authorization names the sqs service
    (moto routes by it; it does not check the signature)."""
    import requests

    try:
        response = requests.post(
            f"{endpoint}/",
            data=b"Action=ListQueues&Version=2012-11-05",
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "Authorization": "AWS4-HMAC-SHA256 Credential=sandbox/20260101/us-east-1/sqs/aws4_request, "
                "SignedHeaders=host, Signature=0",
            },
            timeout=2,
        )
    except requests.RequestException:
        return False
    return b"ListQueuesResponse" in response.content


@pytest.fixture(scope="session")
def sqs_endpoint():
    """The URL of a local SQS (moto in server mode, a real SQS API over HTTP), for the whole session.

    Reuses the one ``SALES_CHANNEL_SQS_ENDPOINT`` names (it must answer) or the one ``make sqs`` runs on
    127.0.0.1:8703; otherwise starts ``moto.server`` on a free loopback port and stops it afterwards.
    Tests share it: each makes queues of its own (unique names)."""
    import subprocess
    import sys
    import time

    from sandboxes.server import free_port

    named = os.environ.get(SQS_ENDPOINT_ENV)
    if named:
        if not sqs_answers(named):
            pytest.fail(f"{SQS_ENDPOINT_ENV}={named} does not answer the SQS API")
        yield named
        return
    if sqs_answers(SQS_DEFAULT_ENDPOINT):
        yield SQS_DEFAULT_ENDPOINT
        return
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while not sqs_answers(endpoint):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"moto_server did not start on {endpoint}")
            time.sleep(0.2)
        yield endpoint
    finally:
        process.kill()  # moto keeps everything in memory: nothing to stop gracefully
        process.wait(timeout=10)


# -- state store databases -------------------------------------------------------
PG_ADMIN_URL = os.environ.get("ACS_TEST_PG_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")


def _pg_available() -> bool:
    import sqlalchemy

    try:
        engine = sqlalchemy.create_engine(PG_ADMIN_URL, connect_args={"connect_timeout": 3})
        with engine.connect():
            pass
        engine.dispose()
        return True
    except Exception:  # noqa: BLE001 - any failure means "no server"
        return False


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """The admin URL of a PostgreSQL server; in CI its absence is a failure, never a skip."""
    if _pg_available():
        return PG_ADMIN_URL
    if os.environ.get("CI"):
        pytest.fail(f"PostgreSQL is required in CI but not reachable at {PG_ADMIN_URL}")
    pytest.skip("no PostgreSQL server reachable (run `make test`, which starts one)")


@pytest.fixture
def postgres_url(postgres_server):
    """A throwaway PostgreSQL database, dropped afterwards."""
    import uuid

    import sqlalchemy

    name = f"acs_test_{uuid.uuid4().hex[:12]}"
    admin = sqlalchemy.create_engine(postgres_server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = postgres_server.rsplit("/", 1)[0] + f"/{name}"
    yield url
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def state_db_url(request, tmp_path):
    """The state store's URL, once on SQLite and once on a real PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def state_store(state_db_url):
    """A migrated StateStore on each backend."""
    from amazon_commerce_sync.store import StateStore
    from amazon_commerce_sync.store.db import make_engine, migrate

    engine = make_engine(state_db_url)
    migrate(engine)
    yield StateStore(engine, actor="tests")
    engine.dispose()
