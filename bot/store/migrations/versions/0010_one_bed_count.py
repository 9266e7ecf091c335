"""one bed count per sanctuary house: directory_capacity folded into sanctuary_beds

Signposting read ``directory_capacity`` (by service key, trusted for 12 hours) and referrals
read ``sanctuary_beds`` (by house and night): two unlinked counts for one house. Now both read
``sanctuary_beds``, keyed by the house id the directory and the rota share. A count still in
``directory_capacity`` is carried over for the night it was set in (unless the house already
has one for that night), then the table is dropped.

Revision ID: 0010_one_bed_count
Revises: 0009_outbox_in_doubt
Create Date: 2026-12-07
"""
import datetime as dt
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from alembic import op

revision = "0010_one_bed_count"
down_revision = "0009_outbox_in_doubt"
branch_labels = None
depends_on = None

_LONDON = ZoneInfo("Europe/London")


def _night(at: dt.datetime) -> dt.date:
    # bot.directory.beds.tonight as it is today, copied so the migration never changes.
    if at.tzinfo is None:
        at = at.replace(tzinfo=dt.timezone.utc)
    return (at.astimezone(_LONDON) - dt.timedelta(hours=12)).date()


def upgrade() -> None:
    bind = op.get_bind()
    old = sa.table("directory_capacity", sa.column("service_key", sa.String),
                   sa.column("available", sa.Integer),
                   sa.column("updated_at", sa.DateTime(timezone=True)))
    beds = sa.table("sanctuary_beds", sa.column("house", sa.String), sa.column("night", sa.Date),
                    sa.column("free_beds", sa.Integer), sa.column("updated_by", sa.String),
                    sa.column("updated_at", sa.DateTime(timezone=True)))
    for key, available, updated_at in bind.execute(
        sa.select(old.c.service_key, old.c.available, old.c.updated_at)
    ).all():
        night = _night(updated_at)
        exists = bind.execute(
            sa.select(beds.c.house).where(beds.c.house == key, beds.c.night == night)
        ).first()
        if exists is None:
            bind.execute(beds.insert().values(house=key, night=night, free_beds=available,
                                              updated_by="directory", updated_at=updated_at))
    op.drop_table("directory_capacity")


def downgrade() -> None:
    op.create_table(
        "directory_capacity",
        sa.Column("service_key", sa.String(length=64), nullable=False),
        sa.Column("available", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("service_key", name=op.f("pk_directory_capacity")),
    )
