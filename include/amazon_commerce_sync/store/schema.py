"""Tables of the integration's state store (SQLAlchemy Core).

The state store is separate from Airflow's metadata database. Schema changes
go through the Alembic migrations in ``store/migrations``; this module is the
current shape that the code reads and writes.

Buyer personal data lives only in ``order_pii`` so that retention can erase it
without touching anything else.
"""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.types import TypeDecorator

from amazon_commerce_sync.store.pii_crypto import EncryptedJSON, EncryptedText

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
metadata = MetaData(naming_convention=NAMING)


class Money(TypeDecorator):
    """An exact decimal amount: NUMERIC(18, 4) on PostgreSQL, text on SQLite.

    SQLite has no decimal type (SQLAlchemy would go through float), so the
    value is stored as its exact string there.
    """

    impl = Numeric(18, 4)
    cache_ok = True

    def load_dialect_impl(self, dialect):
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(40))
        return dialect.type_descriptor(Numeric(18, 4, asdecimal=True))

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        value = Decimal(value)
        return str(value) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        return None if value is None else Decimal(value)


def _ts(name: str, **kw) -> Column:
    return Column(name, DateTime(timezone=True), **kw)


cursors = Table(
    "cursors",
    metadata,
    Column("stream", String(200), primary_key=True),
    _ts("value", nullable=False),
    _ts("updated_at", nullable=False),
    # What the cursor covers, where a stream reads several sources in one window (the marketplace ids of an
    # account's region, comma-separated): a source not listed has not been read up to ``value``.
    Column("scope", String(1000), nullable=True),
)

amazon_orders = Table(
    "amazon_orders",
    metadata,
    Column("amazon_order_id", String(32), primary_key=True),
    Column("account_id", String(64), nullable=False),
    Column("marketplace_id", String(32), nullable=False),
    Column("fulfilled_by", String(16), nullable=False),
    Column("amazon_status", String(32), nullable=False),
    _ts("amazon_created_at", nullable=False),
    _ts("amazon_updated_at", nullable=False),
    Column("currency", String(3)),
    Column("order_total", Money()),
    Column("buyer_cancel_requested", Boolean, nullable=False, default=False),
    # The order without personal data, as last staged (items, proceeds, packages...).
    Column("payload", JSON, nullable=False),
    # Where the order stands in Commerce; see store.OrderSync.
    Column("sync_status", String(32), nullable=False),
    Column("sync_reason", Text),
    _ts("synced_amazon_updated_at"),
    Column("commerce_order_id", Integer),
    Column("commerce_increment_id", String(64)),
    Column("attempts", Integer, nullable=False, default=0),
    _ts("delivered_at"),
    _ts("first_seen_at", nullable=False),
    _ts("updated_at", nullable=False),
    # Amazon's fulfillment.shipByWindow.latestDateTime (merchant-fulfilled orders): the ship-by deadline the
    # monitor alerts on; ``ship_by_alerted_at``: when that alert was sent for the order (it is sent once).
    _ts("ship_by"),
    _ts("ship_by_alerted_at"),
    Index("ix_amazon_orders_sync", "account_id", "sync_status"),
    Index("ix_amazon_orders_commerce_order_id", "commerce_order_id"),
    Index("ix_amazon_orders_ship_by", "ship_by"),
)

