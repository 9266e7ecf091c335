"""Carer mode in a real browser (docs/carers.md): the start choice "I'm worried about
someone", the welcome's topics as choices, pressed by keyboard, and the start choice gone
once the conversation has begun (and back for a new chat)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from .test_accessibility import violations
from .test_browser import REPLY_TIMEOUT_MS, open_chat

pytestmark = pytest.mark.slow


def test_a_carer_starts_with_the_button_and_picks_a_topic(chromium, line):
    context = chromium.new_context(bypass_csp=True)  # axe is injected below
    page = context.new_page()
    try:
        open_chat(page, line)
        start = page.locator("#start-carer")
        expect(start).to_be_visible()
        assert violations(page) == []
        start.click()
        expect(page.locator("#transcript .msg.me").last).to_contain_text(
            "I'm worried about someone")
        expect(page.locator("#start-choices")).to_be_hidden()
        welcome = page.locator("#transcript .msg.assistant").last
        expect(welcome).to_contain_text("automated assistant, not a person",
                                        timeout=REPLY_TIMEOUT_MS)
        choices = page.locator("#transcript .quick-replies button")
        expect(choices).to_have_count(6)
        assert violations(page) == []
        # By keyboard: Shift+Tab from the message box reaches the last choice first.
        page.locator("#message").focus()
        for _ in range(6):
            page.keyboard.press("Shift+Tab")
        expect(page.locator("#transcript .quick-replies button").first).to_be_focused()
        page.keyboard.press("Enter")
        expect(page.locator("#transcript .msg.me").last).to_contain_text("What to do tonight")
        expect(page.locator("#transcript .msg.assistant").last).to_contain_text(
            "999", timeout=REPLY_TIMEOUT_MS)
        expect(page.locator("#transcript .msg.assistant", has_text="ask them directly")
               ).to_have_count(1)

        page.click("#end-chat")
        expect(page.locator("#start-choices")).to_be_hidden()
        page.click("#new-chat")
        expect(page.locator("#start-carer")).to_be_visible()
    finally:
        context.close()
