"""The report's feedback figure counts the survey's answers per criterion, never its free text."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from bot.report import figures, render, service
from bot.store import db
from bot.store.models.feedback import FeedbackAnswer, FeedbackComment, FeedbackSurvey

UTC = dt.timezone.utc


def _survey(session, n, answers, at):
    survey = FeedbackSurvey(conversation_id=f"sms-{n:040d}", person=f"sms-{n:040d}",
                            channel="sms", trigger="goodbye", set_name="default", status="done",
                            offered_at=at, updated_at=at)
    session.add(survey)
    session.flush()
    for criterion, value in answers:
        session.add(FeedbackAnswer(survey_id=survey.id, conversation_id=survey.conversation_id,
                                   set_name="default", question_id=criterion,
                                   criterion=criterion, choice=None if value is None else 1,
                                   value=value, answered_at=at))
    return survey


def test_feedback_is_counted_per_criterion_and_free_text_never_shown(sqlite_url):
    engine = db.get_engine(sqlite_url)
    at = dt.datetime(2025, 3, 10, 21, 0, tzinfo=UTC)
    with Session(engine) as session, session.begin():
        for n in range(7):
            _survey(session, n, [("listened", "yes"), ("connected", "partly")], at)
        for n in range(7, 13):
            _survey(session, n, [("listened", "no"), ("connected", None)], at)
        _survey(session, 13, [], at)  # offered, never answered
        quiet = _survey(session, 14, [("listened", "yes")], at)
        session.add(FeedbackComment(survey_id=quiet.id, conversation_id=quiet.conversation_id,
                                    question_id="anything", text="Zebra-Tango-Secret", at=at))
        _survey(session, 99, [("listened", "yes")], dt.datetime(2025, 6, 1, tzinfo=UTC))
    report = figures.build(engine, dt.date(2025, 3, 1), dt.date(2025, 3, 31), "Europe/London")
    fig = next(f for f in report.figures if f.key == "feedback")
    got = {row[0]: row[1] for row in fig.rows}
    assert got == {"surveys offered": 15, "surveys with at least one answer": 14,
                   "listened: yes": 8, "listened: no": 6,
                   "connected: partly": 7, "connected: skipped": 6}
    made = service.make(engine, dt.date(2025, 3, 1), dt.date(2025, 3, 31), "Europe/London")
    shown = render.html_report(made) + render.csv_report(made) + str(render.json_report(made))
    assert "listened: yes" in shown
    assert "Zebra-Tango-Secret" not in shown


def test_a_range_with_no_survey_says_so(sqlite_url):
    report = figures.build(db.get_engine(sqlite_url), dt.date(2025, 3, 1), dt.date(2025, 3, 31),
                           "Europe/London")
    assert not any(f.key == "feedback" for f in report.figures)
    assert any("no survey was offered" in n for n in report.notes)
