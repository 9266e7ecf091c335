"""WCAG 2.1 AA in a real browser: axe-core (vendored, ``vendor/axe.min.js``, no CDN) finds
no violations on the chat page, empty and mid-conversation, at phone and desktop widths, nor
on any console page (the report included, with its tables and plots drawn); the emergency
numbers stay on screen however far the chat is scrolled. (The chat with the feedback
survey's choices on screen: ``test_feedback_keyboard.py``.)"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Page, expect

from .test_browser import QUEUE_TIMEOUT_MS, REPLY_TIMEOUT_MS, open_chat, say

pytestmark = pytest.mark.slow

AXE = Path(__file__).parent / "vendor" / "axe.min.js"
WCAG_21_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
WIDTHS = {"phone": {"width": 375, "height": 667}, "desktop": {"width": 1280, "height": 800}}


def violations(page: Page) -> list[str]:
    """axe-core's WCAG 2.1 A/AA violations on the page as it is now, one line each."""
    if not page.evaluate("typeof window.axe === 'object'"):
        page.add_script_tag(path=str(AXE))
    result = page.evaluate(
        "tags => axe.run(document, {runOnly: {type: 'tag', values: tags}})", WCAG_21_AA)
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at "
        + ", ".join(" ".join(n["target"]) for n in v["nodes"][:5])
        for v in result["violations"]
    ]


def on_screen_and_uncovered(page: Page, selector: str) -> list[str]:
    """Which of ``selector``'s elements are not wholly in the viewport, or are covered."""
    return page.evaluate(
        """sel => Array.from(document.querySelectorAll(sel)).filter(el => {
             const r = el.getBoundingClientRect();
             if (r.top < 0 || r.left < 0 || r.bottom > innerHeight || r.right > innerWidth
                 || r.width === 0) return true;
             const hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
             return !(hit && (hit === el || el.contains(hit)));
           }).map(el => el.textContent)""",
        selector,
    )


@pytest.mark.parametrize("width", sorted(WIDTHS))
def test_the_chat_page_meets_wcag_aa_and_keeps_the_numbers_on_screen(chromium, line, width):
    # bypass_csp: the page's own CSP would refuse the injected axe script, rightly.
    context = chromium.new_context(viewport=WIDTHS[width], bypass_csp=True)
    page = context.new_page()
    try:
        open_chat(page, line)
        assert violations(page) == []
        for text in ("hello", "who is open tonight for carers", "how can I help my son",
                     "what are my rights as a carer"):
            say(page, text)
        assert violations(page) == []
        # The transcript can be reached and scrolled by keyboard alone.
        box = page.locator("#conversation")
        box.focus()
        expect(box).to_be_focused()
        page.keyboard.press("Home")
        # The 999 / Samaritans / NHS 111 panel is on screen, uncovered, wherever the page is.
        for scroll in ("window.scrollTo(0, document.body.scrollHeight)", "window.scrollTo(0, 0)"):
            page.evaluate(scroll)
            page.wait_for_timeout(100)
            assert on_screen_and_uncovered(page, ".emergency a") == [], scroll
        page.locator("#message").focus()
        page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
        assert on_screen_and_uncovered(page, ".emergency a") == []
    finally:
        context.close()


def test_every_console_page_meets_wcag_aa(chromium, line, manager):
    username, password = manager
    carer_ctx = chromium.new_context()
    context = chromium.new_context(bypass_csp=True, viewport=WIDTHS["desktop"])
    carer, page = carer_ctx.new_page(), context.new_page()
    try:
        page.goto(f"{line.duty_url}/login")
        assert violations(page) == [], "login"
        line.sign_in(page, username, password)
        known = set(page.locator("#queue-body tr[data-ref]").evaluate_all(
            "rows => rows.map(r => r.dataset.ref)"))

        open_chat(carer, line)
        say(carer, "I want to end my life tonight")
        expect(page.locator("#queue-body tr[data-ref]")).to_have_count(
            len(known) + 1, timeout=QUEUE_TIMEOUT_MS)
        assert violations(page) == [], "queue"

        refs = set(page.locator("#queue-body tr[data-ref]").evaluate_all(
            "rows => rows.map(r => r.dataset.ref)"))
        [ref] = refs - known
        page.goto(f"{line.duty_url}/duty/e/{ref}")
        expect(page.locator("#transcript .msg.person").first).to_be_visible(
            timeout=REPLY_TIMEOUT_MS)
        assert violations(page) == [], "conversation"
        page.click("button:has-text('Take over')")
        expect(page.locator("#esc-status")).to_have_text("active")
        assert violations(page) == [], "conversation, taken over"

        line.add_comment("a11y-" + ref, "The person I spoke to listened.\nThank you.")
        # The report: the last full month (the page's default, likely empty here), and a
        # range with today's conversations in it, so its tables and plots are drawn.
        today = dt.datetime.now(ZoneInfo(line.settings.tz_line)).date()
        report = (f"/duty/report?from={today - dt.timedelta(days=1)}"
                  f"&to={today + dt.timedelta(days=1)}")
        for path in ("/duty/sanctuary", "/duty/rota", "/duty/blocks", "/duty/feedback",
                     "/duty/report", report):
            page.goto(f"{line.duty_url}{path}")
            assert violations(page) == [], path
            if path == "/duty/feedback":
                expect(page.locator("#comments .comment-text")).to_contain_text("listened")
        expect(page.locator("section#contacts_by_hour svg")).to_have_count(1)
        # The comments page is reached from the console's navigation, by keyboard.
        page.goto(f"{line.duty_url}/duty")
        link = page.get_by_role("navigation", name="Console").get_by_role(
            "link", name="Feedback comments")
        link.focus()
        page.keyboard.press("Enter")
        page.wait_for_url(f"{line.duty_url}/duty/feedback")
        expect(page.get_by_role("heading", level=1)).to_have_text("Feedback in people's own words")
        page.set_viewport_size(WIDTHS["phone"])
        for path in ("/duty", f"/duty/e/{ref}", "/duty/rota", "/duty/feedback", report):
            page.goto(f"{line.duty_url}{path}")
            assert violations(page) == [], f"{path} (phone)"
    finally:
        carer_ctx.close()
        context.close()
