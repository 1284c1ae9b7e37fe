"""Where the state store lives, and bringing its schema up to date.

The store's URL comes, in order, from the Airflow connection ``sales_channel_db``
(production: PostgreSQL), the environment variable ``SALES_CHANNEL_DB_URL``, or
the embedded default: a SQLite file ``sales_channel.db`` in ``$AIRFLOW_HOME``.

It fails closed: only a connection Airflow reports as not defined (and no secrets
backend fails to read) moves on to the next source. A connection that exists but
cannot be read or turned into a URL raises ``StateStoreConfigError``, and so does
the SQLite default under a distributed executor (Celery, Kubernetes), where each
worker would otherwise keep a state store of its own.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, Engine, create_engine

from amazon_commerce_sync.constants import STATE_DB_CONN_ID
from amazon_commerce_sync.errors import StateStoreConfigError

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
# How long a SQLite writer waits for the write lock before it fails ("database is locked").
SQLITE_BUSY_SECONDS = 30


# Executors whose tasks all run on one machine, where one SQLite file can be the state store of every task.
SINGLE_MACHINE_EXECUTORS = frozenset({"LocalExecutor"})
# Airflow connection types the state store accepts for ``sales_channel_db`` (Airflow's URI scheme ``postgres``).
POSTGRES_CONN_TYPES = frozenset({"postgres", "postgresql"})


def default_url() -> str:
    """The state store's SQLAlchemy URL (a string), without touching the network.

    Order: the Airflow connection ``sales_channel_db``, else ``SALES_CHANNEL_DB_URL``, else
    ``sqlite:///$AIRFLOW_HOME/sales_channel.db``. Raises ``StateStoreConfigError`` when the connection is
    defined but unusable, or when the SQLite default would be used by an executor that runs tasks on several
    machines (Airflow's ``[core] executor`` is not only ``LocalExecutor``).
    """
    url = _url_from_airflow_connection()
    if url:
        return url
    if os.environ.get("SALES_CHANNEL_DB_URL"):
        return os.environ["SALES_CHANNEL_DB_URL"]
    _refuse_per_worker_sqlite()
    home = Path(os.environ.get("AIRFLOW_HOME", Path.home() / "airflow"))
    return f"sqlite:///{home / 'sales_channel.db'}"


def _url_from_airflow_connection() -> str | None:
    """``sales_channel_db`` as a ``postgresql+psycopg2`` URL, or None when it is not defined anywhere.

    Airflow's lookup (``BaseHook.get_connection``) reports a connection it could not read as not defined: a
    malformed ``AIRFLOW_CONN_*`` value and a failing secrets backend are logged at DEBUG and skipped
    (``airflow.sdk.execution_time.context._get_connection``). So a not-defined answer gets a second look.
    """
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        conn = BaseHook.get_connection(STATE_DB_CONN_ID)
    except AirflowNotFoundException:
        conn = _second_look(STATE_DB_CONN_ID)
    except Exception as exc:  # noqa: BLE001 - anything but "not defined" must stop the task
        raise _unreadable(STATE_DB_CONN_ID, f"Airflow could not read it ({type(exc).__name__})") from None
    return None if conn is None else _postgres_url(conn)


def _second_look(conn_id: str) -> Any:
    """Ask each secrets backend Airflow searches for ``conn_id`` again, letting their errors through.

    Returns the connection if a backend has it now, None if every backend answers that it has none; raises
    StateStoreConfigError naming the backend (or the ``AIRFLOW_CONN_*`` variable) that fails to read it.
    """
    # The backend chain BaseHook.get_connection searches in this process's context (worker, server or other).
    from airflow.sdk.execution_time.supervisor import ensure_secrets_backend_loaded

    for backend in ensure_secrets_backend_loaded():
        try:
            conn = backend.get_connection(conn_id=conn_id)
        except Exception as exc:  # noqa: BLE001 - the error Airflow's lookup skipped
            kind = type(backend).__name__
            source = _environment_variable(conn_id) if kind == "EnvironmentVariablesBackend" else kind
            raise _unreadable(conn_id, f"{source} failed to read it ({type(exc).__name__})") from None
        if conn is not None:
            return conn
    return None


def _postgres_url(conn: Any) -> str:
    """An Airflow Postgres connection as a ``postgresql+psycopg2`` URL: login, password, host, port, schema (the
    database), and the extra's keys as libpq connection parameters (``sslmode``, ``connect_timeout``, ...: the
    "Parameter Key Words" of PostgreSQL's libpq documentation), passed to psycopg2 as URL query parameters."""
    conn_id = conn.conn_id
    if (conn.conn_type or "").lower() not in POSTGRES_CONN_TYPES:
        kind = conn.conn_type or "none"
        raise _unreadable(conn_id, f"its type is {kind!r}; the state store needs a Postgres connection")
    if not conn.host:
        raise _unreadable(conn_id, "it has no host")
    try:
        extra = json.loads(conn.extra) if conn.extra else {}
    except ValueError:
        raise _unreadable(conn_id, "its extra is not valid JSON") from None
    if not isinstance(extra, dict) or not all(isinstance(v, str | int | float) for v in extra.values()):
        raise _unreadable(conn_id, 'its extra is not a JSON object of libpq parameters (e.g. {"sslmode": "require"})')
    url = URL.create(
        "postgresql+psycopg2",
        username=conn.login or None,
        password=conn.password or None,
        host=conn.host,
        port=conn.port or None,
        database=conn.schema or None,
        query={key: str(value) for key, value in extra.items()},
    )
    return url.render_as_string(hide_password=False)


def _unreadable(conn_id: str, reason: str) -> StateStoreConfigError:
    return StateStoreConfigError(
        f"The Airflow connection {conn_id!r} (the state store) cannot be used: {reason}. Fix it: a Postgres "
        f"connection (host, port, login, password, schema = the database; extra = libpq parameters), e.g. "
        f"{_environment_variable(conn_id)}='postgresql://user:password@host:5432/sales_channel'. Or delete it to use "
        "SALES_CHANNEL_DB_URL or the single-machine SQLite default. Tasks do not fall back while it is defined: "
        "that would split the state store."
    )


def _environment_variable(conn_id: str) -> str:
    """The variable Airflow's EnvironmentVariablesBackend reads a connection from."""
    return f"AIRFLOW_CONN_{conn_id.upper()}"


def _refuse_per_worker_sqlite() -> None:
    """Raise StateStoreConfigError when Airflow's executor runs tasks on more than one machine."""
    from airflow.sdk.configuration import conf

    configured = conf.get("core", "executor", fallback="LocalExecutor")
    # "CeleryExecutor", "airflow.providers.celery.executors.celery_executor.CeleryExecutor", "alias:path", lists.
    names = {part.split(":")[-1].strip().rsplit(".", 1)[-1] for part in configured.split(",") if part.strip()}
    if names - SINGLE_MACHINE_EXECUTORS:
        raise StateStoreConfigError(
            f"No state store is configured and the executor ({configured}) runs tasks on several machines: the "
            f"SQLite default would give each worker a state store of its own. Define the Airflow connection "
            f"{STATE_DB_CONN_ID!r} (Postgres) or SALES_CHANNEL_DB_URL on every Airflow component."
        )


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    # Let SQLAlchemy, not the driver, open transactions (see _sqlite_begin).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_SECONDS * 1000}")
    cursor.execute("PRAGMA foreign_keys=ON")
    # Freed bytes zeroed in the file, whatever the build's default: a value the retention erased, the clear text a
    # key rotation (or a migration's table copy) replaced, leave no copy behind (README "Personal data").
    cursor.execute("PRAGMA secure_delete=ON")
    cursor.close()


#: Execution option of a connection that only reads (``Aggregate._reading``): on SQLite it begins a plain
#: (deferred) transaction, a snapshot of the write-ahead log that takes no lock and waits for no writer.
READ_ONLY = "sales_channel_read_only"


def read_only(engine: Engine) -> Connection:
    """A connection of ``engine`` for reads only (:data:`READ_ONLY`): on SQLite its transaction is a snapshot that
    takes no lock and waits for no writer; on PostgreSQL a plain connection. Nothing written through it may be
    committed."""
    return engine.connect().execution_options(**{READ_ONLY: True})


def _sqlite_begin(connection) -> None:
    # A writing transaction takes the write lock at BEGIN: concurrent writers then wait instead of failing on a
    # read-then-write race (SQLite has no SELECT ... FOR UPDATE). Within the process they queue on the engine's
    # lock first (see _sqlite_connection_class); across processes SQLite's busy_timeout makes them wait.
    if connection.get_execution_options().get(READ_ONLY):
        connection.exec_driver_sql("BEGIN")
        return
    raw = connection.connection.dbapi_connection
    raw.take_write_lock()
    try:
        connection.exec_driver_sql("BEGIN IMMEDIATE")
    except BaseException:
        raw.give_write_lock()
        raise


def _sqlite_connection_class(write_lock: threading.Lock) -> type[sqlite3.Connection]:
    """A ``sqlite3.Connection`` whose write transactions hold ``write_lock`` (one per engine) from BEGIN to
    COMMIT or ROLLBACK.

    SQLite lets one writer in at a time; the others wait in its busy handler, which sleeps in steps of up to
    100 ms and re-tries, so eight threads writing short transactions spend most of their time asleep while the
    file is free. Queued on a lock, the next writer starts the moment the last one commits.
    """

    class Connection(sqlite3.Connection):
        holds_write_lock = False

        def take_write_lock(self) -> None:
            # Bounded like busy_timeout: past it, BEGIN IMMEDIATE waits on SQLite (and fails as SQLite does).
            self.holds_write_lock = write_lock.acquire(timeout=SQLITE_BUSY_SECONDS)

        def give_write_lock(self) -> None:
            if self.holds_write_lock:
                self.holds_write_lock = False
                write_lock.release()

        def _ending(self, end: Callable[[], None]) -> None:
            try:
                end()
            finally:
                self.give_write_lock()

        def commit(self) -> None:
            self._ending(super().commit)

        def rollback(self) -> None:
            self._ending(super().rollback)

        def close(self) -> None:
            self._ending(super().close)

    return Connection


def make_engine(url: str | None = None) -> Engine:
    url = url or default_url()
    if url.startswith("sqlite"):
        engine = create_engine(
            url,
            connect_args={
                "timeout": SQLITE_BUSY_SECONDS,
                "check_same_thread": False,
                "factory": _sqlite_connection_class(threading.Lock()),
            },
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5)


@functools.cache
def get_engine(url: str | None = None) -> Engine:
    """One engine per URL and process.

    Cached by its argument: pass the resolved URL (``default_url()``), not ``None``, wherever the location may
    change within a process (each task resolves it again).
    """
    return make_engine(url)


def _alembic_config(connection) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


@contextlib.contextmanager
def _alembic_quiet() -> Iterator[None]:
    """Alembic's migration logger at WARNING for the duration: its INFO start-up lines ("Context impl
    PostgresqlImpl.", "Will assume transactional DDL.") are logged each time a ``MigrationContext`` is made
    (``alembic.runtime.migration``), which is once per task; they say nothing about the task."""
    logger = logging.getLogger("alembic.runtime.migration")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def migrate(engine: Engine) -> str:
    """Upgrade the schema to the newest revision; returns it. Safe to run concurrently on PostgreSQL.

    A store already at the newest revision is only read (quietly: no Alembic lines in the task log); one that is
    behind is upgraded under a lock, with Alembic's "Running upgrade ..." lines and one line naming both revisions.
    """
    head = head_revision()
    current = current_revision(engine)
    if current == head:
        return head
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            # Two workers migrating at once would race on CREATE TABLE.
            connection.exec_driver_sql("SELECT pg_advisory_xact_lock(7355608)")
        command.upgrade(_alembic_config(connection), "head")
    log.info("state store schema upgraded from revision %s to %s", current or "(empty)", head)
    return head


def head_revision() -> str:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return ScriptDirectory.from_config(cfg).get_current_head()


def current_revision(engine: Engine) -> str | None:
    """The store's Alembic revision (None for an empty store), read without Alembic's start-up log lines."""
    with engine.connect() as connection, _alembic_quiet():
        return MigrationContext.configure(connection).get_current_revision()


def is_migrated(engine: Engine) -> bool:
    return current_revision(engine) == head_revision()
