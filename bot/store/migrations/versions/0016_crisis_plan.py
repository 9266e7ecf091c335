"""crisis plan: a person's own plan, encrypted, and where building it has got to

Issue 27, part 1: a person builds their own crisis plan in the conversation, gets it back
with PLAN, and may let the person who joins a handoff see it. The words are stored only as
Fernet ciphertext under PLAN_KEY (kept out of the database); ``share`` is their answer to
sharing it (NULL: not asked). ``plan_sessions`` holds the step a conversation is on, no words
(docs/plan.md).

Revision ID: 0016_crisis_plan
Revises: 0015_sender_blocks
Create Date: 2026-12-08
"""
import sqlalchemy as sa
from alembic import op

revision = "0016_crisis_plan"
down_revision = "0015_sender_blocks"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "crisis_plans",
        sa.Column("conversation_id", sa.String(length=128), nullable=False),
        sa.Column("ciphertext", sa.Text(), nullable=False),
        sa.Column("share", sa.Boolean(), nullable=True),
        sa.Column("share_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("conversation_id", name=op.f("pk_crisis_plans")),
    )
    op.create_table(
        "plan_sessions",
        sa.Column("conversation_id", sa.String(length=128), nullable=False),
        sa.Column("stage", sa.String(length=16), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("editing", sa.Boolean(), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("conversation_id", name=op.f("pk_plan_sessions")),
    )
    op.create_index(op.f("ix_plan_sessions_updated_at"), "plan_sessions", ["updated_at"],
                    unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_plan_sessions_updated_at"), table_name="plan_sessions")
    op.drop_table("plan_sessions")
    op.drop_table("crisis_plans")
