"""The trail of every change to a console account: ``staff_account_changes``.

Who did what to whose account, and when: added, disabled, enabled, a password reset or
changed, a second factor set up or reset, a recovery code used. Never a password, a code or a
secret. Append-only and hash-chained like the rota's trail (each entry's hash covers the
previous one), so an entry changed, removed or put out of order shows; checked by
``python -m bot.duty verify-accounts``. ``append`` writes in the caller's transaction, so a
change and its entry commit together.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any, Optional

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from bot.store.models import utcnow
from bot.store.models.duty import StaffAccountChange

GENESIS = "0" * 64
RECENT_CHANGES = 20
CLI_ACTOR = "cli"  # python -m bot.duty (someone with the server's shell and database)
ACTION_LABELS = {
    "added": "added the account",
    "disabled": "disabled the account",
    "enabled": "enabled the account again",
    "password_reset": "reset the password (temporary password issued)",
    "password_changed": "chose a new password",
    "2fa_enrolled": "set up a second factor",
    "2fa_reset": "reset the second factor",
    "recovery_code_used": "signed in with a recovery code",
}


def _aware(at: dt.datetime) -> dt.datetime:
    return at if at.tzinfo else at.replace(tzinfo=dt.timezone.utc)  # SQLite: naive UTC


def entry_hash(prev: str, seq: int, at: dt.datetime, actor: str, action: str, username: str,
               data: dict) -> str:
    payload = json.dumps(
        {"prev": prev, "seq": seq,
         "at": _aware(at).astimezone(dt.timezone.utc).isoformat(timespec="microseconds"),
         "actor": actor, "action": action, "username": username, "data": data},
        sort_keys=True, separators=(",", ":"),
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def append(session: Session, actor: str, action: str, username: str,
           data: Optional[dict[str, Any]] = None) -> StaffAccountChange:
    """Add an entry to the trail in the caller's transaction (its change commits with it)."""
    data = dict(data or {})
    last = session.execute(
        select(StaffAccountChange).order_by(StaffAccountChange.seq.desc()).limit(1).with_for_update()
    ).scalar_one_or_none()
    seq = 1 if last is None else last.seq + 1
    prev = GENESIS if last is None else last.hash
    at = utcnow()
    entry = StaffAccountChange(seq=seq, at=at, actor=actor, action=action, username=username,
                               data=data, prev_hash=prev,
                               hash=entry_hash(prev, seq, at, actor, action, username, data))
    session.add(entry)
    session.flush()
    return entry


def recent_changes(engine: Engine, limit: int = RECENT_CHANGES) -> list[dict[str, Any]]:
    with Session(engine, future=True) as session:
        rows = session.execute(
            select(StaffAccountChange).order_by(StaffAccountChange.seq.desc()).limit(limit)
        ).scalars().all()
        return [{"at": _aware(r.at).isoformat(timespec="seconds"), "actor": r.actor,
                 "username": r.username, "action": r.action,
                 "summary": ACTION_LABELS.get(r.action, r.action)} for r in rows]


def verify(engine: Engine) -> Optional[int]:
    """The seq of the first broken entry of the accounts' trail, or None when it is intact."""
    prev, expected = GENESIS, 1
    with Session(engine, future=True) as session:
        for r in session.execute(select(StaffAccountChange).order_by(StaffAccountChange.seq)).scalars():
            computed = entry_hash(prev, r.seq, r.at, r.actor, r.action, r.username, r.data)
            if r.seq != expected or r.prev_hash != prev or r.hash != computed:
                return r.seq
            prev, expected = r.hash, expected + 1
    return None
