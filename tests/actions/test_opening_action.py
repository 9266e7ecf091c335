"""The opening says honestly whether the out-of-hours team is on duty now."""

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

import actions.opening as opening
from actions.opening import ActionLineStatus
from bot.sms.segments import GSM7, encoding_of
from bot.directory.schedule import line_status
from tests.actions.conftest import make_tracker

LONDON = ZoneInfo("Europe/London")


@pytest.mark.parametrize(
    "when,expected",
    [
        (dt.datetime(2026, 11, 27, 21, 0, tzinfo=LONDON), "on duty now until 09:00 Monday"),  # Friday night
        (dt.datetime(2026, 12, 28, 11, 0, tzinfo=LONDON), "it's Boxing Day"),  # substitute bank holiday
        (dt.datetime(2026, 11, 25, 11, 0, tzinfo=LONDON), "office hours"),  # Wednesday morning
    ],
)
async def test_opening_line_follows_the_schedule(monkeypatch, dispatcher, when, expected):
    monkeypatch.setattr(opening, "line_status", lambda: line_status(when))
    assert await ActionLineStatus().run(dispatcher, make_tracker([]), {}) == []
    (message,) = dispatcher.messages
    assert expected in message["text"]
    assert encoding_of(message["text"]) == GSM7 and len(message["text"]) <= 306


async def test_a_broken_schedule_does_not_stop_the_opening(monkeypatch, dispatcher):
    def broken():
        raise ValueError("bad hours file")

    monkeypatch.setattr(opening, "line_status", broken)
    assert await ActionLineStatus().run(dispatcher, make_tracker([]), {}) == []
    assert dispatcher.messages == []
