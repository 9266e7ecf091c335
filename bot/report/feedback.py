"""Feedback per criterion, for the report: NOT BUILT YET.

Issue 26 item 1 (asking people a few questions after a conversation, and the tables that keep
their answers) is being built on its own branch. Until its tables exist this returns no
figures, and the report says that no feedback is recorded yet. When they land, this function
reads them (answers per criterion per month and the response rate), and nothing else in the
report has to change: its rows go through the same small-number suppression.
"""

from __future__ import annotations

import datetime as dt
from typing import Optional

from sqlalchemy.orm import Session


def feedback_rows(session: Session, start: dt.datetime, end: dt.datetime) -> Optional[list]:
    """``(label, count)`` rows of feedback answers in ``[start, end)``, or None: not recorded."""
    return None
