"""Exports for incident reporting systems (issue 28, part 4): one escalation or a date range,
JSON Lines or CSV, every entry with its data and hashes, a checkpoint and a seal; anyone with
the key checks one with ``python -m bot.escalation verify FILE``. A corrupted file gets a
clear answer (which line, what is wrong) and changes nothing."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot import settings as settings_module
from bot.escalation.__main__ import main
from bot.escalation.engine import flag_for_staff, record_escalation
from bot.store.db import transaction
from bot.store.models import AuditCheckpoint, EscalationEvent

ROOT = Path(__file__).resolve().parents[2]


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    return main(list(argv), out=out), out.getvalue()


@pytest.fixture
def line(db_url):
    """Two escalations (2 and 3 entries); the second's data has a number and text."""
    a = record_escalation("conv-a", "urgent", ["self_harm"])
    record_escalation("conv-a", "imminent", ["overdose_taken"])
    b = record_escalation("conv-b", "support", [])
    flag_for_staff("conv-b", "delivery_failed", "SMS not delivered", {"code": 30003})
    flag_for_staff("conv-b", "turn_failed", "assistant failed, \"quoted\", a, b")
    return a, b


def export(tmp_path: Path, *scope: str, fmt: str = "jsonl") -> Path:
    out = tmp_path / f"export.{fmt}"
    code, said = run("export", *scope, "--format", fmt, "--out", str(out), "--by", "cli:ops")
    assert code == 0, said
    return out


def counts() -> tuple[int, int]:
    with transaction() as s:
        return (s.execute(select(func.count(EscalationEvent.id))).scalar_one(),
                s.execute(select(func.count(AuditCheckpoint.id))).scalar_one())


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_an_escalation_exported_verifies(line, tmp_path, fmt):
    _, b = line
    path = export(tmp_path, "--ref", b.ref.lower(), fmt=fmt)
    code, out = run("verify", str(path))
    assert code == 0, out
    assert f"export verifies: 3 entries across 1 escalations (escalation {b.ref})" in out
    # Every entry with its data and hashes, and the checkpoint the export wrote (audited: who).
    text = path.read_text()
    assert "30003" in text and "prev_hash" in text and "chain_version" in text
    with transaction() as s:
        cp = s.execute(select(AuditCheckpoint)).scalar_one()
    assert (cp.reason, cp.actor) == ("export", "cli:ops")
    assert cp.signature in text


def test_a_date_range_exports_every_escalation_opened_in_it(line, tmp_path):
    path = export(tmp_path, "--from", "2000-01-01", "--to", "2100-01-01")
    code, out = run("verify", str(path))
    assert code == 0 and "5 entries across 2 escalations" in out, out
    code, out = run("export", "--from", "2000-01-01", "--to", "2000-01-02",
                    "--out", str(tmp_path / "none.jsonl"))
    assert code == 1 and "nothing exported" in out
    assert not (tmp_path / "none.jsonl").exists()


def test_nothing_to_export_writes_nothing(line, tmp_path):
    before = counts()
    code, out = run("export", "--ref", "ENOPE", "--out", str(tmp_path / "x.jsonl"))
    assert code == 1 and "no escalation ENOPE" in out
    code, out = run("export", "--from", "2026-12-02", "--to", "2026-12-01",
                    "--out", str(tmp_path / "x.jsonl"))
    assert code == 1 and "--from must be before --to" in out
    code, out = run("export", "--from", "yesterday", "--to", "today",
                    "--out", str(tmp_path / "x.jsonl"))
    assert code == 1 and "days (2026-12-01) or ISO times" in out
    assert counts() == before and not (tmp_path / "x.jsonl").exists()


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines(keepends=True)


def _edit_event(line_text: str, **changes) -> str:
    record = json.loads(line_text)
    record.update(changes)
    return json.dumps(record, sort_keys=True) + "\n"


