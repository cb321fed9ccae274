"""orders: abandoned_at, when the buyer cancelled the order or let it expire (Buy's hourly cap)

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 02:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storage.types

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.add_column(sa.Column("abandoned_at", storage.types.UTCDateTime(), nullable=True))
        batch_op.create_index(
            "ix_orders_customer_abandoned", ["customer_id", "abandoned_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_index("ix_orders_customer_abandoned")
        batch_op.drop_column("abandoned_at")
