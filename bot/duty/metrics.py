"""``GET /metrics``: Prometheus text format (bearer token, or a duty manager's/admin's session).

What is measured, all computed from the database at scrape time (so every duty service
replica reports the same figures and nothing is lost on restart):

- ``line_escalations{level,status}``: escalations by level and status (gauge);
- ``line_escalation_ack_seconds``: time from an escalation opening to a human acknowledging
  it (histogram, every acknowledged escalation);
- ``line_messages{type}``: messages in Rasa's tracker store, ``user`` and ``bot`` (gauge: the
  store is the count's source of truth, so it is not a process-local counter);
- ``line_turn_latency_seconds``: from a person's message to the assistant's first reply, over
  the last 24 hours (histogram).

Only counts and durations: no references, conversation ids or text.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Sequence

from aiohttp import web
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from bot.duty import transcripts
from bot.duty.rundb import run_db
from bot.store.models import Escalation

ACK_BUCKETS = (15, 30, 60, 120, 300, 600, 1800, 3600)
TURN_BUCKETS = (0.25, 0.5, 1, 2, 4, 8, 15)
TURN_WINDOW_S = 24 * 3600
CONTENT_TYPE = "text/plain; version=0.0.4"


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)


def _histogram(name: str, help_text: str, values: Sequence[float], buckets: Sequence[float]) -> list[str]:
    lines = [f"# HELP {name} {help_text}", f"# TYPE {name} histogram"]
    for bound in buckets:
        lines.append(f'{name}_bucket{{le="{bound}"}} {sum(1 for v in values if v <= bound)}')
    lines.append(f'{name}_bucket{{le="+Inf"}} {len(values)}')
    lines.append(f"{name}_sum {sum(values):.3f}")
    lines.append(f"{name}_count {len(values)}")
    return lines


def collect(engine: Engine, now: float) -> str:
    lines: list[str] = []
    with Session(engine, future=True) as session:
        counts = session.execute(
            select(Escalation.level, Escalation.status, func.count(Escalation.id))
            .group_by(Escalation.level, Escalation.status)
            .order_by(Escalation.level, Escalation.status)
        ).all()
        acks = session.execute(
            select(Escalation.created_at, Escalation.acknowledged_at)
            .where(Escalation.acknowledged_at.is_not(None))
        ).all()
    lines += ["# HELP line_escalations Escalations by level and status.",
              "# TYPE line_escalations gauge"]
    lines += [f'line_escalations{{level="{lv}",status="{st}"}} {n}' for lv, st, n in counts]
    ack_seconds = [
        max(0.0, (_aware(acked) - _aware(created)).total_seconds()) for created, acked in acks
    ]
    lines += _histogram(
        "line_escalation_ack_seconds",
        "Seconds from an escalation opening to a human acknowledging it.",
        ack_seconds, ACK_BUCKETS,
    )

    ev = transcripts.RASA_EVENTS
    with engine.connect() as conn:
        if not transcripts.events_table_exists(conn):
            return "\n".join(lines) + "\n"
        by_type = dict(
            conn.execute(
                select(ev.c.type_name, func.count(ev.c.id))
                .where(ev.c.type_name.in_(("user", "bot")))
                .group_by(ev.c.type_name)
            ).all()
        )
        recent = conn.execute(
            select(ev.c.sender_id, ev.c.type_name, ev.c.timestamp)
            .where(ev.c.type_name.in_(("user", "bot")))
            .where(ev.c.timestamp >= now - TURN_WINDOW_S)
            .order_by(ev.c.sender_id, ev.c.id)
        ).all()
    lines += ["# HELP line_messages Messages in the tracker store, by sender type.",
              "# TYPE line_messages gauge"]
    lines += [f'line_messages{{type="{t}"}} {by_type.get(t, 0)}' for t in ("user", "bot")]
    # A turn: a person's message, then the assistant's first reply in that conversation.
    latencies: list[float] = []
    pending: dict[str, float] = {}
    for sender, kind, ts in recent:
        if ts is None:
            continue
        if kind == "user":
            pending[sender] = ts
        elif sender in pending:
            latencies.append(max(0.0, ts - pending.pop(sender)))
    lines += _histogram(
        "line_turn_latency_seconds",
        "Seconds from a person's message to the assistant's first reply (last 24 hours).",
        latencies, TURN_BUCKETS,
    )
    return "\n".join(lines) + "\n"


async def metrics(request: web.Request) -> web.Response:
    body = await run_db(request, collect, time.time())
    return web.Response(text=body, headers={"Content-Type": CONTENT_TYPE})
