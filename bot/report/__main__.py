"""``python -m bot.report --from YYYY-MM-DD --to YYYY-MM-DD --out DIR``: report.html, report.csv.

Both days are included, in the line's local time (``TZ_LINE``). Reads ``DATABASE_URL``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional, Sequence

from bot.report import service
from bot.settings import settings


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bot.report",
        description="Write the line's anonymous report (HTML and CSV) for a range of days.")
    parser.add_argument("--from", dest="start", required=True, help="first day, YYYY-MM-DD")
    parser.add_argument("--to", dest="end", required=True, help="last day, YYYY-MM-DD (included)")
    parser.add_argument("--out", required=True, type=Path, help="folder for report.html and report.csv")
    args = parser.parse_args(argv)
    try:
        start = service.parse_date(args.start, "--from")
        end = service.parse_date(args.end, "--to")
        service.check_range(start, end)
    except service.BadRange as exc:
        parser.error(str(exc).replace("to (", "--to (").replace("from (", "--from ("))
    from bot.store import db

    cfg = settings()
    report = service.make(db.get_engine(cfg.database_url), start, end, cfg.tz_line,
                          cfg.holiday_nation)
    page, table = service.write(report, args.out)
    state = "no data in this range" if report.empty else "done"
    print(f"{page}\n{table}\n({state})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
