"""The integration's state store, by aggregate.

``StateStore(engine, actor)`` opens the aggregates on one SQLAlchemy engine:

- ``orders`` (``OrderStore``): staged Amazon orders, their items, personal data kept apart;
  ``retention`` (``Retention``): that personal data's retention clocks and erasure;
- ``writes`` (``WriteLog``): the intent log of writes to Commerce (and Amazon's createFeed);
- ``outbox`` (``Outbox``): pushes to Amazon and the feeds that carry them;
- ``ops`` (``Operations``): cursors, leases, quarantine, mismatches, audit trail;
- ``ship_by`` (``ShipByDeadlines``): merchant-fulfilled orders at risk of missing their ship-by deadline;
- ``refund_checks`` (``RefundChecks``): the three-way check of refund amounts (memo, accepted adjustment,
  Amazon's refund transaction).

Schema: ``store/schema.py`` (migrations in ``store/migrations``); where the store lives: ``store/db.py``.
"""

from __future__ import annotations

from contextlib import AbstractContextManager

from sqlalchemy.engine import Connection, Engine

from amazon_commerce_sync.store.base import unit
from amazon_commerce_sync.store.db import read_only
from amazon_commerce_sync.store.operations import Operations
from amazon_commerce_sync.store.orders import (
    ItemRow,
    OrderRow,
    OrderStore,
    OrderSync,
    Pii,
    PiiRow,
    StagedItem,
    StagedOrder,
    StuckOrder,
)
from amazon_commerce_sync.store.outbox import TERMINAL, FeedRow, Outbox, OutboxRow, OutboxStatus
from amazon_commerce_sync.store.refund_checks import RefundCheckRow, RefundChecks
from amazon_commerce_sync.store.retention import Retention
from amazon_commerce_sync.store.schema import PII_FIELDS
from amazon_commerce_sync.store.ship_by import ShipByDeadlines
from amazon_commerce_sync.store.writes import WriteLog, WriteRow, WriteStatus


class StateStore:
    """The state store's aggregates on one engine; ``actor`` (the run) is written into the audit trail."""

    def __init__(self, engine: Engine, actor: str = "sales-channel") -> None:
        self.engine = engine
        self.actor = actor
        self.orders = OrderStore(engine, actor)
        self.retention = Retention(engine, actor)
        self.writes = WriteLog(engine, actor)
        self.outbox = Outbox(engine, actor)
        self.ops = Operations(engine, actor)
        self.refund_checks = RefundChecks(engine, actor)
        self.ship_by = ShipByDeadlines(engine, actor)

    def unit(self) -> AbstractContextManager[None]:
        """The calling thread's store calls in one transaction until the block ends (``store.base.unit``): one
        commit for bookkeeping that belongs together. Nothing may be sent to another system inside it."""
        return unit(self.engine)

    def reading(self) -> AbstractContextManager[Connection]:
        """A connection for reads only, for queries outside the aggregates (the Sales Channel page, the decision
        DAG's look-up): on SQLite its transaction is a snapshot of the write-ahead log that takes no lock and waits
        for no writer (``db.READ_ONLY``), where a plain connection would begin with the write lock. Nothing written
        through it may be committed."""
        return read_only(self.engine)


__all__ = [
    "PII_FIELDS",
    "TERMINAL",
    "FeedRow",
    "ItemRow",
    "Operations",
    "OrderRow",
    "OrderStore",
    "OrderSync",
    "Outbox",
    "OutboxRow",
    "OutboxStatus",
    "Pii",
    "RefundCheckRow",
    "RefundChecks",
    "PiiRow",
    "Retention",
    "StagedItem",
    "StagedOrder",
    "ShipByDeadlines",
    "StateStore",
    "StuckOrder",
    "WriteLog",
    "WriteRow",
    "WriteStatus",
]
