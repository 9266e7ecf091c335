"""handoff: which escalation each staff SMS was for; the held-conversation risk watcher's cursor

Revision ID: 0006_handoff_watch
Revises: 0005_handoff
Create Date: 2026-11-29
"""
import sqlalchemy as sa
from alembic import op

revision = "0006_handoff_watch"
down_revision = "0005_handoff"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "escalation_alert_sms",
        sa.Column("outbox_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("escalation_id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=True),
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.Column("staff_id", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("failed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["escalation_id"], ["escalations.id"],
            name=op.f("fk_escalation_alert_sms_escalation_id_escalations"),
        ),
        sa.ForeignKeyConstraint(
            ["outbox_id"], ["sms_outbox.id"],
            name=op.f("fk_escalation_alert_sms_outbox_id_sms_outbox"),
        ),
        sa.PrimaryKeyConstraint("outbox_id", name=op.f("pk_escalation_alert_sms")),
    )
    op.create_index(
        op.f("ix_escalation_alert_sms_escalation_id"), "escalation_alert_sms", ["escalation_id"],
        unique=False,
    )
    op.create_table(
        "escalation_watch",
        sa.Column("escalation_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("last_event_id", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["escalation_id"], ["escalations.id"],
            name=op.f("fk_escalation_watch_escalation_id_escalations"),
        ),
        sa.PrimaryKeyConstraint("escalation_id", name=op.f("pk_escalation_watch")),
    )


def downgrade() -> None:
    op.drop_table("escalation_watch")
    op.drop_index(op.f("ix_escalation_alert_sms_escalation_id"), table_name="escalation_alert_sms")
    op.drop_table("escalation_alert_sms")