order_pii = Table(
    "order_pii",
    metadata,
    Column(
        "amazon_order_id",
        String(32),
        ForeignKey("amazon_orders.amazon_order_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    # Encrypted at rest (pii_crypto): Fernet tokens in TEXT columns.
    Column("buyer_name", EncryptedText),
    Column("buyer_email", EncryptedText),
    Column("buyer_company", EncryptedText),
    Column("shipping_address", EncryptedJSON),
    _ts("erased_at"),
    Column("buyer_purchase_order", EncryptedText),  # Orders API buyer.buyerPurchaseOrderNumber
    Column("buyer_tax_registrations", EncryptedJSON),  # Orders API tax.taxRegistrations of entityType BUYER
    Column("gift_messages", EncryptedJSON),  # {orderItemId: fulfillment.packing.giftOption.giftMessage}
)
# The buyer-data keys in use, by id (``pii_crypto.key_id``: a fingerprint, never the key): when the integration first
# saw each one as the key that encrypts (the healthcheck warns when that is longer ago than pii_key_max_age_days).
pii_keys = Table(
    "pii_keys",
    metadata,
    Column("key_id", String(16), primary_key=True),
    _ts("first_seen_at", nullable=False),
)

# The buyer data columns of order_pii (the ones retention erases and key rotation re-encrypts).
PII_FIELDS = tuple(c.name for c in order_pii.columns if c.name not in ("amazon_order_id", "erased_at"))

order_items = Table(
    "order_items",
    metadata,
    Column("amazon_order_item_id", String(64), primary_key=True),
    Column(
        "amazon_order_id",
        String(32),
        ForeignKey("amazon_orders.amazon_order_id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("seller_sku", String(200), nullable=False),
    Column("commerce_sku", String(200)),
    Column("quantity_ordered", Integer, nullable=False),
    Column("quantity_shipped", Integer, nullable=False, default=0),
    Column("commerce_order_item_id", Integer),
)

# Intent log of every non-idempotent write to Commerce: recorded before the
# request, completed after it, keyed by a natural key so a retry looks first.
commerce_writes = Table(
    "commerce_writes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("natural_key", String(250), nullable=False, unique=True),
    Column("kind", String(32), nullable=False),
    Column("amazon_order_id", String(32), index=True),
    Column("status", String(16), nullable=False),
    Column("commerce_entity_id", String(64)),
    Column("detail", JSON),
    _ts("created_at", nullable=False),
    _ts("completed_at"),
)

# Pending pushes to Amazon (shipment confirmations, refund adjustments, cancellations).
outbox = Table(
    "outbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("natural_key", String(250), nullable=False, unique=True),
    Column("kind", String(32), nullable=False),
    Column("account_id", String(64), nullable=False),
    Column("amazon_order_id", String(32), nullable=False, index=True),
    Column("payload", JSON, nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("feed_id", String(64), index=True),
    Column("message_id", Integer),
    Column("amazon_message", Text),
    _ts("created_at", nullable=False),
    _ts("updated_at", nullable=False),
    Index("ix_outbox_kind_status", "kind", "status"),
)

feeds = Table(
    "feeds",
    metadata,
    Column("feed_id", String(64), primary_key=True),
    Column("account_id", String(64), nullable=False),
    Column("feed_type", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    Column("document_id", String(128)),
    Column("summary", JSON),
    _ts("submitted_at", nullable=False),
    _ts("completed_at"),
)

quarantine = Table(
    "quarantine",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("entity_type", String(32), nullable=False),
    Column("entity_id", String(64), nullable=False),
    Column("reason", Text, nullable=False),
    Column("detail", JSON),
    Column("occurrences", Integer, nullable=False, default=1),
    _ts("first_seen_at", nullable=False),
    _ts("last_seen_at", nullable=False),
    _ts("resolved_at"),
    UniqueConstraint("entity_type", "entity_id", name="uq_quarantine_entity"),
)

mismatches = Table(
    "mismatches",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(48), nullable=False),
    Column("amazon_order_id", String(32), nullable=False),
    Column("detail", Text, nullable=False),
    _ts("first_seen_at", nullable=False),
    _ts("last_seen_at", nullable=False),
    _ts("resolved_at"),
    UniqueConstraint("kind", "amazon_order_id", name="uq_mismatches_kind_order"),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    _ts("at", nullable=False, index=True),
    Column("actor", String(250), nullable=False),
    Column("action", String(64), nullable=False),
    Column("entity_type", String(32), nullable=False),
    Column("entity_id", String(64), nullable=False),
    Column("detail", JSON),
)

rate_limit_buckets = Table(
    "rate_limit_buckets",
    metadata,
    Column("bucket_key", String(200), primary_key=True),
    Column("tokens", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)

leases = Table(
    "leases",
    metadata,
    Column("lease_key", String(250), primary_key=True),
    Column("owner", String(250), nullable=False),
    Column("expires_at", Float, nullable=False),
)

# The three-way check of refund amounts (``store.refund_checks``): one row per credit memo sent to Amazon
# (``sent:<creditmemo id>``) and per Amazon-side refund mirrored into Commerce (``mirror:<creditmemo id>``).
# Amounts are JSON ``{item code or "*": {component: decimal string}}``.
refund_checks = Table(
    "refund_checks",
    metadata,
    Column("check_key", String(64), primary_key=True),
    Column("account_id", String(64), nullable=False),
    Column("amazon_order_id", String(32), nullable=False, index=True),
    Column("direction", String(8), nullable=False),  # sent | mirror
    Column("creditmemo_id", Integer, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("memo_amounts", JSON, nullable=False),
    Column("accepted_amounts", JSON),
    Column("posted_amounts", JSON),
    Column("transaction_key", String(250)),
    Column("status", String(16), nullable=False),  # sent | confirmed | mismatched
    Column("detail", Text),
    _ts("opened_at", nullable=False, index=True),
    _ts("checked_at"),
)

# The event-driven import (``store.order_events``): one row per account and Amazon order an ORDER_CHANGE
# notification named, with the newest change time seen; ``state`` new | done | unknown (getOrder 404 repeatedly)
# | stale (Amazon kept showing an older version: left to the polling sweep).
order_events = Table(
    "order_events",
    metadata,
    Column("account_id", String(64), primary_key=True),
    Column("amazon_order_id", String(32), primary_key=True),
    _ts("change_time", nullable=False),
    Column("notification_id", String(64), nullable=False),
    Column("change_type", String(32), nullable=False),
    Column("state", String(16), nullable=False, index=True),
    Column("attempts", Integer, nullable=False, default=0),
    Column("deferrals", Integer, nullable=False, default=0, server_default="0"),  # migration 0010
    Column("claimed_by", String(250)),
    Column("claimed_until", Float),
    _ts("loaded_updated_at"),
    _ts("received_at", nullable=False),
    _ts("updated_at", nullable=False),
)
