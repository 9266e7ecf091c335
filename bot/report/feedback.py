"""Feedback per criterion, for the report, from the survey's tables (``docs/feedback.md``).

Counts only: surveys offered, how many got at least one answer, and for each criterion (the
users' own: listened, valued, connected ...) how many chose each answer or skipped it. Free
text (``feedback_comments``) is never read here, and every count goes through the report's
small-number suppression like any other.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Optional

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.store.models.feedback import FeedbackAnswer, FeedbackSurvey


def feedback_rows(session: Session, start: dt.datetime, end: dt.datetime) -> Optional[list]:
    """``[label, count]`` rows for surveys offered in ``[start, end)`` and their answers, or
    None when no survey was offered in the range (the report then says none was recorded)."""
    offered = session.execute(
        select(func.count(FeedbackSurvey.id)).where(
            FeedbackSurvey.offered_at >= start, FeedbackSurvey.offered_at < end)
    ).scalar_one()
    if not offered:
        return None
    answers = session.execute(
        select(FeedbackAnswer.survey_id, FeedbackAnswer.criterion, FeedbackAnswer.value)
        .join(FeedbackSurvey, FeedbackSurvey.id == FeedbackAnswer.survey_id)
        .where(FeedbackSurvey.offered_at >= start, FeedbackSurvey.offered_at < end)
    ).all()
    answered = {survey for survey, _, value in answers if value is not None}
    by_answer = Counter((criterion, value or "skipped") for _, criterion, value in answers)
    rows = [["surveys offered", offered], ["surveys with at least one answer", len(answered)]]
    rows += [[f"{criterion}: {value}", n] for (criterion, value), n in sorted(by_answer.items())]
    return rows
