"""refund reconciliation: the three-way check of refund amounts

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 19:45:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "refund_checks",
        sa.Column("check_key", sa.String(length=64), nullable=False),
        sa.Column("account_id", sa.String(length=64), nullable=False),
        sa.Column("amazon_order_id", sa.String(length=32), nullable=False),
        sa.Column("direction", sa.String(length=8), nullable=False),
        sa.Column("creditmemo_id", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("memo_amounts", sa.JSON(), nullable=False),
        sa.Column("accepted_amounts", sa.JSON(), nullable=True),
        sa.Column("posted_amounts", sa.JSON(), nullable=True),
        sa.Column("transaction_key", sa.String(length=250), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("check_key", name=op.f("pk_refund_checks")),
    )
    with op.batch_alter_table("refund_checks", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_refund_checks_amazon_order_id"), ["amazon_order_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_refund_checks_opened_at"), ["opened_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("refund_checks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_refund_checks_opened_at"))
        batch_op.drop_index(batch_op.f("ix_refund_checks_amazon_order_id"))
    op.drop_table("refund_checks")
