"""Small numbers: no count under 5 leaves the report, and none can be worked out.

Every count under ``THRESHOLD`` (zero included, so that a blank never says "none") becomes
``FEWER``. In a figure whose rows split one whole (hours of the day, channels), a single
suppressed cell could be recovered by subtracting the others from the total shown elsewhere,
so the next smallest cell is suppressed with it. Durations (p50/p90) are shown only when the
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
    count_cols = [i for i, name in enumerate(out.columns) if name in out.counts]
    second_cols = [i for i, name in enumerate(out.columns) if name in out.seconds]
    basis = out.columns.index(out.basis) if out.basis in out.columns else None
    for row in out.rows:
        if basis is not None and _small(row[basis]):
            for i in second_cols:
                row[i] = NOT_SHOWN
        for i in second_cols:
            if row[i] is None:
                row[i] = NOT_SHOWN
    for i in count_cols:
        small = [r for r in out.rows if _small(r[i])]
        if out.partition and len(small) == 1:
            shown = [r for r in out.rows if isinstance(r[i], int) and not _small(r[i])]
            if shown:
                min(shown, key=lambda r: r[i])[i] = FEWER
        for row in small:
            row[i] = FEWER
    return out


def report(rep: Report) -> Report:
    """A copy of ``rep`` with every figure suppressed; the headline counts too."""
    out = copy.copy(rep)
    out.figures = [figure(f) for f in rep.figures]
    return out


def headline(count: int) -> "int | str":
    return FEWER if count < THRESHOLD else count
