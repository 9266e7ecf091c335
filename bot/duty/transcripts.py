"""Read a conversation's transcript from Rasa's tracker store (its ``events`` table).

Why the table rather than Rasa's HTTP API (``GET /conversations/{id}/tracker``):

- the duty console must work while the Rasa server is down or restarting (that is when staff
  need the story most), and the tracker store is the same database the duty service already
  uses, read-only;
- it needs no ``RASA_AUTH_TOKEN`` in the duty service, and no conversation id crosses the
  network;
- we read only the rows we show (user and bot messages), not the whole tracker with slots.

The cost is coupling to Rasa 3.6's ``SQLTrackerStore`` schema (``events``: ``id``,
``sender_id``, ``type_name``, ``timestamp``, ``data`` as JSON text). The table is declared
once, in ``bot/store/rasa_events.py``, on its own ``MetaData``: Rasa owns it, Alembic must not.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Optional

from sqlalchemy import inspect, select
from sqlalchemy.engine import Connection

from bot.store.rasa_events import RASA_EVENTS, latest_slots


# A long crisis conversation is a few hundred messages; beyond this the page says it is cut.
MAX_MESSAGES = 500


@dataclass(frozen=True)
class Message:
    at: str  # ISO 8601 UTC
    who: str  # "person", "assistant", "staff"
    text: str
    risk: Optional[str] = None  # the risk guard's level on a person's message
    staff_name: Optional[str] = None
    # The tracker row's id: the console's live transcript asks for messages after the last
    # one it shows. Rows of one conversation are written under Rasa's per-conversation lock,
    # so their ids grow in the order the messages happened.
    seq: int = 0
    # Seconds since the epoch, as stored: compared with audit times (a refusal to share).
    ts: float = 0.0


def _iso(ts: Optional[float]) -> str:
    if ts is None:
        return ""
    moment = dt.datetime.fromtimestamp(ts, tz=dt.timezone.utc)
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def events_table_exists(conn: Connection) -> bool:
    return inspect(conn).has_table("events")


def _select(sender_id: str):
    return (
        select(RASA_EVENTS.c.id, RASA_EVENTS.c.type_name, RASA_EVENTS.c.timestamp, RASA_EVENTS.c.data)
        .where(RASA_EVENTS.c.sender_id == sender_id)
        .where(RASA_EVENTS.c.type_name.in_(("user", "bot")))
    )


def _message(row) -> Optional[Message]:
    try:
        data = json.loads(row.data or "{}")
    except ValueError:
        data = {}
    text = data.get("text") or ""
    at, ts = _iso(row.timestamp), float(row.timestamp or 0.0)
    if row.type_name == "user":
        risk = ((data.get("parse_data") or {}).get("risk") or {}).get("level")
        return Message(at, "person", text, risk=risk, seq=row.id, ts=ts)
    # Staff replies relayed by the takeover engine are bot events marked in metadata.
    meta = data.get("metadata") or {}
    if meta.get("sender") == "staff":
        return Message(at, "staff", text, staff_name=meta.get("sender_name"), seq=row.id, ts=ts)
    return Message(at, "assistant", text, seq=row.id, ts=ts) if text else None


def read(conn: Connection, sender_id: str) -> tuple[list[Message], bool]:
    """The conversation's messages, oldest first, and whether older ones were left out."""
    if not events_table_exists(conn):
        return [], False
    rows = conn.execute(
        _select(sender_id).order_by(RASA_EVENTS.c.id.desc()).limit(MAX_MESSAGES + 1)
    ).all()
    cut = len(rows) > MAX_MESSAGES
    found = (_message(row) for row in reversed(rows[:MAX_MESSAGES]))
    return [m for m in found if m is not None], cut


def read_after(conn: Connection, sender_id: str, after: int) -> tuple[list[Message], int]:
    """Messages stored after tracker row ``after`` (the live transcript's cursor), oldest first.

    Returns the messages and the cursor for the next call (the last row read, or ``after``).
    At most ``MAX_MESSAGES`` come back, the oldest first, so a client that fell behind catches
    up over a few calls without a gap.
    """
    if not events_table_exists(conn):
        return [], after
    rows = conn.execute(
        _select(sender_id).where(RASA_EVENTS.c.id > after).order_by(RASA_EVENTS.c.id).limit(MAX_MESSAGES)
    ).all()
    found = (_message(row) for row in rows)
    return [m for m in found if m is not None], (rows[-1].id if rows else after)



# The conversation's memory of risk, kept by the Rasa server in these slots
# (bot/escalation/memory.py; the names are repeated here so the duty service does not load it).
RISK_SLOTS = ("risk_level", "risk_emergency")
# Slot rows read back at most: each turn writes a slot row only when a value changes.


def conversation_risk(conn: Connection, sender_id: str) -> Optional[dict]:
    """``{"level", "emergency"}`` from the conversation's latest risk slots, or None when the
    assistant never set them (or Rasa's table is not there)."""
    if not events_table_exists(conn):
        return None
    found = latest_slots(conn, sender_id, RISK_SLOTS)
    if not found.get("risk_level"):
        return None
    return {"level": found["risk_level"], "emergency": found.get("risk_emergency") is True}
