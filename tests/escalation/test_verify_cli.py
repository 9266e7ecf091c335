"""``python -m bot.escalation verify``: passes on an intact trail, names the first broken entry."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import delete, select, update

from bot.escalation.__main__ import main
from bot.escalation.engine import flag_for_staff, record_escalation
from bot.store.models import Escalation, EscalationEvent
from tests.helpers import tampering

ROOT = Path(__file__).resolve().parents[2]


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = main(list(argv), out=out)
    return code, out.getvalue()


def _three_escalations():
    a = record_escalation("conv-a", "support", [])
    b = record_escalation("conv-b", "urgent", ["self_harm"])
    record_escalation("conv-b", "imminent", ["overdose_taken"])
    flag_for_staff("conv-b", "delivery_failed", "SMS not delivered", {"code": 30003})
    c = record_escalation("conv-c", "urgent", ["risk_to_others"])
    return a, b, c


def test_intact_trail_passes(db_url):
    _three_escalations()
    code, out = run("verify")
    assert code == 0
    assert "intact: 5 entries across 3 escalations" in out


def test_empty_database_passes(db_url):
    assert run("verify") == (0, "audit trail intact: 0 entries across 0 escalations\n")


def test_a_changed_entry_is_named(db_url):
    _, b, _ = _three_escalations()
    with tampering() as s:
        s.execute(
            update(EscalationEvent)
            .where(EscalationEvent.escalation_id == b.id, EscalationEvent.seq == 2)
            .values(reason="nothing happened")
        )
    code, out = run("verify")
    assert code == 1
    assert f"escalation {b.ref} (id {b.id}), entry seq 2: entry was changed" in out
    assert "nothing happened" not in out  # where it broke, never what the entry says


def test_a_removed_entry_is_named(db_url):
    _, b, _ = _three_escalations()
    with tampering() as s:
        s.execute(
            delete(EscalationEvent).where(
                EscalationEvent.escalation_id == b.id, EscalationEvent.seq == 2
            )
        )
    code, out = run("verify")
    assert code == 1
    assert f"escalation {b.ref} (id {b.id}), entry seq 2: entry missing" in out


def test_a_whole_trail_removed_is_caught(db_url):
    a, _, _ = _three_escalations()
    with tampering() as s:
        s.execute(delete(EscalationEvent).where(EscalationEvent.escalation_id == a.id))
    code, out = run("verify")
    assert code == 1
    assert f"escalation {a.ref} (id {a.id}), entry seq 1: trail is empty" in out


def test_the_first_break_is_reported(db_url):
    a, b, _ = _three_escalations()
    with tampering() as s:
        for esc in (b, a):  # break the later one too: the report names the first by id
            s.execute(
                update(EscalationEvent)
                .where(EscalationEvent.escalation_id == esc.id, EscalationEvent.seq == 1)
                .values(actor="someone else")
            )
    code, out = run("verify")
    assert code == 1 and f"escalation {a.ref} " in out


def test_an_unreachable_database_is_exit_2(monkeypatch):
    from bot import settings as settings_module

    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg2://postgres@127.0.0.1:1/line")
    settings_module.reset()
    try:
        code, out = run("verify")
    finally:
        settings_module.reset()
    assert code == 2 and "could not check" in out


def test_module_entry_point(db_url):
    _, b, _ = _three_escalations()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DATABASE_URL": db_url}
    cmd = [sys.executable, "-m", "bot.escalation", "verify"]
    ok = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    with tampering() as s:
        ref = s.execute(select(Escalation.ref).where(Escalation.id == b.id)).scalar_one()
        s.execute(
            update(EscalationEvent)
            .where(EscalationEvent.escalation_id == b.id, EscalationEvent.seq == 3)
            .values(kind="resolved")
        )
    broken = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert broken.returncode == 1
    assert f"{ref} (id {b.id}), entry seq 3" in broken.stdout
