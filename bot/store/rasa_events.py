"""Rasa's tracker store table (``events``), as the project's own code reads it.

Rasa 3.6's ``SQLTrackerStore`` creates and owns the table (``id``, ``sender_id`` with an
index, ``type_name``, ``timestamp``, ``intent_name``, ``action_name``, ``data`` as JSON
text), so it is declared here on its own ``MetaData``, never on the project's ``Base``:
Alembic must not create or change it. One declaration for every reader (the console's
transcripts, the held-risk watcher, the risk safety net, the report, the feedback survey's
quiet-period watcher), in the store so that no layer has to import another to read it.
"""

from __future__ import annotations

from sqlalchemy import Column, Float, Integer, MetaData, String, Table, Text

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
