"""risk safety net: the duty service's cursor over Rasa's events table

Revision ID: 0008_risk_net
Revises: 0007_rota_changes
Create Date: 2026-11-29
"""
import sqlalchemy as sa
from alembic import op

revision = "0008_risk_net"
down_revision = "0007_rota_changes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "risk_net_cursor",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("last_event_id", sa.Integer(), nullable=False),
        sa.Column("gap_at", sa.Integer(), nullable=True),
        sa.Column("gap_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_risk_net_cursor")),
    )


def downgrade() -> None:
    op.drop_table("risk_net_cursor")
