"""unmet need: a row per request the directory could not meet (need and place only)

Issue 26, the report's "unmet need": when the directory finds nothing for a person's need,
serving their place, open now, the line keeps the need, the place as the directory's key
(never what the person typed) and when; the pseudonymous conversation id only to count a
request asked twice in one conversation once (docs/report.md).

Revision ID: 0014_unmet_need
Revises: 0013_feedback_wiring
Create Date: 2026-12-08
"""
import sqlalchemy as sa
from alembic import op

revision = "0014_unmet_need"
down_revision = "0013_feedback_wiring"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "unmet_needs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.String(length=128), nullable=False),
        sa.Column("need", sa.String(length=32), nullable=False),
        sa.Column("place", sa.String(length=64), nullable=False),
        sa.Column("asked_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_unmet_needs")),
    )
    op.create_index(op.f("ix_unmet_needs_asked_at"), "unmet_needs", ["asked_at"], unique=False)
    op.create_index(op.f("ix_unmet_needs_conversation_id"), "unmet_needs", ["conversation_id"],
                    unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_unmet_needs_conversation_id"), table_name="unmet_needs")
    op.drop_index(op.f("ix_unmet_needs_asked_at"), table_name="unmet_needs")
    op.drop_table("unmet_needs")
