"""``python -m bot.escalation verify``: check every escalation's audit chain in DATABASE_URL.

Exit 0 when every chain verifies, 1 naming the first broken entry (escalation reference, seq,
problem), 2 when the check could not run (database unreachable). The output never contains
reasons, data or anything else from the entries, only where the chain breaks.
"""

from __future__ import annotations

import argparse
import itertools
import sys
from dataclasses import dataclass
from typing import Optional, Sequence, TextIO

from sqlalchemy import exc as sa_exc
from sqlalchemy import select

from bot.escalation import audit
from bot.store.db import transaction
from bot.store.models import Escalation, EscalationEvent


@dataclass(frozen=True)
class Report:
    escalations: int
    entries: int
    broken_ref: Optional[str] = None
    broken_id: Optional[int] = None
    broken_seq: Optional[int] = None
    problem: Optional[str] = None

    @property
    def ok(self) -> bool:
        return self.problem is None


def verify(url: Optional[str] = None) -> Report:
    """Walk every chain, oldest escalation first, and stop at the first break."""
    with transaction(url) as session:
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
            found = audit.verify_events(trail)
            if found is not None:
                return Report(
                    len(escalations), entries, ref, escalation_id, found.seq, found.problem
                )
            pending = next(by_escalation, None)
        return Report(len(escalations), entries)


def main(argv: Optional[Sequence[str]] = None, out: Optional[TextIO] = None) -> int:
    out = out or sys.stdout  # looked up at call time so that tests can capture it
    parser = argparse.ArgumentParser(prog="python -m bot.escalation")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("verify", help="check the hash chain of every escalation's audit trail")
    parser.parse_args(argv)
    try:
        report = verify()
    except sa_exc.SQLAlchemyError as exc:
        cause = getattr(exc, "orig", None) or exc
        print(f"could not check the audit trail: database error ({type(cause).__name__})", file=out)
        return 2
    if report.ok:
        print(
            f"audit trail intact: {report.entries} entries across {report.escalations} escalations",
            file=out,
        )
        return 0
    print(
        f"audit trail BROKEN at escalation {report.broken_ref} (id {report.broken_id}), "
        f"entry seq {report.broken_seq}: {report.problem}",
        file=out,
    )
    return 1


if __name__ == "__main__":
    sys.exit(main())
