"""What every pipeline task needs: settings, the state store and the hooks, built inside the task.

Named ``Resources`` (not "context") so that it is never taken for Airflow's task context: a task
receives Airflow's context from the SDK and opens its ``Resources`` with ``open_resources``. The
pipelines' first parameter keeps the short name ``ctx``.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
import threading
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING, Any

from amazon_commerce_sync.settings import AccountSettings, Settings, load_settings
from amazon_commerce_sync.store import StateStore
from amazon_commerce_sync.store.db import default_url, get_engine, migrate

if TYPE_CHECKING:
    from amazon_commerce_sync.hooks.amazon import AmazonSpApiHook
    from amazon_commerce_sync.hooks.commerce import CommerceHook
    from amazon_commerce_sync.ratelimit import SqlLimiter

log = logging.getLogger(__name__)


@dataclasses.dataclass
class Resources:
    """Validated settings, the state store and per-thread hooks for one task run.

    ``actor`` names the run in the audit trail (``<dag_id>/<run_id>/<step>``).
    """

    settings: Settings
    store: StateStore
    actor: str
    _hooks: threading.local = dataclasses.field(default_factory=threading.local, repr=False)

    @functools.cached_property
    def limiter(self) -> SqlLimiter:
        """Amazon's token buckets, shared by every task and worker: they live in the state store."""
        from amazon_commerce_sync.ratelimit import SqlLimiter

        return SqlLimiter(self.store.engine)

    def amazon(self, account: AccountSettings) -> AmazonSpApiHook:
        """The calling thread's Amazon SP-API hook of the account."""
        from amazon_commerce_sync.hooks.amazon import AmazonSpApiHook

        return self._per_thread(
            ("amazon", account.amazon_conn_id), lambda: AmazonSpApiHook(account.amazon_conn_id, limiter=self.limiter)
        )

    def commerce(self, account: AccountSettings) -> CommerceHook:
        """The calling thread's Commerce hook of the account."""
        from amazon_commerce_sync.hooks.commerce import CommerceHook

        return self._per_thread(("commerce", account.commerce_conn_id), lambda: CommerceHook(account.commerce_conn_id))

    def _per_thread(self, key: Hashable, factory: Callable[[], Any]) -> Any:
        # requests sessions are not shared between threads.
        cache = self._hooks.__dict__.setdefault("cache", {})
        if key not in cache:
            cache[key] = factory()
        return cache[key]


def open_resources(actor: str, *, settings: Settings | None = None, db_url: str | None = None) -> Resources:
    """Load and validate the settings, open and migrate the state store.

    The state store's location is resolved by ``store.db.default_url`` (the ``sales_channel_db`` connection,
    else ``SALES_CHANNEL_DB_URL``, else the single-machine SQLite default) unless ``db_url`` is given.

    :raises SettingsError: the settings are invalid (the message names the field and the fix).
    :raises StateStoreConfigError: ``sales_channel_db`` exists but cannot be read or used.
    """
    settings = settings or load_settings()
    engine = get_engine(db_url or default_url())  # resolved per task: the engine cache is keyed by URL
    migrate(engine)
    return Resources(settings=settings, store=StateStore(engine, actor=actor), actor=actor)


def owner_id(run_id: str) -> str:
    """The lease owner of this process and thread within a run (leases are re-entrant for their owner)."""
    return f"{run_id}:{os.getpid()}:{threading.get_ident()}"
