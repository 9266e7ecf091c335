"""Command line for the service directory.

    python -m bot.directory validate [PATH]        check the files; exit 1 naming every problem
    python -m bot.directory import [PATH]          validate, then replace the loaded directory
    python -m bot.directory export [PATH]          write the loaded directory as YAML (stdout: -)
    python -m bot.directory open-now --need NEED [--place PLACE] [--for AUDIENCE] [--at ISO]
    python -m bot.directory capacity SERVICE_KEY PLACES_FREE
    python -m bot.directory line-status [--at ISO]

PATH is a .yml file or a folder of them (default: data/services). Times given to --at without
an offset are read as the line's local time (Europe/London).
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from typing import List, Optional

from sqlalchemy.exc import SQLAlchemyError

from bot.directory import loader
from bot.directory.needs import NEEDS
from bot.directory.schema import AUDIENCES, DirectoryError


def _parse_at(text: Optional[str]) -> Optional[dt.datetime]:
    if not text:
        return None
    try:
        return dt.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--at {text!r} is not an ISO date-time like 2026-11-28T23:30"
        ) from None


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bot.directory", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    for name, text in (("validate", "check directory files"), ("import", "load files into the database")):
        s = sub.add_parser(name, help=text)
        s.add_argument("path", nargs="?", default=None)
    s = sub.add_parser("export", help="write the loaded directory as YAML")
    s.add_argument("path", nargs="?", default="-")
    s = sub.add_parser("open-now", help="what is open for a need, near a place, at a time")
    s.add_argument("--need", required=True, choices=sorted(NEEDS))
    s.add_argument("--place", default=None)
    s.add_argument("--for", dest="audience", default=None, choices=AUDIENCES)
    s.add_argument("--at", default=None, help="ISO date-time, e.g. 2026-11-28T23:30")
    s.add_argument("--sms", action="store_true", help="print the SMS replies instead")
    s = sub.add_parser("capacity", help="set places free tonight at a service")
    s.add_argument("service")
    s.add_argument("available", type=int)
    s = sub.add_parser("line-status", help="is the line out of hours")
    s.add_argument("--at", default=None)
    return p


def _validate(path) -> int:
    try:
        directory = loader.load_directory(path)
    except DirectoryError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    for warning in directory.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(
        f"OK: {len(directory.services)} services, {len(directory.places)} places "
        f"in {', '.join(directory.sources)}"
    )
    return 0


def _import(path) -> int:
    from bot.store.db import transaction

    try:
        with transaction() as session:
            directory = loader.import_directory(path, session)
    except DirectoryError as exc:
        print(str(exc), file=sys.stderr)
        print("Nothing imported: the directory already loaded is unchanged.", file=sys.stderr)
        return 1
    except SQLAlchemyError as exc:
        print(f"Database error ({type(exc).__name__}); run `python -m bot.store upgrade` first?",
              file=sys.stderr)
        return 1
    for warning in directory.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"Imported {len(directory.services)} services and {len(directory.places)} places.")
    return 0


def _export(path) -> int:
    from bot.store.db import transaction

    with transaction() as session:
        if not loader.has_directory(session):
            print("No directory imported yet (python -m bot.directory import).", file=sys.stderr)
            return 1
        text = loader.export_yaml(loader.directory_from_db(session))
    header = "# Exported from the loaded service directory; edit and re-import.\n"
    if path in (None, "-"):
        sys.stdout.write(header + text)
    else:
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(header + text)
        print(f"Wrote {path}")
    return 0


def _open_now(args) -> int:
    from bot.directory.messages import how_to_contact
    from bot.directory.query import answer, find_services

    at = _parse_at(args.at)
    if args.sms:
        for message in answer(args.need, args.place, args.audience, at):
            print(message)
            print("---")
        return 0
    try:
        results = find_services(args.need, args.place, args.audience, at)
    except SQLAlchemyError as exc:
        print(f"(database unavailable: {type(exc).__name__}; reading {loader.DEFAULT_PATH.name}/ files)",
              file=sys.stderr)
        results = find_services(args.need, args.place, args.audience, at,
                                directory=loader.load_directory())
    where = {
        "local": f" {results.place.phrase}" if results.place else "",
        "no_local": f" (nothing local {results.place.phrase})" if results.place else "",
        "unknown": f" (place {args.place!r} not known: national services only)",
        "declined": " (no place given: national services only)",
        "not_given": "",
    }[results.place_status]
    print(f"{args.need} at {results.at:%a %d %b %Y %H:%M %Z}{where}")
    shown = [m for m in results if m.available_now] or list(results)
    if not any(m.available_now for m in results):
        print("Nothing open now; opening soonest:")
    for m in shown:
        flags = []
        if m.service.example:
            flags.append("example")
        if m.beds_free is not None:
            flags.append(f"{m.beds_free} free tonight")
        extra = f"  [{', '.join(flags)}]" if flags else ""
        print(f"  {m.service.name}: {how_to_contact(m.service)} ({m.when(results.at)}){extra}")
    return 0


def _capacity(args) -> int:
    from bot.directory.query import set_capacity
    from bot.store.db import transaction

    with transaction() as session:
        directory = loader.directory_from_db(session)
        service = directory.service(args.service)
        if service is None or service.capacity_total is None:
            print(f"{args.service!r} is not a loaded service with capacity.", file=sys.stderr)
            return 1
        if not 0 <= args.available <= service.capacity_total:
            print(f"{service.name} has {service.capacity_total} beds: give a number from 0 to "
                  f"{service.capacity_total}.", file=sys.stderr)
            return 1
        set_capacity(args.service, args.available, session)
    print(f"{service.name}: {args.available} of {service.capacity_total} free tonight.")
    return 0


def _line_status(args) -> int:
    from bot.directory.schedule import line_status

    status = line_status(_parse_at(args.at))
    state = "out of hours" if status.out_of_hours else "office hours"
    change = f"; changes {status.next_change:%a %d %b %H:%M}" if status.next_change else ""
    holiday = f" ({status.holiday})" if status.holiday else ""
    print(f"{state}: {status.reason}{holiday}{change}")
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "validate":
            return _validate(args.path)
        if args.command == "import":
            return _import(args.path)
        if args.command == "export":
            return _export(args.path)
        if args.command == "open-now":
            return _open_now(args)
        if args.command == "capacity":
            return _capacity(args)
        return _line_status(args)
    except argparse.ArgumentTypeError as exc:
        parser.error(str(exc))
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
