"""buyer data encrypted at rest: order_pii.shipping_address becomes TEXT (a Fernet token)

The other ``order_pii`` columns are TEXT already. Rows written before this revision stay readable as they are
(``pii_crypto`` reads a value without the ``fernet:`` prefix as clear text) and are encrypted by the retention
DAG's key rotation, which runs where the keys are (a migration may run without them).

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column("order_pii", "shipping_address", type_=sa.Text(), postgresql_using="shipping_address::text")
    # SQLite stores JSON as text: nothing to change.


def downgrade() -> None:
    # Only for a store with no encrypted rows left (tokens are not JSON): decrypt them first with the keys.
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column("order_pii", "shipping_address", type_=sa.JSON(), postgresql_using="shipping_address::json")
