"""The report's figures on a small generated year, on SQLite and on the real PostgreSQL,
each checked against a count made here from the generated records (not from the database).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from zoneinfo import ZoneInfo

import holidays
import numpy as np
import pytest
import yaml

from bench import report_data
from bot.directory import loader
from bot.escalation.engine import OUTCOMES
from bot.report import figures
from bot.store import db
from bot.store.db import transaction
from tests.conftest import ROOT

TZ = "Europe/London"
LONDON = ZoneInfo(TZ)
YEAR = 2025


@pytest.fixture
def world(db_url):
    w = report_data.generate(conversations=600, escalations=120, year=YEAR, seed=7)
    report_data.load(db.get_engine(db_url), w)
    return w


def rows(report: figures.Report, key: str) -> dict:
    fig = next(f for f in report.figures if f.key == key)
    return {r[0]: (r[1] if len(r) == 2 else r[1:]) for r in fig.rows}


def nearest_rank(values, q):
    return float(np.percentile(values, q, method="inverted_cdf")) if values else None


def test_every_figure_matches_an_independent_count(db_url, world):
    report = figures.build(db.get_engine(db_url), dt.date(YEAR, 1, 1), dt.date(YEAR, 12, 31), TZ)
    convs = world.conversations
    local = [c.start.astimezone(LONDON) for c in convs]

    assert report.contacts == len(convs)
    assert report.escalations == len(world.escalations)
    assert rows(report, "contacts_by_hour") == {
        f"{h:02d}:00": sum(1 for t in local if t.hour == h) for h in range(24)}
    days = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
    assert rows(report, "contacts_by_day") == {
        d: sum(1 for t in local if days[t.weekday()] == d) for d in days}
    bank = holidays.country_holidays("GB", subdiv="ENG", years=YEAR)
    on_holiday = sum(1 for t in local if t.date() in bank)
    assert on_holiday > 0  # the generated year does reach some
    assert rows(report, "contacts_bank_holidays") == {
        "on a bank holiday": on_holiday, "on other days": len(convs) - on_holiday}
    channels = Counter(c.channel for c in convs)
    assert rows(report, "contacts_by_channel") == {
        ch: channels[ch] for ch in ("SMS", "web chat", "other")}
    risk = Counter(c.risk for c in convs)
    assert rows(report, "risk_levels") == {lv: risk[lv] for lv in report_data.RISKS}

    escs = world.escalations
    levels = Counter(e.level for e in escs)
    assert rows(report, "escalation_levels") == {
        "wants a person": levels["support"], "urgent": levels["urgent"],
        "imminent": levels["imminent"]}

    def secs(pairs):
        return [(b - a).total_seconds() for a, b in pairs if b is not None]

    to_alert = secs((e.risk_at, e.alerted_at) for e in escs)
    to_ack = secs((e.risk_at, e.acknowledged_at) for e in escs)
    to_human = secs((e.risk_at, e.taken_at) for e in escs)
    timing = rows(report, "time_to_human")
    for label, values in (("to the first staff alert", to_alert),
                          ("to acknowledgement", to_ack),
                          ("to a human joining the conversation", to_human)):
        count, p50, p90 = timing[label]
        assert count == len(values)
        assert p50 == pytest.approx(nearest_rank(values, 50))
        assert p90 == pytest.approx(nearest_rank(values, 90))

    tops = Counter(e.top_step for e in escs)
    assert rows(report, "ladder") == {
        "no alert sent": tops[None], "first tier": tops[0], "second tier": tops[1],
        "third tier or later": tops[2] + tops[3]}
    assert rows(report, "unacknowledged") == {
        "every tier alerted and none acknowledged in time (ladder exhausted)":
            sum(e.exhausted for e in escs),
        "never acknowledged at all": sum(e.acknowledged_at is None for e in escs)}
    outcomes = Counter(e.outcome for e in escs)
    assert rows(report, "outcomes") == {
        **{label: outcomes[code] for code, label in OUTCOMES.items()},
        "not resolved yet": outcomes[None]}
    referrals = Counter(e.referral for e in escs)
    assert rows(report, "sanctuary") == {
        "referred": len(escs) - referrals[None], "accepted": referrals["accepted"],
        "declined": referrals["declined"], "no answer recorded": referrals["no answer"]}
    # Everything is recorded now: no "not in this report" notes.
    assert report.notes == []


def test_a_range_counts_contacts_by_local_days(db_url, world):
    """One month: a contact belongs to the day (local time) its first message was written."""
    report = figures.build(db.get_engine(db_url), dt.date(YEAR, 7, 1), dt.date(YEAR, 7, 31), TZ)
    expected = sum(1 for c in world.conversations
                   if c.start.astimezone(LONDON).date().month == 7)
    assert report.contacts == expected
    assert report.escalations == sum(
        1 for e in world.escalations if e.created_at.astimezone(LONDON).month == 7)


def test_a_range_with_no_data_is_an_empty_report(db_url):
    report = figures.build(db.get_engine(db_url), dt.date(2020, 1, 1), dt.date(2020, 1, 31), TZ)
    assert report.empty
    assert report.contacts == 0 and report.escalations == 0
    assert all(isinstance(f, figures.Figure) for f in report.figures)


def _directory_places() -> list[tuple[str, str]]:
    """(key, name) of the shipped directory's places, read from its files here."""
    out = []
    for path in sorted((ROOT / "data" / "services").glob("*.yml")):
        out += [(p["key"], p["name"]) for p in yaml.safe_load(path.read_text()).get("places", [])]
    return out


