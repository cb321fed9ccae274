"""languages: a customer's /language choice (apart from Telegram's code), and the catalog's
translations (title and description per language, as JSON)

Revision ID: 0007
Revises: 0003
Create Date: 2026-12-02 02:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("chosen_language", sa.String(length=16), nullable=True))
    for table in ("categories", "products"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("translations", sa.JSON(), nullable=True))


def downgrade() -> None:
    for table in ("products", "categories"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("translations")
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.drop_column("chosen_language")
