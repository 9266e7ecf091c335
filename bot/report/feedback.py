"""Feedback per criterion, for the report, from the survey's tables (``docs/feedback.md``).

Counts only: surveys offered, how many got at least one answer, and for each criterion (the
users' own: listened, valued, connected ...) how many chose each answer or skipped it. Free
text (``feedback_comments``) is never read here, and every count goes through the report's
small-number suppression like any other. ``monthly`` gives the same counts month by month,
for each criterion's trend and the response rate over time.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field
from typing import Optional
from zoneinfo import ZoneInfo

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


@dataclass
class Criterion:
    """One criterion's answers, month by month (``(year, month)`` keys)."""

    offered: Counter = field(default_factory=Counter)  # surveys of a set that asks it
    answered: Counter = field(default_factory=Counter)  # answers with a choice
    skipped: Counter = field(default_factory=Counter)
    values: dict[str, Counter] = field(default_factory=dict)  # answer word -> month -> n
    position: dict[str, int] = field(default_factory=dict)  # answer word -> its choice number
    sets: set[str] = field(default_factory=set)  # the question sets that ask it


@dataclass
class Monthly:
    offered: Counter = field(default_factory=Counter)  # month -> surveys offered
    responded: Counter = field(default_factory=Counter)  # month -> surveys with an answer
    criteria: dict[str, Criterion] = field(default_factory=dict)


def monthly(session: Session, start: dt.datetime, end: dt.datetime, zone: ZoneInfo) -> Monthly:
    """Surveys offered in ``[start, end)`` and their answers, by the local month each survey
    was offered in (an answer belongs to its survey's month)."""
    out = Monthly()
    month_of: dict[int, tuple[int, int]] = {}
    by_set: dict[str, Counter] = {}
    for survey_id, offered_at, set_name in session.execute(
            select(FeedbackSurvey.id, FeedbackSurvey.offered_at, FeedbackSurvey.set_name)
            .where(FeedbackSurvey.offered_at >= start, FeedbackSurvey.offered_at < end)):
        local = _aware(offered_at).astimezone(zone)
        month_of[survey_id] = (local.year, local.month)
        out.offered[month_of[survey_id]] += 1
        by_set.setdefault(set_name, Counter())[month_of[survey_id]] += 1
    if not month_of:
        return out
    responded: set[int] = set()
    for survey_id, criterion, choice, value, set_name in session.execute(
            select(FeedbackAnswer.survey_id, FeedbackAnswer.criterion, FeedbackAnswer.choice,
                   FeedbackAnswer.value, FeedbackSurvey.set_name)
            .join(FeedbackSurvey, FeedbackSurvey.id == FeedbackAnswer.survey_id)
            .where(FeedbackSurvey.offered_at >= start, FeedbackSurvey.offered_at < end)):
        month = month_of.get(survey_id)
        if month is None:
            continue
        counts = out.criteria.setdefault(criterion, Criterion())
        counts.sets.add(set_name)
        if value is None:
            counts.skipped[month] += 1
            continue
        responded.add(survey_id)
        counts.answered[month] += 1
        counts.values.setdefault(value, Counter())[month] += 1
        position = choice if choice is not None else 99
        counts.position[value] = min(position, counts.position.get(value, position))
    for survey_id in responded:
        out.responded[month_of[survey_id]] += 1
    # A criterion's response rate is over the surveys that could have asked it: those of a
    # question set that did (the carers' set asks "engaged", the default set does not).
    for counts in out.criteria.values():
        for set_name in counts.sets:
            counts.offered.update(by_set.get(set_name, Counter()))
    return out


def _aware(at: dt.datetime) -> dt.datetime:
    return at if at.tzinfo else at.replace(tzinfo=dt.timezone.utc)  # SQLite: naive UTC
