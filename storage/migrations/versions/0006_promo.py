"""promo codes: the codes, their uses, and the discount on orders, lines and customers

Revision ID: 0006
Revises: 0003
Create Date: 2026-12-02 02:20:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storage.types

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "promo_codes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("value", storage.types.Money(), nullable=False),
        sa.Column("currency", sa.String(length=16), nullable=False),
        sa.Column("max_uses", sa.Integer(), nullable=True),
        sa.Column("used", sa.Integer(), nullable=False),
        sa.Column("per_buyer", sa.Integer(), nullable=False),
        sa.Column("valid_until", storage.types.UTCDateTime(), nullable=True),
        sa.Column("min_total", storage.types.Money(), nullable=True),
        sa.Column("skus", sa.Text(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", storage.types.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_promo_codes")),
        sa.UniqueConstraint("code", name=op.f("uq_promo_codes_code")),
    )
    op.create_table(
        "promo_uses",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("promo_id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("created_at", storage.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_promo_uses_customer_id_customers"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["orders.id"],
            name=op.f("fk_promo_uses_order_id_orders"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["promo_id"],
            ["promo_codes.id"],
            name=op.f("fk_promo_uses_promo_id_promo_codes"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_promo_uses")),
        sa.UniqueConstraint("order_id", name=op.f("uq_promo_uses_order_id")),
    )
    with op.batch_alter_table("promo_uses", schema=None) as batch_op:
        batch_op.create_index("ix_promo_uses_buyer", ["promo_id", "customer_id"], unique=False)
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("discount", storage.types.Money(), server_default="0", nullable=False)
        )
        batch_op.add_column(sa.Column("promo_code", sa.String(length=64), nullable=True))
        batch_op.create_index(batch_op.f("ix_orders_promo_code"), ["promo_code"], unique=False)
    with op.batch_alter_table("order_lines", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("discount", storage.types.Money(), server_default="0", nullable=False)
        )
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("promo_code", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.drop_column("promo_code")
    with op.batch_alter_table("order_lines", schema=None) as batch_op:
        batch_op.drop_column("discount")
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_orders_promo_code"))
        batch_op.drop_column("promo_code")
        batch_op.drop_column("discount")
    with op.batch_alter_table("promo_uses", schema=None) as batch_op:
        batch_op.drop_index("ix_promo_uses_buyer")
    op.drop_table("promo_uses")
    op.drop_table("promo_codes")
