"""referrals: a customer's own code, who referred them, the first paid order that rewarded
the referrer; personal promo codes (an owner who alone may use them)

Revision ID: 0010
Revises: 0007
Create Date: 2026-12-02 05:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storage.types

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("referral_code", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("referred_by", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("referred_at", storage.types.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("referral_order_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("referral_reward", sa.String(length=64), nullable=True))
        batch_op.create_unique_constraint(
            batch_op.f("uq_customers_referral_code"), ["referral_code"]
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_customers_referred_by_customers"),
            "customers",
            ["referred_by"],
            ["id"],
            ondelete="SET NULL",
        )
        batch_op.create_index("ix_customers_referred_by", ["referred_by"], unique=False)
    with op.batch_alter_table("promo_codes", schema=None) as batch_op:
        batch_op.add_column(sa.Column("owner_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_promo_codes_owner_id_customers"),
            "customers",
            ["owner_id"],
            ["id"],
            ondelete="CASCADE",
        )


def downgrade() -> None:
    with op.batch_alter_table("promo_codes", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_promo_codes_owner_id_customers"), type_="foreignkey"
        )
        batch_op.drop_column("owner_id")
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.drop_index("ix_customers_referred_by")
        batch_op.drop_constraint(
            batch_op.f("fk_customers_referred_by_customers"), type_="foreignkey"
        )
        batch_op.drop_constraint(batch_op.f("uq_customers_referral_code"), type_="unique")
        batch_op.drop_column("referral_reward")
        batch_op.drop_column("referral_order_id")
        batch_op.drop_column("referred_at")
        batch_op.drop_column("referred_by")
        batch_op.drop_column("referral_code")
