"""Exports of the audit trail that the recipient can verify, and the check of such a file.

An export is one escalation (``ref``) or every escalation opened in a date range, each with
its whole trail: every entry with its data, chain version, previous hash and hash, so each
trail verifies from its first entry. Writing one first writes a checkpoint (reason
``export``, who in ``actor``: the audit of the export itself), and takes only the entries
that checkpoint anchors, so the file and the database agree on a signed state. The file ends
with a seal: an HMAC with ``AUDIT_KEY`` over the export's scope, who and when, each
escalation's number of entries and last hash, and the checkpoint's signature. Removing,
adding, changing or reordering an entry, or an escalation, or cutting the file short, is
found by ``verify_file`` (``python -m bot.escalation verify FILE``) with the key.

Two formats with the same records (docs/audit.md, "Exports"):

- JSON Lines: one object a line, ``type`` ``export`` (first), ``event`` (one per entry),
  ``checkpoint``, ``seal`` (last).
- CSV: a header row, then one row per record with the same ``record`` types; the export
  header, the checkpoint and the seal are JSON in the ``data`` column.

Nothing here holds message text or phone numbers: the trail never does.
"""

from __future__ import annotations

import csv
import datetime as dt
import hmac
import io
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

from sqlalchemy import select

from bot.escalation import audit, checkpoints
from bot.store.db import transaction
from bot.store.models import Escalation, EscalationEvent, utcnow

FORMAT = "crisis-line-audit-export"
VERSION = 1
FORMATS = ("jsonl", "csv")
COLUMNS = ("record", "escalation_id", "escalation_ref", "id", "seq", "at", "kind", "actor",
           "reason", "data", "chain_version", "prev_hash", "hash")
EVENT_FIELDS = COLUMNS[1:]
INT_FIELDS = ("escalation_id", "id", "seq", "chain_version")
TEXT_FIELDS = ("escalation_ref", "at", "kind", "actor", "reason", "prev_hash", "hash")
SEALED = ("format", "version", "scope", "made_at", "made_by", "key_id", "escalations",
          "checkpoint_signature")


class ExportError(Exception):
    """Nothing to export (no such escalation, an empty or reversed range)."""


@dataclass(frozen=True)
class Scope:
    """One escalation by reference, or those opened in [start, end)."""

    ref: Optional[str] = None
    start: Optional[dt.datetime] = None
    end: Optional[dt.datetime] = None

    def as_json(self) -> Dict[str, Any]:
        if self.ref is not None:
            return {"ref": self.ref}
        return {"from": audit.canonical_time(self.start), "to": audit.canonical_time(self.end)}


def _event_json(ev: EscalationEvent, ref: str) -> Dict[str, Any]:
    return {"escalation_id": ev.escalation_id, "escalation_ref": ref, "id": ev.id,
            "seq": ev.seq, "at": audit.canonical_time(ev.at), "kind": ev.kind,
            "actor": ev.actor, "reason": ev.reason, "data": ev.data,
            "chain_version": ev.chain_version, "prev_hash": ev.prev_hash, "hash": ev.hash}


def _escalations(session, scope: Scope) -> List[Escalation]:
    query = select(Escalation).order_by(Escalation.id)
    if scope.ref is not None:
        query = query.where(Escalation.ref == scope.ref)
    else:
        query = query.where(Escalation.created_at >= scope.start,
                            Escalation.created_at < scope.end)
    return list(session.execute(query).scalars())


