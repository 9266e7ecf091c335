"""feedback survey: who was asked when, each survey, the answers, and free text kept apart

Issue 26, item 1 (docs/feedback.md): after a conversation ends the line may ask two or three
short questions drawn from the criteria service users wrote. Answers are keyed by the
pseudonymous conversation id; what a person writes in their own words is in a table of its
own, which the public report never reads.

Revision ID: 0012_feedback
Revises: 0011_rota_versions
Create Date: 2026-12-07
"""
import sqlalchemy as sa
from alembic import op

revision = "0012_feedback"
down_revision = "0011_rota_versions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "feedback_people",
        sa.Column("person", sa.String(length=128), nullable=False),
        sa.Column("last_asked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("do_not_ask", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("do_not_ask_reason", sa.String(length=16), nullable=True),
        sa.Column("do_not_ask_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("person", name=op.f("pk_feedback_people")),
    )
    op.create_table(
        "feedback_surveys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.String(length=128), nullable=False),
        sa.Column("person", sa.String(length=128), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("trigger", sa.String(length=16), nullable=False),
        sa.Column("set_name", sa.String(length=48), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("retried", sa.Boolean(), nullable=False),
        sa.Column("offered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feedback_surveys")),
    )
    op.create_index(op.f("ix_feedback_surveys_conversation_id"), "feedback_surveys",
                    ["conversation_id"], unique=False)
    op.create_index(op.f("ix_feedback_surveys_person"), "feedback_surveys", ["person"], unique=False)
    op.create_index(op.f("ix_feedback_surveys_status"), "feedback_surveys", ["status"], unique=False)
    op.create_table(
        "feedback_answers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("survey_id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.String(length=128), nullable=False),
        sa.Column("set_name", sa.String(length=48), nullable=False),
        sa.Column("question_id", sa.String(length=48), nullable=False),
        sa.Column("criterion", sa.String(length=16), nullable=False),
        sa.Column("choice", sa.Integer(), nullable=True),
        sa.Column("value", sa.String(length=64), nullable=True),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["survey_id"], ["feedback_surveys.id"],
                                name=op.f("fk_feedback_answers_survey_id_feedback_surveys")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feedback_answers")),
        sa.UniqueConstraint("survey_id", "question_id", name=op.f("uq_feedback_answers_survey_id")),
    )
    op.create_index(op.f("ix_feedback_answers_answered_at"), "feedback_answers", ["answered_at"],
                    unique=False)
    op.create_index(op.f("ix_feedback_answers_conversation_id"), "feedback_answers",
                    ["conversation_id"], unique=False)
    op.create_index(op.f("ix_feedback_answers_criterion"), "feedback_answers", ["criterion"],
                    unique=False)
    op.create_index(op.f("ix_feedback_answers_survey_id"), "feedback_answers", ["survey_id"],
                    unique=False)
    op.create_table(
        "feedback_comments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("survey_id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.String(length=128), nullable=False),
        sa.Column("question_id", sa.String(length=48), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["survey_id"], ["feedback_surveys.id"],
                                name=op.f("fk_feedback_comments_survey_id_feedback_surveys")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feedback_comments")),
    )
    op.create_index(op.f("ix_feedback_comments_conversation_id"), "feedback_comments",
                    ["conversation_id"], unique=False)
    op.create_index(op.f("ix_feedback_comments_survey_id"), "feedback_comments", ["survey_id"],
                    unique=False)


def downgrade() -> None:
    op.drop_table("feedback_comments")
    op.drop_table("feedback_answers")
    op.drop_table("feedback_surveys")
    op.drop_table("feedback_people")
