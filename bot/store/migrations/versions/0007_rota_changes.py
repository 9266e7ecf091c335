"""duty console: the audit trail of rota edits made in the console

Revision ID: 0007_rota_changes
Revises: 0006_handoff_watch
Create Date: 2026-11-29
"""
import sqlalchemy as sa
from alembic import op

revision = "0007_rota_changes"
down_revision = "0006_handoff_watch"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rota_changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("team", sa.String(length=64), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("file_before", sa.String(length=64), nullable=False),
        sa.Column("file_after", sa.String(length=64), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rota_changes")),
        sa.UniqueConstraint("seq", name=op.f("uq_rota_changes_seq")),
    )


def downgrade() -> None:
    op.drop_table("rota_changes")