def collect(scope: Scope, actor: str, url: Optional[str] = None
            ) -> Tuple[Dict[str, Any], List[Dict[str, Any]], Dict[str, Any]]:
    """(header, events, checkpoint): a new checkpoint, then what it anchors in ``scope``.

    The checkpoint is committed first, in a short transaction of its own (its lock holds
    back new entries); the entries are read afterwards, only those at or below its head,
    so the lock is not held while a large export is read. ``ExportError`` when the scope
    has no escalation (then no checkpoint is written)."""
    if scope.ref is None and not (scope.start and scope.end and scope.start < scope.end):
        raise ExportError("the range is empty: --from must be before --to")
    with transaction(url) as session:
        if not _escalations(session, scope):
            what = f"escalation {scope.ref}" if scope.ref else "escalation opened in that range"
            raise ExportError(f"no {what}")
    cp = checkpoints.write_now("export", actor, url)
    events: List[Dict[str, Any]] = []
    with transaction(url) as session:
        found = _escalations(session, scope)
        refs = {esc.id: esc.ref for esc in found}
        ids = list(refs)
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            rows = session.execute(
                select(EscalationEvent)
                .where(EscalationEvent.escalation_id.in_(chunk),
                       EscalationEvent.id <= cp["head_id"])
                .order_by(EscalationEvent.escalation_id, EscalationEvent.seq)
            ).scalars()
            events.extend(_event_json(ev, refs[ev.escalation_id]) for ev in rows)
        meta = {esc.id: {"id": esc.id, "ref": esc.ref, "channel": esc.channel,
                         "created_at": audit.canonical_time(esc.created_at)} for esc in found}
    header = {"format": FORMAT, "version": VERSION, "scope": scope.as_json(),
              "made_at": audit.canonical_time(utcnow()), "made_by": actor,
              "key_id": cp["key_id"]}
    tally: Dict[int, int] = {}
    last: Dict[int, str] = {}
    for e in events:  # in seq order within each escalation
        tally[e["escalation_id"]] = tally.get(e["escalation_id"], 0) + 1
        last[e["escalation_id"]] = e["hash"]
    header["escalations"] = [
        {**meta[i], "entries": tally.get(i, 0), "last_hash": last.get(i, audit.GENESIS)}
        for i in ids
    ]
    return header, events, cp


def seal_of(header: Dict[str, Any], checkpoint_signature: str, key: audit.Key = None
            ) -> Dict[str, Any]:
    sealed = {**{k: header[k] for k in SEALED if k in header},
              "checkpoint_signature": checkpoint_signature}
    return {**sealed, "signature": audit.sign(key, sealed)}


def render(header: Dict[str, Any], events: List[Dict[str, Any]], cp: Dict[str, Any],
           fmt: str, key: audit.Key = None) -> str:
    """The export as text in ``fmt`` (jsonl or csv)."""
    seal = seal_of(header, cp["signature"], key)
    opening = {k: header[k] for k in ("format", "version", "scope", "made_at", "made_by",
                                      "key_id")}
    if fmt == "jsonl":
        lines = [{"type": "export", **opening}]
        lines += [{"type": "event", **e} for e in events]
        lines += [{"type": "checkpoint", **cp}, {"type": "seal", **seal}]
        return "".join(json.dumps(line, sort_keys=True) + "\n" for line in lines)
    if fmt != "csv":
        raise ValueError(f"format must be one of {', '.join(FORMATS)}")
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)

    def other(record: str, payload: Dict[str, Any]) -> List[str]:
        return [record] + [""] * 8 + [json.dumps(payload, sort_keys=True)] + [""] * 3

    writer.writerow(other("export", opening))
    for e in events:
        writer.writerow(["event"] + [json.dumps(e["data"], sort_keys=True) if name == "data"
                                     else e[name] for name in EVENT_FIELDS])
    writer.writerow(other("checkpoint", cp))
    writer.writerow(other("seal", seal))
    return out.getvalue()


