"""The web chat and the duty console in a real browser, against the real line.

What a carer and a duty manager would notice: the chat survives a reload and forgets
everything when ended; quick exit leaves no way back; an urgent message reaches the console's
queue by itself, and a member of staff can take the conversation over and talk with the
carer, each seeing the other's messages without reloading.
"""

from __future__ import annotations

import json
import re
import time

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import create_engine, select

from bot.duty.transcripts import RASA_EVENTS

from .conftest import MANAGER_NAME

pytestmark = pytest.mark.slow

REPLY_TIMEOUT_MS = 60_000  # a loaded 2-core machine; replies normally take well under a second
QUEUE_TIMEOUT_MS = 30_000  # the queue polls every 3 s
SESSION_KEY = "linechat.session_id"


def open_chat(page: Page, line) -> str:
    page.goto(f"{line.duty_url}/")
    expect(page.locator("#status")).to_contain_text("Connected", timeout=REPLY_TIMEOUT_MS)
    return page.evaluate(f"sessionStorage.getItem('{SESSION_KEY}')")


def say(page: Page, text: str, settle_s: float = 1.5) -> None:
    """Send ``text`` and wait for the reply: at least one new message from the assistant or
    staff, then no further one for ``settle_s`` (a reply is often several messages)."""
    replies = page.locator("#transcript .msg.assistant, #transcript .msg.staff")
    before = replies.count()
    page.fill("#message", text)
    page.press("#message", "Enter")
    expect(page.locator("#transcript .msg.me").last).to_have_text(re.compile(re.escape(text)))
    expect(replies).not_to_have_count(before, timeout=REPLY_TIMEOUT_MS)
    count, still_since = replies.count(), time.monotonic()
    deadline = still_since + REPLY_TIMEOUT_MS / 1000
    while time.monotonic() - still_since < settle_s and time.monotonic() < deadline:
        time.sleep(0.1)
        now = replies.count()
        if now != count:
            count, still_since = now, time.monotonic()


def user_messages(line, sender_id: str, expected: int, timeout: float = 20.0) -> list[str]:
    """The person's messages in the tracker store; Rasa saves a turn after its replies go
    out, so wait (up to ``timeout``) until ``expected`` are there."""
    deadline = time.monotonic() + timeout
    while True:
        found = _user_messages(line, sender_id)
        if len(found) >= expected or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def _user_messages(line, sender_id: str) -> list[str]:
    engine = create_engine(line.db_url, future=True)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                select(RASA_EVENTS.c.data)
                .where(RASA_EVENTS.c.sender_id == sender_id, RASA_EVENTS.c.type_name == "user")
                .order_by(RASA_EVENTS.c.id)
            ).all()
    finally:
        engine.dispose()
    return [json.loads(r.data).get("text") for r in rows]


def test_the_chat_survives_a_reload_and_ending_it_leaves_nothing_behind(chromium, line):
    context = chromium.new_context()
    page = context.new_page()
    try:
        session_id = open_chat(page, line)
        assert session_id and re.fullmatch(r"[0-9a-f]{32}", session_id)
        say(page, "hello")
        shown = page.locator("#transcript .msg").all_inner_texts()

        page.reload()
        expect(page.locator("#status")).to_contain_text("Connected", timeout=REPLY_TIMEOUT_MS)
        # The same conversation, and the same messages on screen.
        assert page.evaluate(f"sessionStorage.getItem('{SESSION_KEY}')") == session_id
        assert page.locator("#transcript .msg").all_inner_texts() == shown
        # Replies still reach this page after the reload (socket.io session persistence).
        say(page, "who is open tonight for carers")
        assert user_messages(line, session_id, 2) == ["hello", "who is open tonight for carers"]

        page.click("#end-chat")
        expect(page.locator("#status")).to_have_text("Chat ended.")
        assert page.evaluate("sessionStorage.length") == 0
        assert page.evaluate("localStorage.length") == 0
        expect(page.locator("#transcript .msg.me, #transcript .msg.assistant")).to_have_count(0)
        expect(page.locator("#transcript .msg.notice")).to_contain_text("Nothing from it is kept")
        assert context.cookies() == []
        # A reload after ending restores nothing and starts a new conversation.
        page.reload()
        expect(page.locator("#status")).to_contain_text("Connected", timeout=REPLY_TIMEOUT_MS)
        expect(page.locator("#transcript .msg")).to_have_count(0)
        assert page.evaluate(f"sessionStorage.getItem('{SESSION_KEY}')") not in (None, session_id)
    finally:
        context.close()


