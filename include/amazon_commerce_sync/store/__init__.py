"""The integration's state store: cursors, order mapping, intents, outbox, quarantine, audit."""

from amazon_commerce_sync.store.repository import (
    OrderSync,
    OutboxStatus,
    StagedOrder,
    StateStore,
    WriteStatus,
)

__all__ = ["OrderSync", "OutboxStatus", "StagedOrder", "StateStore", "WriteStatus"]
