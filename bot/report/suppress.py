"""Small numbers: no count under 5 leaves the report, and none can be worked out.

Every count under ``THRESHOLD`` (zero included, so that a blank never says "none") becomes
``FEWER``. In a figure whose rows split one whole (hours of the day, channels), a single
suppressed cell could be recovered by subtracting the others from the total shown elsewhere,
so the next smallest cell is suppressed with it; likewise along a row whose cells split the
row's total (a month's answers to one question). A rate (a response rate) is shown only when
both counts it comes from are. Durations (p50/p90) are shown only when the
count they were measured over is ``THRESHOLD`` or more: a percentile of two escalations is
two people's times.
"""

from __future__ import annotations

import copy
from typing import Any

from bot.report.figures import Figure, Report

THRESHOLD = 5
FEWER = "fewer than 5"
NOT_SHOWN = "not shown"


def _small(value: Any) -> bool:
    return isinstance(value, int) and value < THRESHOLD


def figure(fig: Figure) -> Figure:
    out = copy.deepcopy(fig)
    rows = out.rows
    count_cols = [i for i, name in enumerate(out.columns) if name in out.counts]
    second_cols = [i for i, name in enumerate(out.columns) if name in out.seconds]
    basis = out.columns.index(out.basis) if out.basis in out.columns else None
    for row in rows:
        if basis is not None and _small(row[basis]):
            for i in second_cols:
                row[i] = NOT_SHOWN
        for i in second_cols:
            if row[i] is None:
                row[i] = NOT_SHOWN
    hidden = {(r, i) for r, row in enumerate(rows) for i in count_cols if _small(row[i])}
    parts = [out.columns.index(c) for c in out.row_parts if c in out.columns]
    total = out.columns.index(out.row_total) if out.row_total in out.columns else None

    def hide_another(cells: list[tuple[int, int]]) -> bool:
        """With exactly one of ``cells`` hidden, hide the smallest shown one too."""
        if sum(1 for c in cells if c in hidden) != 1:
            return False
        shown = [c for c in cells if c not in hidden and isinstance(rows[c[0]][c[1]], int)]
        if not shown:
            return False
        hidden.add(min(shown, key=lambda c: rows[c[0]][c[1]]))
        return True

    # Down a column (rows that split one whole) and along a row (parts of the row's total):
    # hiding one cell for the other can leave a lone hidden cell in its column or row, so go
    # round until nothing changes.
    changed = True
    while changed:
        changed = False
        if out.partition:
            for i in count_cols:
                changed |= hide_another([(r, i) for r in range(len(rows))])
        if parts and total is not None:
            for r in range(len(rows)):
                if (r, total) not in hidden:
                    changed |= hide_another([(r, i) for i in parts])
    for column, (numerator, denominator) in out.rates.items():
        i, n, d = (out.columns.index(c) for c in (column, numerator, denominator))
        for r, row in enumerate(rows):
            if row[i] is None or (r, n) in hidden or (r, d) in hidden:
                row[i] = NOT_SHOWN
    for r, i in hidden:
        rows[r][i] = FEWER
    return out


def report(rep: Report) -> Report:
    """A copy of ``rep`` with every figure suppressed; the headline counts too."""
    out = copy.copy(rep)
    out.figures = [figure(f) for f in rep.figures]
    return out


def headline(count: int) -> "int | str":
    return FEWER if count < THRESHOLD else count
