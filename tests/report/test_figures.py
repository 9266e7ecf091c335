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

from bench import report_data
from bot.escalation.engine import OUTCOMES
from bot.report import figures
from bot.store import db

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
    # What is not recorded is said, not left out.
    assert any("Unmet need" in n for n in report.notes)
    assert any("Feedback: no survey was offered" in n for n in report.notes)


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
