"""feedback wiring: the quiet-period watcher's claims, and the audit of free text read

Issue 26 (docs/feedback.md, "When the line asks"): the line now also offers the survey after
a quiet period, from the duty service; ``feedback_quiet`` holds, per conversation, which
quiet spell was handled and how, so two duty services, or one restarted, offer once. The
console shows free-text comments to the roles that read transcripts; every reading is a row
of ``feedback_comment_views``, hash-chained, written before the words are read.

Revision ID: 0013_feedback_wiring
Revises: 0012_feedback
Create Date: 2026-12-08
"""
import sqlalchemy as sa
from alembic import op

revision = "0013_feedback_wiring"
down_revision = "0012_feedback"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "feedback_quiet",
        sa.Column("conversation_id", sa.String(length=128), nullable=False),
        sa.Column("last_event_id", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(length=24), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("survey_id", sa.Integer(), nullable=True),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("conversation_id", name=op.f("pk_feedback_quiet")),
    )
    op.create_table(
        "feedback_comment_views",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feedback_comment_views")),
        sa.UniqueConstraint("seq", name=op.f("uq_feedback_comment_views_seq")),
    )


def downgrade() -> None:
    op.drop_table("feedback_comment_views")
    op.drop_table("feedback_quiet")
