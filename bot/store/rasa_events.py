"""Rasa's tracker store table (``events``), as the project's own code reads it.

Rasa 3.6's ``SQLTrackerStore`` creates and owns the table (``id``, ``sender_id`` with an
index, ``type_name``, ``timestamp``, ``intent_name``, ``action_name``, ``data`` as JSON
text), so it is declared here on its own ``MetaData``, never on the project's ``Base``:
Alembic must not create or change it. One declaration for every reader (the console's
transcripts, the held-risk watcher, the risk safety net, the report, the feedback survey's
quiet-period watcher), in the store so that no layer has to import another to read it.
"""

from __future__ import annotations

import json
from typing import Any, Iterable

from sqlalchemy import Column, Float, Integer, MetaData, String, Table, Text, select

RASA_EVENTS = Table(
    "events",
    MetaData(),
    Column("id", Integer, primary_key=True),
    Column("sender_id", String(255)),
    Column("type_name", String(255)),
    Column("timestamp", Float),
    Column("intent_name", String(255)),
    Column("action_name", String(255)),
    Column("data", Text),
)

#: how far back a conversation's slot events are read for their latest values
MAX_SLOT_ROWS = 2000


def latest_slots(db: Any, conversation_id: str, names: Iterable[str]) -> dict:
    """The latest value of each slot in ``names`` the conversation has set (absent: never).
    ``db``: a Session or a Connection; the caller checks that the table exists."""
    wanted = set(names)
    if not wanted:
        return {}
    rows = db.execute(
        select(RASA_EVENTS.c.data)
        .where(RASA_EVENTS.c.sender_id == conversation_id, RASA_EVENTS.c.type_name == "slot")
        .order_by(RASA_EVENTS.c.id.desc())
        .limit(MAX_SLOT_ROWS)
    ).scalars()
    found: dict = {}
    for data in rows:
        try:
            slot = json.loads(data or "{}")
        except ValueError:
            continue
        name = slot.get("name") if isinstance(slot, dict) else None
        if name in wanted and name not in found:
            found[name] = slot.get("value")
            if len(found) == len(wanted):
                break
    return found
