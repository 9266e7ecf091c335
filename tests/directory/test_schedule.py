"""The line's own hours (data/hours.yml): when the assistant counts as the out-of-hours service."""

import pytest

from bot import settings as settings_module
from bot.directory.schedule import line_status

from .conftest import london


@pytest.mark.parametrize(
    "at, out, reason, next_change",
    [
        (london(2026, 11, 24, 12, 0), False, "office hours", london(2026, 11, 24, 17, 0)),
        (london(2026, 11, 24, 17, 0), True, "weekday evening", london(2026, 11, 25, 9, 0)),
        (london(2026, 11, 24, 7, 30), True, "early morning", london(2026, 11, 24, 9, 0)),
        (london(2026, 11, 28, 12, 0), True, "weekend", london(2026, 11, 30, 9, 0)),
        (london(2026, 12, 28, 10, 0), True, "bank holiday", london(2026, 12, 29, 9, 0)),
        (london(2026, 12, 24, 14, 0), True, "Christmas Eve", london(2026, 12, 29, 9, 0)),
        (london(2026, 12, 24, 10, 0), False, "office hours", london(2026, 12, 24, 13, 0)),
        # The Friday before the clocks go forward: back on Monday at 09:00 BST.
        (london(2026, 3, 27, 18, 0), True, "weekday evening", london(2026, 3, 30, 9, 0)),
    ],
)
def test_line_status(at, out, reason, next_change):
    status = line_status(at)
    assert (status.out_of_hours, status.reason, status.next_change) == (out, reason, next_change)


def test_bank_holiday_name_is_given():
    assert line_status(london(2026, 12, 25, 10, 0)).holiday == "Christmas Day"


def test_holiday_nation_setting(monkeypatch):
    monday = london(2026, 11, 30, 10, 0)  # St Andrew's Day
    assert not line_status(monday).out_of_hours
    monkeypatch.setenv("HOLIDAY_NATION", "SCT")
    settings_module.reset()
    try:
        status = line_status(monday)
    finally:
        settings_module.reset()
    assert status.out_of_hours and status.reason == "bank holiday"


def test_broken_hours_file_counts_as_out_of_hours(tmp_path):
    path = tmp_path / "hours.yml"
    path.write_text('office_hours:\n  hours:\n    weekdays: "09:00-25:00"\n', encoding="utf-8")
    status = line_status(london(2026, 11, 24, 12, 0), path=path)
    assert status.out_of_hours and status.reason == "hours unknown"
