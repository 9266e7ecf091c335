"""The person's own plan on the web chat page, by keyboard alone (docs/plan.md): made with the
message box and the choices, got back with the My plan button, then printed and copied with
the plan's own buttons, all with Tab, Shift+Tab, Enter and Space; axe-core finds no WCAG 2.1
AA violation with the plan and its buttons on screen; printing prints that message only."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from .test_accessibility import violations
from .test_browser import REPLY_TIMEOUT_MS
from .test_feedback_keyboard import COUNT_POINTERS, last_assistant, press_choice

pytestmark = pytest.mark.slow

OFFER = "Would you like to make one now?"
WORDS = "Cedar-Kettle-Warning-Sign"

# window.print opens no dialog here: it records what was marked to print, then says it is
# done as a browser does (the page then takes the marks off).
STUB_PRINT = """() => {
  window.__printed = [];
  window.print = () => {
    window.__printed.push(Array.from(document.querySelectorAll('.print-this'))
      .map(el => el.textContent).join('|') + (document.body.classList.contains('printing-plan') ? '' : '!'));
    window.dispatchEvent(new Event('afterprint'));
  };
}"""


def tab_to(page: Page, text: str, inside: str, back: bool = False, tries: int = 15) -> None:
    """Tab (or Shift+Tab) until the focused control says ``text`` and is inside ``inside``."""
    for _ in range(tries):
        page.keyboard.press("Shift+Tab" if back else "Tab")
        if page.evaluate("([t, s]) => { const el = document.activeElement;"
                         " return !!el && !!el.closest(s) && el.textContent === t; }",
                         [text, inside]):
            return
    pytest.fail(f"the keyboard never reached {text!r}")


def type_line(page: Page, text: str) -> None:
    page.keyboard.type(text)
    page.keyboard.press("Enter")


def test_a_plan_made_got_back_printed_and_copied_by_keyboard_alone(chromium, line):
    context = chromium.new_context(bypass_csp=True)
    context.grant_permissions(["clipboard-read", "clipboard-write"])
    page = context.new_page()
    try:
        page.goto(f"{line.duty_url}/")
        page.evaluate(COUNT_POINTERS)
        page.evaluate(STUB_PRINT)
        expect(page.locator("#status")).to_contain_text("Connected", timeout=REPLY_TIMEOUT_MS)
        page.keyboard.press("Tab")
        page.keyboard.press("Enter")  # the skip link: into the message box
        expect(page.locator("#message")).to_be_focused()

        type_line(page, "PLAN")
        press_choice(page, OFFER, "yes", "Enter")
        expect(last_assistant(page)).to_contain_text("Step 1 of 6", timeout=REPLY_TIMEOUT_MS)
        type_line(page, WORDS)
        expect(last_assistant(page)).to_contain_text("Step 2 of 6", timeout=REPLY_TIMEOUT_MS)
        type_line(page, "done")
        press_choice(page, "may they see it?", "no", " ")
        expect(last_assistant(page)).to_contain_text("stays private", timeout=REPLY_TIMEOUT_MS)

        tab_to(page, "My plan", ".chat-controls")
        page.keyboard.press("Enter")
        plan = page.locator("#transcript .msg.plan").last
        expect(plan).to_contain_text(f"Warning signs: {WORDS}", timeout=REPLY_TIMEOUT_MS)
        expect(plan).to_contain_text("116 123")
        assert violations(page) == []

        page.locator("#message").focus()
        tab_to(page, "Print my plan", ".msg.plan", back=True)
        page.keyboard.press("Enter")
        printed = page.evaluate("window.__printed")
        assert len(printed) == 1 and WORDS in printed[0] and not printed[0].endswith("!")
        assert "Step 1 of 6" not in printed[0]  # that message only
        expect(page.locator(".print-this")).to_have_count(0)

        tab_to(page, "Copy my plan", ".msg.plan")
        page.keyboard.press(" ")
        expect(plan.locator(".plan-said")).to_contain_text("copied")
        assert WORDS in page.evaluate("navigator.clipboard.readText()")
        assert page.evaluate("window.__pointer") == 0
    finally:
        context.close()
