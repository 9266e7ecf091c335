"""Two transactions appending to one escalation's trail at once (SQLite with WAL, and
PostgreSQL): the second waits for the first and follows its entry, instead of reading the
same last entry and failing on ``UNIQUE (escalation_id, seq)``."""

from __future__ import annotations

import threading

from sqlalchemy import event, select

from bot.escalation import audit
from bot.escalation.engine import record_escalation
from bot.store import db
from bot.store.models import Escalation, EscalationEvent

# Long enough for a second transaction that is not held back by a lock to read the trail.
READ_WAIT_S = 1.5


def _trail(escalation_id: int) -> list[tuple[int, str, str]]:
    with db.transaction() as s:
        rows = s.execute(
            select(EscalationEvent)
            .where(EscalationEvent.escalation_id == escalation_id)
            .order_by(EscalationEvent.seq)
        ).scalars()
        return [(e.seq, e.kind, e.actor) for e in rows]


def _run(fn) -> tuple[threading.Thread, list[BaseException]]:
    errors: list[BaseException] = []

    def target() -> None:
        try:
            fn()
        except BaseException as exc:  # noqa: BLE001  reported by the test
            errors.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread, errors


def test_an_append_that_overlaps_another_follows_its_entry(db_url):
    """The interleaving behind the console's 500: the first transaction has appended but not
    committed; the second starts its append then. Once the first commits, the second must
    write the next entry, not a second copy of the same seq."""
    rec = record_escalation("conv-race", "urgent", ["self_harm"], channel="sms")
    engine = db.get_engine(db_url)
    second_read_trail = threading.Event()
    second: dict[str, threading.Thread] = {}

    def note_read(_conn, _cursor, statement, _params, _context, _many) -> None:
        # The second transaction's read of the trail's last entry.
        if (threading.current_thread() is second.get("thread")
                and statement.lstrip().upper().startswith("SELECT")
                and "escalation_events" in statement):
            second_read_trail.set()

    def staff_append() -> None:
        with db.transaction() as s:
            esc = s.get(Escalation, rec.id)
            audit.append(s, esc, "transcript_viewed", "staff:ellen", reason="opened")

    event.listen(engine, "before_cursor_execute", note_read)
    try:
        with db.transaction() as s:
            esc = s.get(Escalation, rec.id)
            audit.append(s, esc, "re_alerted", "system:dispatcher", reason="ladder step")
            thread, errors = _run(staff_append)
            second["thread"] = thread
            # Without serialisation it reads the trail now (and misses the entry above);
            # with it, it waits for this commit before reading anything.
            second_read_trail.wait(READ_WAIT_S)
        thread.join(30)
    finally:
        event.remove(engine, "before_cursor_execute", note_read)
    assert not thread.is_alive()
    assert errors == []
    assert _trail(rec.id) == [
        (1, "created", "assistant"),
        (2, "re_alerted", "system:dispatcher"),
        (3, "transcript_viewed", "staff:ellen"),
    ]
    with db.transaction() as s:
        assert audit.verify_all(s) is None


def test_many_threads_appending_at_once_make_one_unbroken_chain(db_url):
    rec = record_escalation("conv-crowd", "imminent", ["overdose_taken"], channel="sms")
    threads_n, each = 6, 5
    start = threading.Barrier(threads_n)

    def appender(n: int):
        def run() -> None:
            start.wait(10)
            for i in range(each):
                with db.transaction() as s:
                    esc = s.get(Escalation, rec.id)
                    audit.append(s, esc, "staff_message", f"staff:s{n}", data={"i": i})
        return run

    started = [_run(appender(n)) for n in range(threads_n)]
    for thread, _ in started:
        thread.join(60)
    assert [e for _, errors in started for e in errors] == []
    trail = _trail(rec.id)
    assert [seq for seq, _, _ in trail] == list(range(1, threads_n * each + 2))
    written = sorted(actor for _, kind, actor in trail if kind == "staff_message")
    assert written == sorted(f"staff:s{n}" for n in range(threads_n) for _ in range(each))
    with db.transaction() as s:
        assert audit.verify_all(s) is None
