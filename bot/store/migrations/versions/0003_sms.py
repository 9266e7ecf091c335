"""sms channel: contacts, inbox, outbox, opt-outs

Revision ID: 0003_sms
Revises: 0001_escalations
Create Date: 2026-11-22
"""
import sqlalchemy as sa
from alembic import op

revision = "0003_sms"
down_revision = "0001_escalations"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sms_contacts",
        sa.Column("pseudonym", sa.String(length=64), nullable=False),
        sa.Column("number_enc", sa.Text(), nullable=False),
        sa.Column("opted_out", sa.Boolean(), nullable=False),
        sa.Column("opted_out_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("pseudonym", name=op.f("pk_sms_contacts")),
    )
    op.create_table(
        "sms_inbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("message_sid", sa.String(length=64), nullable=False),
        sa.Column("pseudonym", sa.String(length=64), nullable=False),
        sa.Column("body", sa.Text(), nullable=True),
        sa.Column("num_media", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("risk_hint", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("lease_owner", sa.String(length=64), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("error", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sms_inbox")),
        sa.UniqueConstraint("message_sid", name=op.f("uq_sms_inbox_message_sid")),
    )
    op.create_index(op.f("ix_sms_inbox_pseudonym"), "sms_inbox", ["pseudonym"], unique=False)
    op.create_index(op.f("ix_sms_inbox_status"), "sms_inbox", ["status"], unique=False)
    op.create_table(
        "sms_outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("pseudonym", sa.String(length=64), nullable=False),
        sa.Column("inbox_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("part", sa.Integer(), nullable=False),
        sa.Column("parts", sa.Integer(), nullable=False),
        sa.Column("encoding", sa.String(length=8), nullable=False),
        sa.Column("segments", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lease_owner", sa.String(length=64), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("twilio_sid", sa.String(length=64), nullable=True),
        sa.Column("delivery_status", sa.String(length=24), nullable=True),
        sa.Column("error_code", sa.String(length=32), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sms_outbox")),
        sa.UniqueConstraint("twilio_sid", name=op.f("uq_sms_outbox_twilio_sid")),
    )
    op.create_index(op.f("ix_sms_outbox_pseudonym"), "sms_outbox", ["pseudonym"], unique=False)
    op.create_index(op.f("ix_sms_outbox_inbox_id"), "sms_outbox", ["inbox_id"], unique=False)
    op.create_index(op.f("ix_sms_outbox_status"), "sms_outbox", ["status"], unique=False)
    op.create_table(
        "sms_opt_outs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("pseudonym", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=8), nullable=False),
        sa.Column("keyword", sa.String(length=16), nullable=False),
        sa.Column("message_sid", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("staff_flagged", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sms_opt_outs")),
    )
    op.create_index(op.f("ix_sms_opt_outs_pseudonym"), "sms_opt_outs", ["pseudonym"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_sms_opt_outs_pseudonym"), table_name="sms_opt_outs")
    op.drop_table("sms_opt_outs")
    op.drop_index(op.f("ix_sms_outbox_status"), table_name="sms_outbox")
    op.drop_index(op.f("ix_sms_outbox_inbox_id"), table_name="sms_outbox")
    op.drop_index(op.f("ix_sms_outbox_pseudonym"), table_name="sms_outbox")
    op.drop_table("sms_outbox")
    op.drop_index(op.f("ix_sms_inbox_status"), table_name="sms_inbox")
    op.drop_index(op.f("ix_sms_inbox_pseudonym"), table_name="sms_inbox")
    op.drop_table("sms_inbox")
    op.drop_table("sms_contacts")
