"""CPU of one SMS turn's database work, function by function, in one thread.

Why: the SMS channel's database thread shares the Rasa server's GIL with the bot's turns, so
every millisecond of CPU it spends is taken from them. The load benchmark's throughput varies
by up to a fifth between runs on a small machine; CPU time per call, measured here on a
quiet process, does not, so a change to these functions can be judged in a minute.

The baseline, measured in the same run, is a transaction of its own around ``SELECT 1``
(what any call costs at least); each function is reported in ms and as a multiple of it.

    PYTHONPATH=. .venv/bin/python bench/db_cost.py [--db postgresql|sqlite] [--turns 400]
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.line import create_database, drop_database  # noqa: E402

LEASE = dt.timedelta(seconds=30)
WARM_UP = 50
CONVERSATIONS = 50


def measure(url: str, turns: int) -> tuple[float, dict[str, tuple[float, float]]]:
    """(baseline ms, {function: (ms per call, calls per turn)})."""
    from sqlalchemy import text

    from bot.channels import inbox
    from bot.sms import outbox
    from bot.store import db, migrate

    migrate.upgrade(url)
    cpu: collections.Counter = collections.Counter()
    calls: collections.Counter = collections.Counter()

    def timed(name, fn, *args):
        started = time.thread_time()
        result = fn(*args)
        cpu[name] += time.thread_time() - started
        calls[name] += 1
        return result

    def select_one() -> None:
        with db.transaction() as s:
            s.connection().execute(text("SELECT 1"))

    for i in range(turns + WARM_UP):
        if i == WARM_UP:
            cpu.clear()
            calls.clear()
        n = i % CONVERSATIONS
        timed("baseline", select_one)
        timed("inbox.receive_many", inbox.receive_many,
              [(f"SM{uuid.uuid4().hex}", f"+447800{n:06d}", "I feel low tonight", 0)])
        rows = timed("inbox.claim", inbox.claim, "worker", LEASE, set(), lambda _p: True, 8)
        for row in rows:
            for reply in ("I'm sorry you're feeling low. This is an automated line.",
                          "Would you like to talk to someone?"):
                timed("outbox.enqueue", outbox.enqueue, row.pseudonym, reply, "reply", row.id, 3)
        parts, _ = timed("outbox.claim_due_and_wait", outbox.claim_due_and_wait, "sender",
                         LEASE, set(), 32, 6, ("reply",), 3.0)
        for part in parts:
            timed("outbox.mark_sent", outbox.mark_sent, part.id, "SM" + uuid.uuid4().hex,
                  "queued", 1)
        for row in rows:
            timed("inbox.finish", inbox.finish, row.id, "worker", "done")
    baseline = 1000 * cpu.pop("baseline") / calls.pop("baseline")
    return baseline, {k: (1000 * cpu[k] / calls[k], calls[k] / turns) for k in cpu}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=("postgresql", "sqlite"), default="postgresql")
    parser.add_argument("--turns", type=int, default=400)
    args = parser.parse_args()
    url = create_database(args.db, Path(tempfile.mkdtemp()), "dbcost")
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("PSEUDONYM_KEY", "bench-pseudonym-key")
    from bot.store import db

    try:
        baseline, figures = measure(url, args.turns)
    finally:
        db.dispose_all()
        drop_database(url)
    per_turn = sum(ms * per for ms, per in figures.values())
    print(f"{args.db}, {args.turns} turns: database CPU per SMS turn {per_turn:.2f} ms "
          f"(x{per_turn / baseline:.1f} of a bare transaction, {baseline:.3f} ms)")
    for name, (ms, per) in figures.items():
        print(f"  {name:28s} {ms:6.3f} ms  x{ms / baseline:4.1f}  {per:.1f} per turn")


if __name__ == "__main__":
    main()
