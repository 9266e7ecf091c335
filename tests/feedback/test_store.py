"""The survey's tables (bot/feedback/store.py, migration 0012_feedback), on both databases:
once a week, never to someone who opted out or was forgotten, never while an imminent
escalation is unresolved; answers by conversation id, free text apart; the migration is what
the models say."""

from __future__ import annotations

import datetime as dt

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, select

import bot.store.registry  # noqa: F401
from bot.escalation import engine as escalation_engine
from bot.feedback import questions, store, survey
from bot.store import migrate
from bot.store.db import get_engine, transaction
from bot.store.models import Base
from bot.store.models.feedback import FeedbackAnswer, FeedbackComment, FeedbackPerson, FeedbackSurvey
from bot.store.models.sms import SmsContact

Q = questions.load()
NOW = dt.datetime(2026, 12, 7, 23, 0, tzinfo=dt.timezone.utc)  # noqa: UP017  (3.10)
TABLES = {"feedback_people", "feedback_surveys", "feedback_answers", "feedback_comments"}
CONV = "sms-0123456789abcdef0123456789abcdef01234567"


def _feedback_diff(url):
    with get_engine(url).connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}),
                                Base.metadata)
    return [d for d in diff if "feedback" in repr(d)]


def test_the_migration_makes_what_the_models_declare(db_url):
    assert _feedback_diff(db_url) == []


def test_the_migration_downgrades_and_upgrades(sqlite_url):
    migrate.downgrade(sqlite_url, "0011_rota_versions")
    assert not TABLES & set(inspect(get_engine(sqlite_url)).get_table_names())
    migrate.upgrade(sqlite_url)
    assert TABLES <= set(inspect(get_engine(sqlite_url)).get_table_names())


def _answer_all(conv, *texts, now=NOW):
    outs = []
    for i, t in enumerate(texts):
        outs.append(store.handle(conv, t, "none", Q, now=now + dt.timedelta(minutes=i)))
    return outs


def test_a_whole_survey_is_stored_by_conversation_id_with_free_text_apart(db_url):
    offered = store.offer(CONV, "sms", "goodbye", Q, now=NOW)
    assert offered.reason == "ok" and offered.prompt.text == Q.offer
    assert store.has_live_survey(CONV)
    _answer_all(CONV, "yes", "1", "no", "skip", "thank you for listening")
    assert not store.has_live_survey(CONV)
    with transaction() as s:
        answers = s.execute(select(FeedbackAnswer).order_by(FeedbackAnswer.id)).scalars().all()
        assert [(a.question_id, a.criterion, a.choice, a.value, a.conversation_id) for a in answers] == [
            ("listened", "listened", 1, "yes", CONV),
            ("valued", "valued", 3, "no", CONV),
            ("connected", "connected", None, None, CONV),
        ]
        comment = s.execute(select(FeedbackComment)).scalar_one()
        assert comment.text == "thank you for listening" and comment.question_id == "anything_else"
        row = s.execute(select(FeedbackSurvey)).scalar_one()
        assert row.status == survey.DONE and row.ended_at is not None and row.trigger == "goodbye"
    assert [c.text for c in store.comments(CONV)] == ["thank you for listening"]


def test_never_more_than_once_a_week(db_url):
    assert store.offer(CONV, "sms", "goodbye", Q, now=NOW).survey_id
    store.handle(CONV, "no", "none", Q, now=NOW)
    again = store.offer(CONV, "sms", "resolved", Q, now=NOW + dt.timedelta(days=6))
    assert again.survey_id is None and again.reason == "asked_this_week"
    assert store.offer(CONV, "sms", "quiet", Q, now=NOW + dt.timedelta(days=7, minutes=1)).survey_id


def test_not_twice_for_one_conversation_at_once(db_url):
    assert store.offer(CONV, "sms", "goodbye", Q, now=NOW).survey_id
    assert store.offer(CONV, "sms", "resolved", Q, now=NOW).reason in ("survey_live", "asked_this_week")


def test_never_to_someone_who_opted_out_or_was_forgotten(db_url):
    with transaction() as s:
        s.add(SmsContact(pseudonym=CONV, number_enc="x", opted_out=True))
    assert store.offer(CONV, "sms", "goodbye", Q, now=NOW).reason == "do_not_ask"
    store.do_not_ask("web-1", "opt_out")
    assert store.offer("web-1", "socketio", "goodbye", Q, now=NOW).reason == "do_not_ask"


