"""the business buyer's purchase order number and tax registrations join the buyer data in order_pii

Both are personal data as the rest of ``order_pii`` (a Brazilian CPF is a person's number) and encrypted at rest
like it (``pii_crypto``: Fernet tokens in TEXT columns).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("order_pii") as batch:
        batch.add_column(sa.Column("buyer_purchase_order", sa.Text(), nullable=True))
        batch.add_column(sa.Column("buyer_tax_registrations", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("order_pii") as batch:
        batch.drop_column("buyer_tax_registrations")
        batch.drop_column("buyer_purchase_order")