def test_quick_exit_replaces_the_page_and_its_history_entry(chromium, line):
    context = chromium.new_context()
    # The neutral page is served by the test, so nothing leaves this machine.
    context.route("https://www.bbc.co.uk/**", lambda route: route.fulfill(
        status=200, content_type="text/html", body="<!doctype html><title>Weather</title><p>Weather</p>"))
    page = context.new_page()
    try:
        page.goto(f"{line.duty_url}/health")  # where the person was before the chat
        session_id = open_chat(page, line)
        say(page, "hello")
        page.click("#quick-exit")
        page.wait_for_url("https://www.bbc.co.uk/weather**")
        expect(page).to_have_title("Weather")

        page.go_back()
        # Back goes to the page before the chat, not to the chat.
        page.wait_for_url(f"{line.duty_url}/health")
        page.go_forward()
        page.wait_for_url("https://www.bbc.co.uk/weather**")
        # And the tab's storage for the chat was cleared: opening the chat again shows nothing.
        new_id = open_chat(page, line)
        expect(page.locator("#transcript .msg")).to_have_count(0)
        assert new_id != session_id
    finally:
        context.close()


def test_an_urgent_message_reaches_the_console_and_staff_take_over(chromium, line, manager):
    username, password = manager
    carer_ctx, staff_ctx = chromium.new_context(), chromium.new_context()
    carer, console = carer_ctx.new_page(), staff_ctx.new_page()
    try:
        console.goto(f"{line.duty_url}/duty")
        console.wait_for_url(f"{line.duty_url}/login")
        line.sign_in(console, username, password)
        expect(console.locator("h1")).to_have_text("Waiting for a person")
        known = set(console.locator("#queue-body tr[data-ref]").evaluate_all(
            "rows => rows.map(r => r.dataset.ref)"))
        console.evaluate("window.__sameDocument = true")

        open_chat(carer, line)
        say(carer, "I want to end my life tonight")
        expect(carer.locator("#transcript")).to_contain_text("116 123")

        # The queue shows the new urgent conversation by itself, without a reload.
        expect(console.locator("#queue-body tr[data-ref]")).to_have_count(
            len(known) + 1, timeout=QUEUE_TIMEOUT_MS)
        refs = set(console.locator("#queue-body tr[data-ref]").evaluate_all(
            "rows => rows.map(r => r.dataset.ref)"))
        [ref] = refs - known
        row = console.locator(f'#queue-body tr[data-ref="{ref}"]')
        expect(row).to_contain_text("Urgent")
        expect(row).to_contain_text("socketio")
        assert console.evaluate("window.__sameDocument") is True

        row.locator("a").click()
        console.wait_for_url(f"{line.duty_url}/duty/e/{ref}")
        transcript = console.locator("#transcript")
        expect(transcript.locator(".msg.person").first).to_contain_text("I want to end my life tonight")
        expect(transcript.locator(".msg.person").first).to_contain_text("risk: urgent")

        console.click("button:has-text('Take over')")
        expect(console.locator(".notice")).to_contain_text("You have taken over this conversation.")
        expect(console.locator("#esc-status")).to_have_text("active")
        # The carer is told a person has joined, by name, and that it is no longer the bot.
        joined = carer.locator("#transcript .msg.staff").last
        expect(joined).to_contain_text(f"{MANAGER_NAME} (staff)", timeout=REPLY_TIMEOUT_MS)
        expect(joined).to_contain_text("talking to a person")

        console.evaluate("window.__sameDocument = true")
        console.fill("#reply-text", "I'm Sam, I'm here with you now. Are you somewhere safe?")
        console.click("button:has-text('Send reply')")
        expect(console.locator("#reply-status")).to_have_text("Reply sent.")
        expect(carer.locator("#transcript .msg.staff").last).to_contain_text(
            "Are you somewhere safe?", timeout=REPLY_TIMEOUT_MS)
        # The staff member's own reply joins the transcript on their page, without a reload.
        expect(transcript.locator(".msg.staff").last).to_contain_text(
            "Are you somewhere safe?", timeout=QUEUE_TIMEOUT_MS)

        # The carer answers; the message reaches the console while it stays on the page.
        bot_replies = carer.locator("#transcript .msg.assistant").count()
        carer.fill("#message", "yes I'm at home, my sister is here")
        carer.press("#message", "Enter")
        expect(transcript.locator(".msg.person").last).to_contain_text(
            "my sister is here", timeout=QUEUE_TIMEOUT_MS)
        assert console.evaluate("window.__sameDocument") is True
        # While a person holds the conversation, the assistant does not answer.
        assert carer.locator("#transcript .msg.assistant").count() == bot_replies
    finally:
        carer_ctx.close()
        staff_ctx.close()