def test_an_opt_out_ends_a_live_survey(db_url):
    store.offer("web-2", "socketio", "goodbye", Q, now=NOW)
    store.do_not_ask("web-2", "opt_out", now=NOW)
    assert not store.has_live_survey("web-2")
    assert store.handle("web-2", "yes", "none", Q, now=NOW) is None


def test_forget_deletes_answers_and_free_text_and_never_asks_again(db_url):
    store.offer("web-3", "socketio", "goodbye", Q, now=NOW)
    _answer_all("web-3", "yes", "1", "1", "1", "some words")
    store.offer("web-4", "socketio", "goodbye", Q, now=NOW)
    _answer_all("web-4", "yes", "2")
    assert store.forget("web-3") == 4
    with transaction() as s:
        assert {a.conversation_id for a in s.execute(select(FeedbackAnswer)).scalars()} == {"web-4"}
        assert s.execute(select(FeedbackComment)).first() is None
        person = s.get(FeedbackPerson, "web-3")
        assert person.do_not_ask and person.do_not_ask_reason == "forget"
    later = NOW + dt.timedelta(days=30)
    assert store.offer("web-3", "socketio", "goodbye", Q, now=later).reason == "do_not_ask"


def test_not_after_an_imminent_conversation_until_staff_resolve_it(db_url):
    record = escalation_engine.record_escalation(CONV, "imminent", ["plan"], channel="sms")
    assert store.offer(CONV, "sms", "goodbye", Q, now=NOW).reason == "imminent_unresolved"
    escalation_engine.acknowledge(record.ref, "staff:amy")
    escalation_engine.resolve(record.ref, "staff:amy", "supported")
    assert store.offer(CONV, "sms", "resolved", Q, now=NOW).reason == "ok"


def test_risk_during_the_survey_ends_it_and_keeps_nothing(db_url):
    store.offer(CONV, "sms", "goodbye", Q, now=NOW)
    store.handle(CONV, "yes", "none", Q, now=NOW)
    outcome = store.handle(CONV, "1", "imminent", Q, now=NOW)
    assert outcome.passthrough and outcome.state.status == survey.RISK
    assert not store.has_live_survey(CONV)
    with transaction() as s:
        assert s.execute(select(FeedbackAnswer)).first() is None


def test_an_old_offer_lapses(db_url):
    store.offer(CONV, "sms", "goodbye", Q, now=NOW)
    assert store.handle(CONV, "yes", "none", Q, now=NOW + dt.timedelta(hours=13)) is None
    assert not store.has_live_survey(CONV)


def test_an_offer_that_never_reached_the_person_is_withdrawn(db_url):
    earlier = NOW - dt.timedelta(days=9)
    assert store.offer(CONV, "sms", "goodbye", Q, now=earlier).survey_id
    store.handle(CONV, "no", "none", Q, now=earlier)
    offered = store.offer(CONV, "sms", "resolved", Q, now=NOW)
    assert offered.asked_before == earlier
    assert store.withdraw(offered.survey_id, offered.asked_before)
    # Not counted as offered, not live (a "yes" goes to the dialogue), and the week's one
    # offer not spent on a text nobody got.
    assert not store.has_live_survey(CONV)
    with transaction() as s:
        assert s.get(FeedbackSurvey, offered.survey_id) is None
        assert store._aware(s.get(FeedbackPerson, CONV).last_asked_at) == earlier
    assert store.offer(CONV, "sms", "quiet", Q, now=NOW + dt.timedelta(minutes=5)).survey_id


def test_an_answered_offer_is_not_withdrawn(db_url):
    offered = store.offer(CONV, "sms", "resolved", Q, now=NOW)
    store.handle(CONV, "yes", "none", Q, now=NOW)
    assert not store.withdraw(offered.survey_id, offered.asked_before)
    assert store.has_live_survey(CONV)


def test_migration_0013_adds_the_quiet_claims_and_the_comment_readings(sqlite_url):
    added = {"feedback_quiet", "feedback_comment_views"}
    migrate.downgrade(sqlite_url, "0012_feedback")
    names = set(inspect(get_engine(sqlite_url)).get_table_names())
    assert TABLES <= names and not added & names
    migrate.upgrade(sqlite_url)
    assert added <= set(inspect(get_engine(sqlite_url)).get_table_names())
