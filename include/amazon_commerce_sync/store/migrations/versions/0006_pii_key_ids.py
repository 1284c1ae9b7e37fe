"""buyer-data key ids: the table pii_keys (key id and when it was first seen encrypting; never the key)

Values stay as they are: earlier ``fernet:<token>`` values and clear text (from before 0002) still read, and the
retention DAG's ``rotate_keys`` task rewrites them as ``fernet:<key id>:<token>`` with the newest key. That task runs
where the keys are; a migration may run without them (and must not need them), so it does not encrypt.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pii_keys",
        sa.Column("key_id", sa.String(length=16), nullable=False),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key_id", name=op.f("pk_pii_keys")),
    )


def downgrade() -> None:
    # Values written with key ids stay readable only by this version's pii_crypto.
    op.drop_table("pii_keys")
