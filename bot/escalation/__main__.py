"""Escalation commands.

The audit trail (docs/audit.md):

- ``verify`` checks every escalation's audit chain in DATABASE_URL with ``AUDIT_KEY``, and
  every signed checkpoint against the trail (entries removed from the end, a checkpoint
  changed or removed). ``verify FILE`` checks an export instead, and never opens the
  database. Exit 0 when everything verifies, 1 naming the first problem (for the database:
  escalation reference, seq, problem; for a file: its line), 2 when the check could not run
  (database unreachable, file unreadable, or ``AUDIT_KEY`` is not the key the trail or the
  file was signed with). The output never contains reasons, data or anything else from the
  entries, only where the chain breaks.
- ``export (--ref REF | --from DAY --to DAY) [--format jsonl|csv] --out FILE [--by NAME]``
  writes one escalation, or every escalation opened in [from, to) (days in the line's time
  zone, or ISO times), with every entry's data and hashes, a new checkpoint and a seal.
  Exit 0, 1 when there is nothing to export, 2 when the database cannot be reached.
- ``checkpoint [--by NAME]`` signs a checkpoint of the trail now (the duty service writes one
  when it starts and hourly).

``python -m bot.escalation rota [--file F | --db] [--at ISO-TIME]`` validates the rota and
prints who is on call (names and ids, never phone numbers). Exit 0, or 1 listing every
problem. ``--file`` (default ``data/rota/rota.yml``) reads a YAML file; ``--db`` reads the
database's current rota, which is what the running line uses.

``python -m bot.escalation rota check [--file F] [--days N] [--from ISO-TIME]`` checks that
the rota covers the line's hours (``bot/escalation/coverage.py``): for the next N (400) days,
whenever ``data/hours.yml`` says the out-of-hours team is on duty, every tier of every ladder
has someone on call. Prints each gap (local time range, tier, ladders); exit 0 when there is
none, 1 when there is a gap or the rota is invalid. It also checks that the rota's sanctuary
houses are the directory's (``data/services/``), one id per house. ``--db`` as above.

The rota the line runs on is in the database (``bot/escalation/rota_store.py``), each version
kept with who, when and why:

- ``rota import [FILE] [--reason TEXT] [--by NAME] [--if-empty]`` validates a YAML file
  (default ``ROTA_FILE``) and makes it the current rota, a new version; an import over a rota
  in use goes on the rota's trail. ``--if-empty`` imports only into a database with no rota
  (``make setup`` uses it: it never overwrites the rota staff have edited). Exit 0 (also when
  nothing changed), 1 listing every problem (file, entry and field), 2 when the database
  cannot be reached.
- ``rota export [--version N] [--out FILE]`` writes the current (or a given) version's YAML,
  comments included, as staff last saved it: edit it and import it to change staff or
  numbers. Exit 1 when there is no rota yet.
- ``rota versions [--limit N]`` lists the latest versions: number, when, who, summary.
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TextIO

from sqlalchemy import exc as sa_exc
from sqlalchemy import select

from bot.escalation import audit, checkpoints, rota
from bot.escalation.engine import LEVELS
from bot.store.db import transaction
from bot.store.models import Escalation, EscalationEvent


@dataclass(frozen=True)
class Report:
    escalations: int
    entries: int
    broken_ref: str | None = None
    broken_id: int | None = None
    broken_seq: int | None = None
    problem: str | None = None
    anchoring: checkpoints.Anchoring | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None


def verify(url: str | None = None, key: audit.Key = None) -> Report:
    """Walk every chain, oldest escalation first, and stop at the first break; then check the
    checkpoints. Raises ``checkpoints.WrongKey`` when ``key`` (default ``AUDIT_KEY``) is not
    the key the first checkpoint was signed with."""
    key = audit.key_bytes(key)
    with transaction(url) as session:
        checkpoints.key_check(session, key)
        escalations = session.execute(
            select(Escalation.id, Escalation.ref).order_by(Escalation.id)
        ).all()
        # One ordered pass over all entries rather than a query per escalation; yield_per
        # keeps memory flat on a large trail.
        events = session.execute(
            select(EscalationEvent)
            .order_by(EscalationEvent.escalation_id, EscalationEvent.seq)
            .execution_options(yield_per=1000)
        ).scalars()
        by_escalation = itertools.groupby(events, key=lambda ev: ev.escalation_id)
        pending = next(by_escalation, None)
        entries = 0
        for escalation_id, ref in escalations:
            # Every escalation is opened with a "created" entry, so an empty trail means the
            # whole trail was removed; audit.verify_events alone would accept it.
            if pending is None or pending[0] != escalation_id:
                return Report(
                    len(escalations), entries, ref, escalation_id, 1,
                    "trail is empty: every entry is missing",
                )
            trail = list(pending[1])
            entries += len(trail)
            found = audit.verify_events(trail, key)
            if found is not None:
                return Report(
                    len(escalations), entries, ref, escalation_id, found.seq, found.problem
                )
            pending = next(by_escalation, None)
        anchoring = checkpoints.check(session, key)
        return Report(len(escalations), entries, problem=anchoring.problem, anchoring=anchoring)


def _verify(out: TextIO, source: str | None = None) -> int:
    if source is not None:
        return _verify_file(source, out)
    try:
        report = verify()
    except checkpoints.WrongKey as exc:
        print(f"could not check the audit trail: {exc}; set the line's AUDIT_KEY", file=out)
        return 2
    except sa_exc.SQLAlchemyError as exc:
        cause = getattr(exc, "orig", None) or exc
        print(f"could not check the audit trail: database error ({type(cause).__name__})", file=out)
        return 2
    anchoring = report.anchoring
    if report.ok:
        print(
            f"audit trail intact: {report.entries} entries across {report.escalations} escalations",
            file=out,
        )
        if anchoring is not None and anchoring.latest_id is not None:
            print(f"checkpoints intact: {anchoring.checkpoints}; the latest, #{anchoring.latest_id} "
                  f"at {anchoring.latest_at[:19]}Z, anchors {anchoring.anchored} entries; "
                  f"{anchoring.after} written since", file=out)
        elif report.entries:
            print("no checkpoint yet: entries removed from the end of a trail could not be "
                  "told (the duty service writes one when it starts and hourly)", file=out)
        for note in anchoring.notes if anchoring is not None else ():
            print(f"note: {note}", file=out)
        return 0
    if report.broken_ref is None:
        print(f"audit trail BROKEN: {report.problem}", file=out)
        return 1
    print(
        f"audit trail BROKEN at escalation {report.broken_ref} (id {report.broken_id}), "
        f"entry seq {report.broken_seq}: {report.problem}",
        file=out,
    )
    return 1


def _verify_file(path: str, out: TextIO) -> int:
    from bot.escalation import audit_export

    try:
        report = audit_export.verify_file(path)
    except OSError as exc:
        print(f"could not check {path}: {exc.strerror or type(exc).__name__}", file=out)
        return 2
    if report.ok:
        cp = report.checkpoint or {}
        print(f"{path}: export verifies: {report.entries} entries across {report.escalations} "
              f"escalations ({_scope_text(report.scope)}), anchored by checkpoint "
              f"#{cp.get('id')} of {str(cp.get('at'))[:19]}Z (key id {cp.get('key_id')})",
              file=out)
        return 0
    where = f"line {report.line}: " if report.line else ""
    if report.wrong_key:
        print(f"could not check {path}: {where}{report.problem}", file=out)
        return 2
    print(f"{path}: export does NOT verify: {where}{report.problem}", file=out)
    return 1


def _scope_text(scope: dict | None) -> str:
    scope = scope or {}
    if "ref" in scope:
        return f"escalation {scope['ref']}"
    return f"opened from {str(scope.get('from'))[:19]} to {str(scope.get('to'))[:19]}"


def _actor(by: str | None) -> str:
    import getpass

    return (by or f"cli:{getpass.getuser()}")[:64]


def _export(args: argparse.Namespace, out: TextIO) -> int:
    import zoneinfo

    from bot.escalation import audit_export
    from bot.settings import settings

    if bool(args.ref) == bool(args.from_ or args.to):
        print("export: give --ref, or --from and --to", file=out)
        return 1
    try:
        if args.ref:
            scope = audit_export.Scope(ref=args.ref.strip().upper())
        else:
            if not (args.from_ and args.to):
                print("export: give both --from and --to", file=out)
                return 1
            tz = zoneinfo.ZoneInfo(settings().tz_line)
            scope = audit_export.Scope(start=audit_export.parse_day_or_time(args.from_, tz),
                                       end=audit_export.parse_day_or_time(args.to, tz))
    except ValueError:
        print("export: --from and --to are days (2026-12-01) or ISO times", file=out)
        return 1
    try:
        done = audit_export.export(scope, args.format, args.out, _actor(args.by))
    except audit_export.ExportError as exc:
        print(f"nothing exported: {exc}", file=out)
        return 1
    except OSError as exc:
        print(f"nothing exported: cannot write {args.out}: {exc.strerror or type(exc).__name__}",
              file=out)
        return 2
    except sa_exc.SQLAlchemyError as exc:
        return _db_error("export the audit trail", exc, out)
    print(f"{done['path']}: {done['entries']} entries across {done['escalations']} escalations, "
          f"with checkpoint #{done['checkpoint']}; check it with "
          f"python -m bot.escalation verify {done['path']}", file=out)
    return 0


def _checkpoint(by: str | None, out: TextIO) -> int:
    try:
        cp = checkpoints.write_now("manual", _actor(by))
    except sa_exc.SQLAlchemyError as exc:
        return _db_error("write a checkpoint", exc, out)
    print(f"checkpoint #{cp['id']}: {cp['entries']} entries, head {cp['head_id']}", file=out)
    return 0


def _read(path: str, from_db: bool) -> tuple[str, rota.Rota]:
    """The rota to show or check, and how to name it; ``RotaError`` when it is not valid."""
    if not from_db:
        return path, rota.load(path)
    from bot.escalation import rota_store
    from bot.store import db

    found = rota_store.current(db.get_engine())
    return f"rota version {found.version} (database)", found.rota


def _show_rota(path: str, at_text: str | None, out: TextIO, from_db: bool = False) -> int:
    try:
        path, loaded = _read(path, from_db)
    except rota.RotaError as exc:
        print(str(exc), file=out)
        return 1
    except sa_exc.SQLAlchemyError as exc:
        return _db_error("read the rota", exc, out)
    if at_text:
        at = _parse_time(at_text, loaded)
    else:
        at = dt.datetime.now(loaded.timezone)
    print(f"{path}: valid. On call at {at.astimezone(loaded.timezone).isoformat()}:", file=out)

    def names(team) -> str:
        people = loaded.on_call(team, at)
        return ", ".join(f"{p.name} ({p.id})" for p in people) or "nobody"

    for level in reversed(LEVELS):
        print(f"  {level}: " + " -> ".join(t.id for t in loaded.ladder(level)), file=out)
    for tier in loaded.tiers.values():
        print(f"  tier {tier.id}: {names(tier)}", file=out)
    for house in loaded.sanctuaries.values():
        print(f"  sanctuary {house.id}: {names(house)}", file=out)
    return 0


def _check_rota(path: str, days: int, from_text: str | None, out: TextIO,
                from_db: bool = False) -> int:
    from bot.escalation import coverage

    try:
        path, loaded = _read(path, from_db)
    except rota.RotaError as exc:
        print(str(exc), file=out)
        return 1
    except sa_exc.SQLAlchemyError as exc:
        return _db_error("read the rota", exc, out)
    start = _parse_time(from_text, loaded) if from_text else None
    gaps = coverage.find_gaps(loaded, start, days)
    houses = coverage.house_problems(loaded)
    for problem in houses:
        print(f"{path}: {problem}", file=out)
    if not gaps:
        print(f"{path}: covers the line's hours: every tier of every ladder has someone on call "
              f"whenever the line is out of hours, for the next {days} days.", file=out)
        return 1 if houses else 0
    print(f"{path}: {len(gaps)} gap(s) in the next {days} days, when the line says its "
          f"out-of-hours team is on duty but nobody is on call for a tier:", file=out)
    for gap in gaps:
        print(f"  {gap.describe(loaded.timezone)}", file=out)
    return 1


def _db_error(what: str, exc: sa_exc.SQLAlchemyError, out: TextIO) -> int:
    cause = getattr(exc, "orig", None) or exc
    print(f"could not {what}: database error ({type(cause).__name__})", file=out)
    return 2


def _import_rota(path: str | None, reason: str | None, by: str | None, if_empty: bool,
                 out: TextIO) -> int:
    import getpass

    from bot.escalation import rota_store
    from bot.settings import settings
    from bot.store import db

    path = path or settings().rota_file
    actor = by or f"cli:{getpass.getuser()}"
    try:
        number = rota_store.import_file(db.get_engine(), path, actor, reason, only_if_empty=if_empty)
    except rota.RotaError as exc:
        print(f"{exc}\nnothing imported: the rota in use is unchanged.", file=out)
        return 1
    except rota_store.RotaConflict as exc:
        print(f"nothing imported: {exc}; try again.", file=out)
        return 1
    except sa_exc.SQLAlchemyError as exc:
        return _db_error("import the rota", exc, out)
    if number is None:
        print(f"{path}: not imported: the database already has "
              + ("a rota (--if-empty)." if if_empty else "this rota as its current version."), file=out)
    else:
        print(f"{path}: valid; imported as rota version {number} by {actor}.", file=out)
    return 0


def _export_rota(version: int | None, dest: str | None, out: TextIO) -> int:
    from bot.escalation import rota_store
    from bot.store import db

    try:
        text = rota_store.export_text(db.get_engine(), version)
    except LookupError as exc:
        print(f"nothing exported: {exc}", file=out)
        return 1
    except sa_exc.SQLAlchemyError as exc:
        return _db_error("export the rota", exc, out)
    if dest:
        with open(dest, "w", encoding="utf-8") as f:
            f.write(text)
    else:
        out.write(text)
    return 0


def _list_versions(limit: int, out: TextIO) -> int:
    from bot.escalation import rota_store
    from bot.store import db

    try:
        rows = rota_store.versions(db.get_engine(), limit)
    except sa_exc.SQLAlchemyError as exc:
        return _db_error("list the rota's versions", exc, out)
    if not rows:
        print("no rota in the database yet", file=out)
    for row in rows:
        print(f"version {row['version']}  {row['at']}  {row['actor']}  {row['summary']}", file=out)
    return 0


def _parse_time(text: str, loaded: rota.Rota) -> dt.datetime:
    at = dt.datetime.fromisoformat(text)
    if at.tzinfo is None:  # a bare time is read as the line's local time
        at = at.replace(tzinfo=loaded.timezone)
    return at


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    out = out or sys.stdout  # looked up at call time so that tests can capture it
    parser = argparse.ArgumentParser(prog="python -m bot.escalation")
    sub = parser.add_subparsers(dest="command", required=True)
    verify_cmd = sub.add_parser("verify", help="check every escalation's audit trail and its "
                                              "checkpoints, or an export file")
    verify_cmd.add_argument("source", nargs="?", default=None,
                            help="an export file (default: the database)")
    export_cmd = sub.add_parser("export", help="write escalations' audit trails, with their "
                                              "hashes and a checkpoint, for an incident system")
    export_cmd.add_argument("--ref", default=None, help="one escalation")
    export_cmd.add_argument("--from", dest="from_", default=None,
                            help="escalations opened from this day or time")
    export_cmd.add_argument("--to", default=None, help="... until (not including) this one")
    export_cmd.add_argument("--format", default="jsonl", choices=("jsonl", "csv"))
    export_cmd.add_argument("--out", required=True, help="the file to write")
    export_cmd.add_argument("--by", default=None, help="who (default cli:<user>)")
    checkpoint_cmd = sub.add_parser("checkpoint", help="sign a checkpoint of the audit trail now")
    checkpoint_cmd.add_argument("--by", default=None, help="who (default cli:<user>)")
    rota_cmd = sub.add_parser("rota", help="validate the rota and show who is on call, check it "
                                           "covers the line's hours (rota check), or import, "
                                           "export and list the database's versions")
    rota_cmd.add_argument("action", nargs="?", default="show",
                          choices=("show", "check", "import", "export", "versions"))
    rota_cmd.add_argument("source", nargs="?", default=None,
                          help="import: the YAML file (default ROTA_FILE)")
    rota_cmd.add_argument("--file", default=str(rota.DEFAULT_PATH))
    rota_cmd.add_argument("--db", action="store_true",
                          help="show, check: the database's current rota instead of --file")
    rota_cmd.add_argument("--reason", default=None, help="import: why (kept with the version)")
    rota_cmd.add_argument("--by", default=None, help="import: who (default cli:<user>)")
    rota_cmd.add_argument("--if-empty", action="store_true",
                          help="import: only if the database has no rota yet")
    rota_cmd.add_argument("--version", type=int, default=None, help="export: this version")
    rota_cmd.add_argument("--out", default=None, help="export: write to this file")
    rota_cmd.add_argument("--limit", type=int, default=20, help="versions: how many (20)")
    rota_cmd.add_argument("--at", default=None, help="show: ISO time (default: now)")
    rota_cmd.add_argument("--days", type=int, default=400, help="check: days ahead (400)")
    rota_cmd.add_argument("--from", dest="from_", default=None,
                          help="check: ISO time to start from (default: now)")
    args = parser.parse_args(argv)
    if args.command == "rota":
        if args.action == "import":
            return _import_rota(args.source, args.reason, args.by, args.if_empty, out)
        if args.action == "export":
            return _export_rota(args.version, args.out, out)
        if args.action == "versions":
            return _list_versions(args.limit, out)
        if args.action == "check":
            return _check_rota(args.file, args.days, args.from_, out, args.db)
        return _show_rota(args.file, args.at, out, args.db)
    if args.command == "export":
        return _export(args, out)
    if args.command == "checkpoint":
        return _checkpoint(args.by, out)
    return _verify(out, args.source)

if __name__ == "__main__":
    sys.exit(main())
