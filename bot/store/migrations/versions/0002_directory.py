"""service directory: places, services, needs and areas served, live capacity

Revision ID: 0002_directory
Revises: 0001_escalations
Create Date: 2026-11-22
"""
import sqlalchemy as sa
from alembic import op

revision = "0002_directory"
down_revision = "0001_escalations"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "directory_loads",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("loaded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(length=500), nullable=False),
        sa.Column("checksum", sa.String(length=64), nullable=False),
        sa.Column("services", sa.Integer(), nullable=False),
        sa.Column("places", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_directory_loads")),
    )
    op.create_table(
        "directory_places",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_directory_places")),
        sa.UniqueConstraint("key", name=op.f("uq_directory_places_key")),
    )
    op.create_table(
        "directory_services",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("national", sa.Boolean(), nullable=False),
        sa.Column("example", sa.Boolean(), nullable=False),
        sa.Column("source", sa.String(length=255), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_directory_services")),
        sa.UniqueConstraint("key", name=op.f("uq_directory_services_key")),
    )
    for table, column, length in (
        ("directory_service_needs", "need", 32),
        ("directory_service_areas", "area", 64),
    ):
        op.create_table(
            table,
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("service_id", sa.Integer(), nullable=False),
            sa.Column(column, sa.String(length=length), nullable=False),
            sa.ForeignKeyConstraint(
                ["service_id"],
                ["directory_services.id"],
                name=op.f(f"fk_{table}_service_id_directory_services"),
                ondelete="CASCADE",
            ),
            sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{table}")),
            sa.UniqueConstraint("service_id", column, name=op.f(f"uq_{table}_service_id")),
        )
        op.create_index(op.f(f"ix_{table}_service_id"), table, ["service_id"], unique=False)
        op.create_index(op.f(f"ix_{table}_{column}"), table, [column], unique=False)
    op.create_table(
        "directory_capacity",
        sa.Column("service_key", sa.String(length=64), nullable=False),
        sa.Column("available", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("service_key", name=op.f("pk_directory_capacity")),
    )


def downgrade() -> None:
    op.drop_table("directory_capacity")
    for table, column in (("directory_service_areas", "area"), ("directory_service_needs", "need")):
        op.drop_index(op.f(f"ix_{table}_{column}"), table_name=table)
        op.drop_index(op.f(f"ix_{table}_service_id"), table_name=table)
        op.drop_table(table)
    op.drop_table("directory_services")
    op.drop_table("directory_places")
    op.drop_table("directory_loads")
