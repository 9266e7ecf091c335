"""Housekeeping for the SMS channel's queues.

    python -m bot.channels purge [--days N]   # default SMS_RETENTION_DAYS (30)

The Rasa server also purges about once an hour; see bot/channels/retention.py.
"""

from __future__ import annotations

import argparse
import sys

from bot.channels.retention import purge
from bot.settings import settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot.channels", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("purge", help="delete finished SMS inbox/outbox rows older than N days")
    p.add_argument("--days", type=float, default=None,
                   help="retention in days (default: SMS_RETENTION_DAYS, 30)")
    args = parser.parse_args(argv)
    days = args.days if args.days is not None else settings().sms_retention_days
    if days <= 0:
        print("--days must be a positive number", file=sys.stderr)
        return 2
    try:
        done = purge(days)
    except Exception as exc:  # noqa: BLE001  a clear line, not a traceback with bound values
        print(f"purge failed: {type(exc).__name__} (is DATABASE_URL right and migrated?)",
              file=sys.stderr)
        return 1
    print(f"purged {done.inbox} inbox and {done.outbox} outbox rows finished more than "
          f"{days:g} days ago")
    return 0


if __name__ == "__main__":
    sys.exit(main())
