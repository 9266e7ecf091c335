"""audit key: keyed hashes on the escalation trail, signed checkpoints, append-only tables

Issue 28, part 4 (docs/audit.md). ``escalation_events.chain_version`` says how an entry's
hash was made: the entries already written keep their SHA-256 hash (version 1, set here) and
stay verifiable as they are; every entry written from now on is an HMAC with ``AUDIT_KEY``
(version 2). No server default is left behind: a process of the old version still writing
after the upgrade is refused instead of adding unkeyed entries. ``audit_checkpoints`` holds
the signed anchors of the trail's head; the first one the upgraded line writes also seals
the version 1 entries (their count and a digest of their hashes).

On PostgreSQL both tables refuse UPDATE, DELETE and TRUNCATE with a trigger, so no
statement of the application (or a mistaken one typed by hand) can rewrite the trail; the
owner of the tables could still drop the trigger, which the keyed hashes and the
checkpoints are there to catch. SQLite has no such guard (it is for development).

Revision ID: 0017_audit_key
Revises: 0016_crisis_plan
Create Date: 2026-12-08
"""
import sqlalchemy as sa
from alembic import op

revision = "0017_audit_key"
down_revision = "0016_crisis_plan"
branch_labels = None
depends_on = None

APPEND_ONLY = ("escalation_events", "audit_checkpoints")

REFUSE = """
CREATE OR REPLACE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'the escalation audit trail is never changed (docs/audit.md)';
END
$$
"""


def upgrade() -> None:
    with op.batch_alter_table("escalation_events") as batch:
        batch.add_column(sa.Column("chain_version", sa.Integer(), nullable=False,
                                   server_default="1"))
    with op.batch_alter_table("escalation_events") as batch:
        batch.alter_column("chain_version", server_default=None, existing_type=sa.Integer(),
                           existing_nullable=False)
    op.create_table(
        "audit_checkpoints",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.String(length=16), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("head_id", sa.Integer(), nullable=False),
        sa.Column("head_hash", sa.String(length=64), nullable=False),
        sa.Column("entries", sa.Integer(), nullable=False),
        sa.Column("legacy_upto", sa.Integer(), nullable=False),
        sa.Column("legacy_entries", sa.Integer(), nullable=False),
        sa.Column("legacy_digest", sa.String(length=64), nullable=False),
        sa.Column("key_id", sa.String(length=16), nullable=False),
        sa.Column("prev_signature", sa.String(length=64), nullable=False),
        sa.Column("signature", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_checkpoints")),
        sa.UniqueConstraint("prev_signature", name=op.f("uq_audit_checkpoints_prev_signature")),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(REFUSE)
        for table in APPEND_ONLY:
            op.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION audit_append_only()"
            )
            op.execute(
                f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only()"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in APPEND_ONLY:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}")
            op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
        op.execute("DROP FUNCTION IF EXISTS audit_append_only()")
    op.drop_table("audit_checkpoints")
    # Keyed entries stay in the table but can no longer be told apart: a downgrade loses
    # the ability to verify them (docs/audit.md).
    with op.batch_alter_table("escalation_events") as batch:
        batch.drop_column("chain_version")
