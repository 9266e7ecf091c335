"""sender blocks: the block list duty managers keep (issue 27, part 4)

A duty manager blocks a pseudonymous sender for a stated reason until a time; the block is
lifted early or runs out. Keyed by the conversation id, never a number; the audit entries go
on the trail of the escalation the block was made from (docs/console.md, "Blocking a sender").

Revision ID: 0015_sender_blocks
Revises: 0014_unmet_need
Create Date: 2026-12-08
"""
import sqlalchemy as sa
from alembic import op

revision = "0015_sender_blocks"
down_revision = "0014_unmet_need"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sender_blocks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.String(length=128), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("escalation_id", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lifted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lifted_by", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(["escalation_id"], ["escalations.id"],
                                name=op.f("fk_sender_blocks_escalation_id_escalations")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sender_blocks")),
    )
    op.create_index(op.f("ix_sender_blocks_conversation_id"), "sender_blocks",
                    ["conversation_id"], unique=False)
    op.create_index(op.f("ix_sender_blocks_escalation_id"), "sender_blocks",
                    ["escalation_id"], unique=False)
    op.create_index(op.f("ix_sender_blocks_expires_at"), "sender_blocks", ["expires_at"],
                    unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_sender_blocks_expires_at"), table_name="sender_blocks")
    op.drop_index(op.f("ix_sender_blocks_escalation_id"), table_name="sender_blocks")
    op.drop_index(op.f("ix_sender_blocks_conversation_id"), table_name="sender_blocks")
    op.drop_table("sender_blocks")
