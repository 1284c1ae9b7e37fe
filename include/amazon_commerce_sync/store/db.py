"""Where the state store lives, and bringing its schema up to date.

The store's URL comes, in order, from the Airflow connection ``sales_channel_db``
(production: PostgreSQL), the environment variable ``SALES_CHANNEL_DB_URL``, or
the embedded default: a SQLite file ``sales_channel.db`` in ``$AIRFLOW_HOME``.
"""

from __future__ import annotations

import functools
import logging
import os
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import event
from sqlalchemy.engine import Engine, create_engine

from amazon_commerce_sync.constants import STATE_DB_CONN_ID

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def default_url() -> str:
    """The state store's URL, without touching the network."""
    url = _url_from_airflow_connection()
    if url:
        return url
    if os.environ.get("SALES_CHANNEL_DB_URL"):
        return os.environ["SALES_CHANNEL_DB_URL"]
    home = Path(os.environ.get("AIRFLOW_HOME", Path.home() / "airflow"))
    return f"sqlite:///{home / 'sales_channel.db'}"


def _url_from_airflow_connection() -> str | None:
    try:
        from airflow.sdk import BaseHook
        from airflow.sdk.exceptions import AirflowRuntimeError
    except ImportError:  # pragma: no cover - Airflow is always installed here
        return None
    try:
        conn = BaseHook.get_connection(STATE_DB_CONN_ID)
    except (AirflowRuntimeError, LookupError, Exception):  # noqa: BLE001 - absent connection
        return None
    uri = conn.get_uri()
    for prefix in ("postgres://", "postgresql://"):
        if uri.startswith(prefix):
            return "postgresql+psycopg2://" + uri[len(prefix) :]
    return uri


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    # Let SQLAlchemy, not the driver, open transactions (see _sqlite_begin).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _sqlite_begin(connection) -> None:
    # Take the write lock at BEGIN: concurrent writers then wait (busy_timeout)
    # instead of failing on a read-then-write race. SQLite has no SELECT ... FOR UPDATE.
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def make_engine(url: str | None = None) -> Engine:
    url = url or default_url()
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5)


@functools.cache
def get_engine(url: str | None = None) -> Engine:
    """One engine per URL and process."""
    return make_engine(url)


def _alembic_config(connection) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


def migrate(engine: Engine) -> str:
    """Upgrade the schema to the newest revision; returns it. Safe to run concurrently on PostgreSQL."""
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            # Two workers migrating at once would race on CREATE TABLE.
            connection.exec_driver_sql("SELECT pg_advisory_xact_lock(7355608)")
        command.upgrade(_alembic_config(connection), "head")
    return head_revision()


def head_revision() -> str:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return ScriptDirectory.from_config(cfg).get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def is_migrated(engine: Engine) -> bool:
    return current_revision(engine) == head_revision()