def export(scope: Scope, fmt: str, dest: str, actor: str, url: Optional[str] = None
           ) -> Dict[str, Any]:
    """Write the export to ``dest`` (whole or not at all); what was written."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}")
    header, events, cp = collect(scope, actor, url)
    body = render(header, events, cp, fmt)
    target = Path(dest)
    # A temporary file beside it, then renamed: a failed export never leaves half a file.
    fd, tmp = tempfile.mkstemp(dir=target.parent or Path("."), prefix=f".{target.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(body)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return {"entries": len(events), "escalations": len(header["escalations"]),
            "checkpoint": cp["id"], "path": str(target)}


# --- verifying a file ------------------------------------------------------------------------


@dataclass
class FileReport:
    problem: Optional[str] = None
    line: Optional[int] = None
    entries: int = 0
    escalations: int = 0
    scope: Optional[Dict[str, Any]] = None
    checkpoint: Optional[Dict[str, Any]] = None
    wrong_key: bool = False

    @property
    def ok(self) -> bool:
        return self.problem is None


class _Bad(Exception):
    def __init__(self, line: Optional[int], problem: str, wrong_key: bool = False) -> None:
        super().__init__(problem)
        self.line = line
        self.problem = problem
        self.wrong_key = wrong_key


@dataclass
class _Entry:
    """An exported entry, with the attributes ``audit.verify_events`` reads."""

    escalation_id: int
    seq: int
    at: dt.datetime
    kind: str
    actor: str
    reason: str
    data: Dict[str, Any]
    chain_version: int
    prev_hash: str
    hash: str
    id: int
    escalation_ref: str
    line: int


def _records(text: str) -> Iterator[Tuple[int, str, Dict[str, Any]]]:
    """(line number, record type, fields) of a JSON Lines or CSV export."""
    if text.lstrip().startswith("{"):
        for number, raw in enumerate(text.splitlines(), start=1):
            if not raw.strip():
                continue
            try:
                record = json.loads(raw)
            except ValueError:
                raise _Bad(number, "not valid JSON (the file is corrupted or cut short)") from None
            if not isinstance(record, dict) or not isinstance(record.get("type"), str):
                raise _Bad(number, "not a record of an audit export (no type)")
            yield number, record.pop("type"), record
        return
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
        if header is None or tuple(header) != COLUMNS:
            raise _Bad(1, "neither JSON Lines nor the CSV of an audit export (its header row "
                          "is not " + ",".join(COLUMNS) + ")")
        for row in reader:
            number = reader.line_num
            if not row:
                continue
            if len(row) != len(COLUMNS):
                raise _Bad(number, f"has {len(row)} columns, not {len(COLUMNS)}")
            fields = dict(zip(COLUMNS, row, strict=True))
            record = fields.pop("record")
            try:
                if record == "event":
                    fields["data"] = json.loads(fields["data"])
                    for name in INT_FIELDS:
                        fields[name] = int(fields[name])
                    yield number, record, fields
                else:
                    payload = json.loads(fields["data"])
                    if not isinstance(payload, dict):
                        raise ValueError
                    yield number, record, payload
            except ValueError:
                raise _Bad(number, "a value that cannot be read (the file is corrupted)") from None
    except csv.Error:
        raise _Bad(reader.line_num, "not readable as CSV (the file is corrupted)") from None


def _entry(number: int, fields: Dict[str, Any]) -> _Entry:
    for name in INT_FIELDS:
        if not isinstance(fields.get(name), int) or isinstance(fields.get(name), bool):
            raise _Bad(number, f"{name} is not a whole number")
    for name in TEXT_FIELDS:
        if not isinstance(fields.get(name), str):
            raise _Bad(number, f"{name} is not text")
    if not isinstance(fields.get("data"), dict):
        raise _Bad(number, "data is not an object")
    try:
        at = dt.datetime.fromisoformat(fields["at"])
    except ValueError:
        raise _Bad(number, "at is not a time") from None
    return _Entry(at=at, line=number, **{k: fields[k] for k in EVENT_FIELDS if k != "at"})


def _check(text: str, key: bytes) -> FileReport:
    if not text.strip():
        raise _Bad(None, "the file is empty")
    records = list(_records(text))
    if not records:
        raise _Bad(None, "the file is empty")
    number, kind, opening = records[0]
    if kind != "export":
        raise _Bad(number, "the file does not begin with the export's header")
    if opening.get("format") != FORMAT or opening.get("version") != VERSION:
        raise _Bad(number, f"not a {FORMAT} version {VERSION} file")
    if opening.get("key_id") != audit.key_id(key):
        raise _Bad(number, f"sealed with the key whose id is {opening.get('key_id')}; the "
                           f"AUDIT_KEY given has id {audit.key_id(key)}", wrong_key=True)
    if len(records) < 3 or records[-1][1] != "seal":
        raise _Bad(records[-1][0], "the file does not end with its seal: it was cut short")
    seal_line, _, seal = records[-1]
    cp_line, cp_kind, cp = records[-2]
    if cp_kind != "checkpoint":
        raise _Bad(cp_line, "the checkpoint is missing before the seal")
    claimed = seal.get("signature")
    expected = audit.sign(key, {k: seal.get(k) for k in SEALED})
    if not isinstance(claimed, str) or not hmac.compare_digest(claimed, expected):
        raise _Bad(seal_line, "the seal does not match its contents: the file was changed")
    for name in ("format", "version", "scope", "made_at", "made_by", "key_id"):
        if seal.get(name) != opening.get(name):
            raise _Bad(number, f"the header's {name} differs from the sealed one")
    if not checkpoints.signature_ok(cp, key):
        raise _Bad(cp_line, "the checkpoint was changed after it was signed, or forged")
    if cp.get("signature") != seal.get("checkpoint_signature"):
        raise _Bad(cp_line, "the checkpoint is not the one the export was sealed with")
    # The entries, trail by trail, in the order written.
    trails: Dict[int, List[_Entry]] = {}
    order: List[int] = []
    for number, kind, fields in records[1:-2]:
        if kind != "event":
            raise _Bad(number, f"a {kind} record among the entries")
        entry = _entry(number, fields)
        if entry.escalation_id not in trails:
            trails[entry.escalation_id] = []
            order.append(entry.escalation_id)
        elif order[-1] != entry.escalation_id:
            raise _Bad(number, "entries of one escalation are not together: lines were moved")
        if entry.id > cp.get("head_id", 0):
            raise _Bad(number, "an entry the export's checkpoint does not anchor")
        trails[entry.escalation_id].append(entry)
    sealed = seal.get("escalations")
    if not isinstance(sealed, list):
        raise _Bad(seal_line, "the seal lists no escalations")
    by_id = {s.get("id"): s for s in sealed if isinstance(s, dict)}
    for escalation_id in order:
        trail = trails[escalation_id]
        for before, after in zip(trail, trail[1:], strict=False):
            if after.seq <= before.seq:
                raise _Bad(after.line, f"escalation {after.escalation_ref}: entries out of "
                                       "order: lines were moved")
        found = audit.verify_events(trail, key)
        if found is not None:
            at = next((e.line for e in trail if e.seq == found.seq), trail[-1].line)
            raise _Bad(at, f"escalation {trail[0].escalation_ref}, entry seq {found.seq}: "
                           f"{found.problem}")
        listed = by_id.get(escalation_id)
        if listed is None:
            raise _Bad(trail[0].line, f"escalation {trail[0].escalation_ref} was added: "
                                      "the seal does not list it")
        if any(e.escalation_ref != listed.get("ref") for e in trail):
            raise _Bad(trail[0].line, f"escalation {listed.get('ref')}: its reference was changed")
        if listed.get("entries") != len(trail) or listed.get("last_hash") != trail[-1].hash:
            raise _Bad(trail[-1].line, f"escalation {listed.get('ref')}: the seal lists "
                                       f"{listed.get('entries')} entries, the file has "
                                       f"{len(trail)}: entries were removed or added")
    missing = [s for s in sealed if isinstance(s, dict) and s.get("id") not in trails
               and s.get("entries")]
    if missing or len(by_id) != len(sealed):
        ref = missing[0].get("ref") if missing else "?"
        raise _Bad(seal_line, f"escalation {ref} is sealed but its entries are not in the file: "
                              "they were removed")
    return FileReport(entries=sum(len(t) for t in trails.values()), escalations=len(sealed),
                      scope=opening.get("scope"), checkpoint=cp)


def verify_file(path: str, key: audit.Key = None) -> FileReport:
    """Check an export file with ``key`` (default ``AUDIT_KEY``). Reads the file only: the
    database is never opened. ``OSError`` when the file cannot be read at all."""
    raw = Path(path).read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return FileReport(problem="not UTF-8 text: the file is corrupted or not an audit export")
    try:
        return _check(text, audit.key_bytes(key))
    except _Bad as bad:
        return FileReport(problem=bad.problem, line=bad.line, wrong_key=bad.wrong_key)


def parse_day_or_time(text: str, tz: dt.tzinfo) -> dt.datetime:
    """``2026-12-01`` (midnight in the line's time zone) or an ISO time (a bare one is the
    line's local time)."""
    value = dt.datetime.fromisoformat(text.strip())
    if value.tzinfo is None:
        value = value.replace(tzinfo=tz)
    # In UTC: SQLite keeps times as text without their zone, all of them UTC.
    return value.astimezone(dt.timezone.utc)
