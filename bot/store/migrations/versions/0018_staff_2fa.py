"""staff accounts: second factor, temporary passwords, recovery codes, the accounts' trail

Issue 28, part 5: managers add, disable, re-enable and reset accounts in the console; every
console account can have a TOTP second factor (enforced for managers). ``staff`` gains the
encrypted TOTP secret, the last step used (replay) and a must-change-password flag;
``staff_sessions`` gains the stage of a sign-in half done; recovery codes are kept hashed;
``staff_account_changes`` is the hash-chained trail of every change (never a password or code).

Revision ID: 0018_staff_2fa
Revises: 0017_audit_key
Create Date: 2026-12-08
"""
import sqlalchemy as sa
from alembic import op

revision = "0018_staff_2fa"
down_revision = "0017_audit_key"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("staff") as batch:
        # The server default fills the accounts already there: none holds a temporary password.
        batch.add_column(sa.Column("must_change_password", sa.Boolean(), server_default=sa.false(),
                                   nullable=False))
        batch.add_column(sa.Column("totp_secret", sa.String(length=255), nullable=True))
        batch.add_column(sa.Column("totp_enrolled_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("totp_last_step", sa.Integer(), nullable=True))
    with op.batch_alter_table("staff_sessions") as batch:
        # Sessions open at the upgrade are whole sign-ins.
        batch.add_column(sa.Column("stage", sa.String(length=16), server_default="ok",
                                   nullable=False))
        batch.add_column(sa.Column("pending_secret", sa.String(length=255), nullable=True))
    op.create_table(
        "staff_recovery_codes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("staff_id", sa.Integer(), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["staff_id"], ["staff.id"],
                                name=op.f("fk_staff_recovery_codes_staff_id_staff")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff_recovery_codes")),
    )
    op.create_index(op.f("ix_staff_recovery_codes_staff_id"), "staff_recovery_codes",
                    ["staff_id"], unique=False)
    op.create_table(
        "staff_account_changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=80), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff_account_changes")),
        sa.UniqueConstraint("seq", name=op.f("uq_staff_account_changes_seq")),
    )


def downgrade() -> None:
    op.drop_table("staff_account_changes")
    op.drop_index(op.f("ix_staff_recovery_codes_staff_id"), table_name="staff_recovery_codes")
    op.drop_table("staff_recovery_codes")
    with op.batch_alter_table("staff_sessions") as batch:
        batch.drop_column("pending_secret")
        batch.drop_column("stage")
    with op.batch_alter_table("staff") as batch:
        batch.drop_column("totp_last_step")
        batch.drop_column("totp_enrolled_at")
        batch.drop_column("totp_secret")
        batch.drop_column("must_change_password")
