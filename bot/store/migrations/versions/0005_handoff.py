"""handoff: alert jobs (escalation ladder timers); merges the directory, sms and staff heads

Revision ID: 0005_handoff
Revises: 0002_directory, 0003_sms, 0004_staff
Create Date: 2026-11-22
"""
import sqlalchemy as sa
from alembic import op

revision = "0005_handoff"
down_revision = ("0002_directory", "0003_sms", "0004_staff")
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "escalation_alerts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("escalation_id", sa.Integer(), nullable=False),
        sa.Column("level", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lease_owner", sa.String(length=64), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["escalation_id"], ["escalations.id"],
            name=op.f("fk_escalation_alerts_escalation_id_escalations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_escalation_alerts")),
        sa.UniqueConstraint(
            "escalation_id", "level", "kind", "step",
            name=op.f("uq_escalation_alerts_escalation_id"),
        ),
    )
    op.create_index(
        op.f("ix_escalation_alerts_escalation_id"), "escalation_alerts", ["escalation_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_escalation_alerts_status"), "escalation_alerts", ["status"], unique=False
    )
    op.create_index(
        op.f("ix_escalation_alerts_due_at"), "escalation_alerts", ["due_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_escalation_alerts_due_at"), table_name="escalation_alerts")
    op.drop_index(op.f("ix_escalation_alerts_status"), table_name="escalation_alerts")
    op.drop_index(op.f("ix_escalation_alerts_escalation_id"), table_name="escalation_alerts")
    op.drop_table("escalation_alerts")
