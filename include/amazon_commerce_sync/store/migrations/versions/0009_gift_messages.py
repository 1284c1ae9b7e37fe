"""order_pii.gift_messages: the buyer's gift messages join the encrypted buyer data

Amazon counts a gift message's content as personal data; until now it stayed in the staged payload
(``orderItems[].fulfillment.packing.giftOption.giftMessage``) in clear. From this version it is staged in
``order_pii.gift_messages`` (``{orderItemId: message}``, a Fernet token like the other buyer data) and never in the
payload. Payloads staged before keep their messages until the order is staged again or its buyer data is erased
(``amazon_pii_retention`` also removes them from the payload then).

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("order_pii") as batch:
        batch.add_column(sa.Column("gift_messages", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("order_pii") as batch:
        batch.drop_column("gift_messages")
