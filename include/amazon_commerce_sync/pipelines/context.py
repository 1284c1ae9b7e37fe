"""What every pipeline task needs: settings, the state store and the hooks, built inside the task."""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
import threading

from amazon_commerce_sync.settings import AccountSettings, Settings, load_settings
from amazon_commerce_sync.store import StateStore
from amazon_commerce_sync.store.db import get_engine, migrate

log = logging.getLogger(__name__)


@dataclasses.dataclass
class Context:
    """Settings, store and hook factories for one task run."""

    settings: Settings
    store: StateStore
    actor: str

    @functools.cached_property
    def limiter(self):
        # One limit shared by every task and worker: the buckets live in the state store.
        from amazon_commerce_sync.ratelimit import SqlLimiter

        return SqlLimiter(self.store.engine)

    def amazon(self, account: AccountSettings):
        from amazon_commerce_sync.hooks.amazon import AmazonSpApiHook

        return self._per_thread(
            ("amazon", account.amazon_conn_id), lambda: AmazonSpApiHook(account.amazon_conn_id, limiter=self.limiter)
        )

    def commerce(self, account: AccountSettings):
        from amazon_commerce_sync.hooks.commerce import CommerceHook

        return self._per_thread(("commerce", account.commerce_conn_id), lambda: CommerceHook(account.commerce_conn_id))

    _hooks: threading.local = dataclasses.field(default_factory=threading.local)

    def _per_thread(self, key, factory):
        # requests sessions are not shared between threads.
        cache = self._hooks.__dict__.setdefault("cache", {})
        if key not in cache:
            cache[key] = factory()
        return cache[key]


def build_context(actor: str, *, settings: Settings | None = None, db_url: str | None = None) -> Context:
    """Load and validate the settings, open and migrate the state store."""
    settings = settings or load_settings()
    engine = get_engine(db_url or os.environ.get("SALES_CHANNEL_DB_URL") or None)
    migrate(engine)
    return Context(settings=settings, store=StateStore(engine, actor=actor), actor=actor)
