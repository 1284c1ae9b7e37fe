"""buyer tax registrations are personal data (a Brazilian CPF is a person's number): kept in order_pii

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30 19:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("order_pii") as batch:
        batch.add_column(sa.Column("buyer_tax_registrations", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("order_pii") as batch:
        batch.drop_column("buyer_tax_registrations")