def test_carers_unmet_need_and_feedback_by_month_match_an_independent_count(db_url, world):
    with transaction() as session:
        loader.import_directory(loader.DEFAULT_PATH, session)
    report = figures.build(db.get_engine(db_url), dt.date(YEAR, 1, 1), dt.date(YEAR, 12, 31), TZ)
    convs = world.conversations

    # Carers and service users: a carers' intent or the audience slot set to carers.
    carers = sum(1 for c in convs if c.carer_by is not None)
    assert 0 < sum(1 for c in convs if c.carer_by == "slot") < carers
    assert rows(report, "contacts_by_audience") == {
        "service users": len(convs) - carers, "carers": carers}

    # Unmet need: by need, by place (the directory's names and order), and the pairs.
    need_words = {"sanctuary": "a sanctuary or crisis café", "housing": "housing help",
                  "money": "money and benefits advice", "advocacy": "advocacy",
                  "peer_support": "peer support", "carers": "carers' support",
                  "pharmacy": "a pharmacy", "emergency": "emergencies",
                  "crisis": "crisis support", "a_and_e_alternative": "somewhere instead of A&E",
                  "talk": "someone to talk to"}
    by_need = Counter(u.need for u in world.unmet)
    assert rows(report, "unmet_need_by_need") == {
        words: by_need[need] for need, words in need_words.items()}
    directory = _directory_places()
    names = dict(directory) | {"not in the directory": "a place not in the directory",
                               "not given": "place not given"}
    by_place = Counter(u.place for u in world.unmet)
    assert by_place["old-district"] > 0  # a key the directory no longer has keeps its key
    fig = next(f for f in report.figures if f.key == "unmet_need_by_place")
    assert [r[0] for r in fig.rows] == (
        [name for _, name in directory] + ["old-district", "a place not in the directory",
                                           "place not given"])
    assert rows(report, "unmet_need_by_place") == {
        names.get(key, key): by_place[key] for key in list(dict(directory)) + [
            "old-district", "not in the directory", "not given"]}
    pairs = Counter((names.get(u.place, u.place), need_words[u.need]) for u in world.unmet)
    named = {f"{place}: {need}": n for (place, need), n in pairs.items() if n >= 5}
    assert named and len(named) < len(pairs)  # some pairs are named, some are not
    unmet_rows = rows(report, "unmet_need")
    assert unmet_rows == {**named, "every other place and need (each fewer than 5)":
                          sum(pairs.values()) - sum(named.values())}
    counts = [n for label, n in unmet_rows.items() if not label.startswith("every other")]
    assert counts == sorted(counts, reverse=True)

    # Feedback: the range's answers per criterion, then month by month.
    surveys = world.surveys
    answers = [(s, a) for s in surveys for a in s.answers]
    assert rows(report, "feedback") == {
        "surveys offered": len(surveys),
        "surveys with at least one answer": sum(
            1 for s in surveys if any(a[3] is not None for a in s.answers)),
        **Counter(f"{a[1]}: {a[3] or 'skipped'}" for _, a in answers)}

    def month(at):
        local = at.astimezone(LONDON)
        return dt.date(local.year, local.month, 1).strftime("%b %Y")

    labels = [dt.date(YEAR, m, 1).strftime("%b %Y") for m in range(1, 13)]
    offered = Counter(month(s.offered_at) for s in surveys)
    responded = Counter(month(s.offered_at) for s in surveys
                        if any(a[3] is not None for a in s.answers))
    got = rows(report, "feedback_by_month")
    assert list(got) == labels
    for label in labels:
        n, answered, rate = got[label]
        assert (n, answered) == (offered[label], responded[label])
        assert rate == pytest.approx(100 * answered / n)

    by_criterion = {}
    for s, (_, criterion, _, _) in answers:
        by_criterion.setdefault(criterion, set()).add(s.set_name)
    assert set(by_criterion) == {"listened", "valued", "connected", "engaged"}
    keys = [f.key for f in report.figures]
    # In the users' criteria order (valued, listened, ..., connected).
    assert [k for k in keys if k.startswith("feedback_") and k != "feedback_by_month"] == [
        "feedback_valued", "feedback_listened", "feedback_engaged", "feedback_connected"]
    for criterion, sets in by_criterion.items():
        fig = next(f for f in report.figures if f.key == f"feedback_{criterion}")
        words = [w for w in ("yes", "partly", "no", "didn't need it")
                 if any(a[1] == criterion and a[3] == w for _, a in answers)]
        assert fig.columns == ["month", "surveys offered", "answered", "response rate",
                               *words, "skipped"]
        asked = [s for s in surveys if s.set_name in sets]
        mine = [(month(s.offered_at), a) for s, a in answers if a[1] == criterion]
        for row in fig.rows:
            label = row[0]
            n = sum(1 for s in asked if month(s.offered_at) == label)
            answered = sum(1 for m, a in mine if m == label and a[3] is not None)
            assert row[1:3] == [n, answered], (criterion, label)
            assert row[3] == (pytest.approx(100 * answered / n) if n else None)
            assert row[4:] == [sum(1 for m, a in mine if m == label and a[3] == w)
                               for w in words] + [
                sum(1 for m, a in mine if m == label and a[3] is None)]
    # The engaged question is the carers' set's only: its surveys are the carers' ones.
    engaged = next(f for f in report.figures if f.key == "feedback_engaged")
    assert sum(r[1] for r in engaged.rows) == sum(1 for s in surveys if s.set_name == "carers")
