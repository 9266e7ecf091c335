"""sms outbox: when a part was first claimed, and whether an earlier post may have reached Twilio

Revision ID: 0009_outbox_in_doubt
Revises: 0008_risk_net
Create Date: 2026-12-06
"""
import sqlalchemy as sa
from alembic import op

revision = "0009_outbox_in_doubt"
down_revision = "0008_risk_net"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sms_outbox") as batch:
        batch.add_column(sa.Column("first_attempt_at", sa.DateTime(timezone=True), nullable=True))
        # The server default fills the rows already there (none of them is in doubt yet).
        batch.add_column(
            sa.Column("in_doubt", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
    # Parts still waiting when the line was stopped for the upgrade: their earlier posts were
    # made before anything was recorded, so look from when the row was written (never later
    # than its first post), and treat a last post that timed out or broke as in doubt. Rows
    # left "sending" become in doubt when their lease is reclaimed.
    outbox = sa.table(
        "sms_outbox",
        sa.column("status", sa.String), sa.column("attempts", sa.Integer),
        sa.column("error_code", sa.String), sa.column("created_at", sa.DateTime(timezone=True)),
        sa.column("first_attempt_at", sa.DateTime(timezone=True)),
        sa.column("in_doubt", sa.Boolean),
    )
    unfinished = outbox.c.status.in_(("pending", "sending"))
    op.execute(
        outbox.update()
        .where(unfinished, sa.or_(outbox.c.attempts > 0, outbox.c.status == "sending"))
        .values(first_attempt_at=outbox.c.created_at)
    )
    op.execute(
        outbox.update()
        .where(unfinished, outbox.c.error_code.in_(("timeout", "network")))
        .values(in_doubt=True)
    )


def downgrade() -> None:
    with op.batch_alter_table("sms_outbox") as batch:
        batch.drop_column("in_doubt")
        batch.drop_column("first_attempt_at")
