"""the rota in the database: every version of the whole rota, with who, when and why

The rota was a YAML file that the console rewrote in place; a read-only install (the shipped
systemd unit) could not be edited, and two duty services could disagree. Now each version is
a row, the current rota is the highest version, and the file is only imported or exported.
An existing install's file is imported on first use (``bot/escalation/rota_store.py``).

Revision ID: 0011_rota_versions
Revises: 0010_one_bed_count
Create Date: 2026-12-07
"""
import sqlalchemy as sa
from alembic import op

revision = "0011_rota_versions"
down_revision = "0010_one_bed_count"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rota_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rota_versions")),
        sa.UniqueConstraint("version", name=op.f("uq_rota_versions_version")),
    )


def downgrade() -> None:
    op.drop_table("rota_versions")