CORRUPTIONS = {
    # name: (how the lines change, what verify says)
    "an entry changed": (lambda ls: ls[:2] + [_edit_event(ls[2], reason="nothing")] + ls[3:],
                         "line 3: escalation"),
    "an entry's data changed": (lambda ls: ls[:3] + [_edit_event(ls[3], data={"code": 1})]
                                + ls[4:], "entry was changed"),
    "an entry removed": (lambda ls: ls[:2] + ls[3:], "entry missing"),
    "the last entry removed": (lambda ls: ls[:3] + ls[4:],
                               "the seal lists 3 entries, the file has 2"),
    "entries reordered": (lambda ls: ls[:2] + [ls[3], ls[2]] + ls[4:], "out of order"),
    "the seal removed": (lambda ls: ls[:-1], "does not end with its seal"),
    "cut off mid-line": (lambda ls: ls[:-1] + [ls[-1][:40]], "not valid JSON"),
    "the checkpoint changed": (lambda ls: ls[:-2] + [_edit_event(ls[-2], entries=1)] + ls[-1:],
                               "checkpoint was changed after it was signed"),
    "the seal changed": (lambda ls: ls[:-1] + [_edit_event(ls[-1], made_by="cli:nobody")],
                         "seal does not match"),
    "the header changed": (lambda ls: [_edit_event(ls[0], made_by="cli:nobody")] + ls[1:],
                           "differs from the sealed one"),
    "empty": (lambda ls: [], "the file is empty"),
    "not an export": (lambda ls: ["hello,world\n", "1,2\n"], "neither JSON Lines nor the CSV"),
}


@pytest.mark.parametrize("name", list(CORRUPTIONS))
def test_a_corrupted_export_gets_a_clear_answer_and_changes_nothing(line, tmp_path, name):
    _, b = line
    path = export(tmp_path, "--ref", b.ref)
    change, said = CORRUPTIONS[name]
    path.write_text("".join(change(_lines(path))))
    written = path.read_bytes()
    before = counts()
    code, out = run("verify", str(path))
    assert code == 1, out
    assert "export does NOT verify" in out and said in out, out
    assert "Traceback" not in out
    assert counts() == before and path.read_bytes() == written


def test_a_csv_export_edited_in_a_spreadsheet_is_found(line, tmp_path):
    _, b = line
    path = export(tmp_path, "--ref", b.ref, fmt="csv")
    rows = list(csv.reader(io.StringIO(path.read_text())))
    rows[3][8] = "nothing happened"  # the second entry's reason
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    path.write_text(buffer.getvalue())
    code, out = run("verify", str(path))
    assert code == 1 and "entry seq 2: entry was changed" in out, out
    path.write_bytes(b"\xff\xfe\x00garbage")
    code, out = run("verify", str(path))
    assert code == 1 and "not UTF-8 text" in out


def test_another_escalation_slipped_in_is_found(line, tmp_path):
    a, b = line
    one = _lines(export(tmp_path, "--ref", a.ref))
    other_dir = tmp_path / "other"
    other_dir.mkdir()
    two = _lines(export(other_dir, "--ref", b.ref))
    (tmp_path / "mixed.jsonl").write_text("".join(one[:-2] + two[1:-2] + one[-2:]))
    code, out = run("verify", str(tmp_path / "mixed.jsonl"))
    assert code == 1 and "was added: the seal does not list it" in out, out


def test_the_wrong_key_or_no_file_is_exit_2(line, tmp_path, monkeypatch):
    _, b = line
    path = export(tmp_path, "--ref", b.ref)
    code, out = run("verify", str(tmp_path / "missing.jsonl"))
    assert code == 2 and "could not check" in out
    monkeypatch.setenv("AUDIT_KEY", "the-incident-system-has-another-key")
    settings_module.reset()
    code, out = run("verify", str(path))
    assert code == 2 and "AUDIT_KEY given has id" in out, out


def test_anyone_with_the_key_verifies_without_the_database(line, tmp_path):
    _, b = line
    path = export(tmp_path, "--ref", b.ref, fmt="csv")
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(PYTHONPATH=str(ROOT), DATABASE_URL="postgresql+psycopg2://nobody@127.0.0.1:1/x")
    done = subprocess.run([sys.executable, "-m", "bot.escalation", "verify", str(path)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "export verifies: 3 entries" in done.stdout
