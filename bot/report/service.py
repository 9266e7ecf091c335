"""Making a report: dates checked, figures built and suppressed, files written.

The one entry point for the command (``python -m bot.report``), the console page and
``GET /api/report``, so all three give the same figures.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Optional

from sqlalchemy.engine import Engine

from bot.report import figures, render, suppress

# The longest range one request may ask for: the benchmark's year with room to spare.
MAX_DAYS = 3 * 366
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


class BadRange(ValueError):
    """A date that is not a date, or a range that is not one; the message names which."""


def parse_date(raw: Optional[str], name: str) -> dt.date:
    if raw is None or raw == "":
        raise BadRange(f"{name} is required, as YYYY-MM-DD")
    if not _DATE.fullmatch(raw):
        raise BadRange(f"{name} must be a date as YYYY-MM-DD; got {raw[:40]!r}")
    try:
        return dt.date.fromisoformat(raw)
    except ValueError:
        raise BadRange(f"{name} is not a real date: {raw!r}") from None


def check_range(start: dt.date, end: dt.date) -> None:
    if end < start:
        raise BadRange(f"to ({end}) is before from ({start})")
    if (end - start).days + 1 > MAX_DAYS:
        raise BadRange(f"a report covers at most {MAX_DAYS} days")


def last_full_month(today: dt.date) -> tuple[dt.date, dt.date]:
    """The first and last day of the calendar month before ``today``'s."""
    end = today.replace(day=1) - dt.timedelta(days=1)
    return end.replace(day=1), end


def make(engine: Engine, start: dt.date, end: dt.date, tz: str,
         nation: Optional[str] = None) -> figures.Report:
    """The suppressed report: the only form that leaves this package."""
    check_range(start, end)
    return suppress.report(figures.build(engine, start, end, tz, nation))


def write(report: figures.Report, out_dir: Path) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    page = out_dir / "report.html"
    table = out_dir / "report.csv"
    page.write_text(render.html_report(report), encoding="utf-8")
    table.write_text(render.csv_report(report), encoding="utf-8")
    return page, table
