"""The feedback survey in the web chat, answered by keyboard alone, and its answers in the report.

Five people (five is the report's smallest count it shows) each say goodbye, are offered the
survey, and answer every question with Tab, Shift+Tab, Enter and Space: no mouse, no click
(the page counts pointer events and must see none). After each choice the keyboard is back in
the message box, from where the next question's choices are a Shift+Tab away. Then a duty
manager opens the report for today: the answers are counted per criterion, the free text
is nowhere in it.
"""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Page, expect

from .test_accessibility import violations
from .test_browser import REPLY_TIMEOUT_MS

pytestmark = pytest.mark.slow

PEOPLE = 5
OFFER = "would you answer 3 short questions"
QUESTIONS = (  # (question, the choice to make, the key that presses it)
    ("Did you feel listened to?", "yes", "Enter"),
    ("Were you treated as the expert on your own life?", "partly", " "),
    ("Did we connect you to help or advice you wanted?", "didn't need it", "Enter"),
)
FREE_TEXT = "Anything you want the people who run this line to know?"
COMMENT = "Heron-Lantern-Only-Staff-Read-This"

COUNT_POINTERS = """() => {
  window.__pointer = 0;
  for (const kind of ["pointerdown", "mousedown", "touchstart"]) {
    document.addEventListener(kind, () => { window.__pointer += 1; }, true);
  }
}"""


def last_assistant(page: Page):
    return page.locator("#transcript .msg.assistant").last


def press_choice(page: Page, question: str, title: str, key: str) -> None:
    """From the message box, Shift+Tab back to the choice ``title`` under ``question`` and
    press it with ``key`` (Enter or Space); the keyboard comes back to the message box."""
    expect(last_assistant(page)).to_contain_text(question, timeout=REPLY_TIMEOUT_MS)
    asked = page.locator("#transcript .msg.assistant").nth(
        page.locator("#transcript .msg.assistant").count() - 1)
    choices = asked.locator(".quick-replies[role=group] button")
    expect(choices.filter(has_text=re.compile(f"^{re.escape(title)}$"))).to_have_count(1)
    expect(page.locator("#message")).to_be_focused()
    for _ in range(12):
        page.keyboard.press("Shift+Tab")
        focused = page.evaluate(
            "() => { const el = document.activeElement;"
            " return el && el.closest('.quick-replies') ? el.textContent : null; }")
        if focused == title:
            break
    else:
        pytest.fail(f"Shift+Tab never reached the choice {title!r}")
    page.keyboard.press(key)
    expect(page.locator("#transcript .msg.me").last).to_have_text(re.compile(re.escape(title)))
    expect(page.locator("#message")).to_be_focused()
    # The choices answered their question: none is left to press by mistake later.
    expect(asked.locator(".quick-replies")).to_have_count(0)


def answer_survey_by_keyboard(page: Page, line, comment: str, check_axe: bool = False) -> None:
    page.goto(f"{line.duty_url}/")
    page.evaluate(COUNT_POINTERS)
    expect(page.locator("#status")).to_contain_text("Connected", timeout=REPLY_TIMEOUT_MS)
    # In from the top of the page: the skip link, then the message box.
    page.keyboard.press("Tab")
    expect(page.locator("a.skip-link")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("#message")).to_be_focused()

    page.keyboard.type("goodbye")
    page.keyboard.press("Enter")
    press_choice(page, OFFER, "yes", "Enter")
    for question, choice, key in QUESTIONS:
        if check_axe:  # the choices on screen meet WCAG 2.1 AA like the rest of the page
            expect(last_assistant(page).locator(".quick-replies button").first).to_be_visible(
                timeout=REPLY_TIMEOUT_MS)
            assert violations(page) == [], question
            check_axe = False
            page.locator("#message").focus()  # (focus, not a click: as it was before axe)
        press_choice(page, question, choice, key)
    expect(last_assistant(page)).to_contain_text(FREE_TEXT, timeout=REPLY_TIMEOUT_MS)
    page.keyboard.type(comment)
    page.keyboard.press("Enter")
    expect(last_assistant(page)).to_contain_text("Thank you. Your answers help",
                                                 timeout=REPLY_TIMEOUT_MS)
    assert page.evaluate("window.__pointer") == 0


def report_cells(page: Page, section: str) -> dict[str, list[str]]:
    rows = page.locator(f"section#{section} tbody tr")
    out = {}
    for i in range(rows.count()):
        cells = rows.nth(i).locator("td").all_inner_texts()
        out[cells[0]] = cells[1:]
    return out


def test_the_survey_answered_by_keyboard_alone_is_counted_in_the_report(chromium, line,
                                                                       manager):
    for n in range(PEOPLE):
        # bypass_csp: the page's own CSP would refuse the injected axe script, rightly.
        context = chromium.new_context(bypass_csp=True)
        try:
            answer_survey_by_keyboard(context.new_page(), line, COMMENT if n == 0 else "skip",
                                      check_axe=n == 0)
        finally:
            context.close()

    username, password = manager
    context = chromium.new_context()
    page = context.new_page()
    try:
        page.goto(f"{line.duty_url}/login")
        line.sign_in(page, username, password)
        today = dt.datetime.now(ZoneInfo(line.settings.tz_line)).date()
        page.goto(f"{line.duty_url}/duty/report?from={today - dt.timedelta(days=1)}"
                  f"&to={today + dt.timedelta(days=1)}")
        feedback = report_cells(page, "feedback")
        assert feedback["listened: yes"] == [str(PEOPLE)]
        assert feedback["valued: partly"] == [str(PEOPLE)]
        assert feedback["connected: didn't need it"] == [str(PEOPLE)]
        assert feedback["surveys with at least one answer"] == [str(PEOPLE)]
        # Month by month: this month's row has the five answers, and their share of the
        # surveys offered.
        month = today.strftime("%b %Y")
        listened = report_cells(page, "feedback_listened")
        columns = page.locator("section#feedback_listened thead th").all_inner_texts()
        row = dict(zip(columns[1:], listened[month], strict=True))
        assert row["answered"] == str(PEOPLE) and row["yes"] == str(PEOPLE)
        # The line is shared with the other browser tests, whose conversations may have been
        # offered the survey too (a staff resolution offers it) and left it unanswered.
        offered = int(feedback["surveys offered"][0])
        assert offered >= PEOPLE
        assert row["response rate"] == f"{100 * PEOPLE / offered:.0f}%"
        assert page.locator("section#feedback_listened svg").count() == 1
        assert COMMENT not in page.content()
    finally:
        context.close()
