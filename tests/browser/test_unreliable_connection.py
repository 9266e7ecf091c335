"""A carer on a flaky phone connection, in a real browser against the real line.

The test cuts the page's connection to the Rasa server (its WebSocket closed and every new
socket.io request refused, as when a phone loses signal) and gives it back. A message written
while cut is kept, marked "not sent yet", and sent (and answered, with its risk check) once
the session is back; a staff message written while the page is away reaches it when it
comes back."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import BrowserContext, Page, Route, WebSocketRoute, expect

from .conftest import MANAGER_NAME
from .test_browser import QUEUE_TIMEOUT_MS, REPLY_TIMEOUT_MS, open_chat, say, user_messages

pytestmark = pytest.mark.slow

SOCKET = re.compile(r".*/socket\.io/.*")


class Signal:
    """The page's link to the chat server, which the test can cut and give back."""

    def __init__(self, context: BrowserContext) -> None:
        self.cut = False
        self.sockets: list[tuple[WebSocketRoute, WebSocketRoute]] = []
        context.route_web_socket(SOCKET, self._websocket)
        context.route(SOCKET, self._request)

    def _websocket(self, ws: WebSocketRoute) -> None:
        if self.cut:
            ws.close()
            return
        self.sockets.append((ws, ws.connect_to_server()))

    def _request(self, route: Route) -> None:
        if self.cut:
            route.abort("internetdisconnected")
        else:
            route.continue_()

    def lose(self) -> None:
        self.cut = True
        for page_side, server_side in self.sockets:
            page_side.close()
            server_side.close()
        self.sockets.clear()

    def restore(self) -> None:
        self.cut = False


def pending(page: Page):
    return page.locator("#transcript .msg.me .pending-note")


def test_a_message_written_while_offline_is_kept_then_sent_and_answered(chromium, line):
    context = chromium.new_context()
    signal = Signal(context)
    page = context.new_page()
    try:
        session_id = open_chat(page, line)
        say(page, "hello")
        signal.lose()
        expect(page.locator("#status")).to_contain_text("Connection lost",
                                                       timeout=REPLY_TIMEOUT_MS)
        page.fill("#message", "I want to end my life tonight")
        page.press("#message", "Enter")
        mine = page.locator("#transcript .msg.me").last
        expect(mine).to_contain_text("I want to end my life tonight")
        expect(mine).to_contain_text("Not sent yet")
        expect(page.locator("#status")).to_contain_text("not sent yet")
        # Not sent, and the page does not pretend it was.
        page.wait_for_timeout(1000)
        assert user_messages(line, session_id, 1, timeout=1) == ["hello"]

        signal.restore()
        expect(pending(page)).to_have_count(0, timeout=REPLY_TIMEOUT_MS)
        expect(page.locator("#transcript")).to_contain_text("116 123", timeout=REPLY_TIMEOUT_MS)
        assert user_messages(line, session_id, 2) == ["hello", "I want to end my life tonight"]
    finally:
        context.close()


def test_a_pending_message_survives_a_reload_and_is_sent_once(chromium, line):
    context = chromium.new_context()
    signal = Signal(context)
    page = context.new_page()
    try:
        session_id = open_chat(page, line)
        signal.lose()
        expect(page.locator("#status")).to_contain_text("Connection lost",
                                                       timeout=REPLY_TIMEOUT_MS)
        page.fill("#message", "who is open tonight for carers")
        page.press("#message", "Enter")
        expect(pending(page)).to_have_count(1)
        signal.restore()
        page.reload()
        expect(pending(page)).to_have_count(0, timeout=REPLY_TIMEOUT_MS)
        expect(page.locator("#transcript .msg.assistant")).not_to_have_count(
            0, timeout=REPLY_TIMEOUT_MS)
        page.wait_for_timeout(1500)
        assert user_messages(line, session_id, 1) == ["who is open tonight for carers"]
        expect(page.locator("#transcript .msg.me")).to_have_count(1)
    finally:
        context.close()


def test_staff_messages_written_while_the_page_was_away_reach_it(chromium, line, manager):
    username, password = manager
    carer_ctx, staff_ctx = chromium.new_context(), chromium.new_context()
    signal = Signal(carer_ctx)
    carer, console = carer_ctx.new_page(), staff_ctx.new_page()
    try:
        console.goto(f"{line.duty_url}/login")
        line.sign_in(console, username, password)
        known = set(console.locator("#queue-body tr[data-ref]").evaluate_all(
            "rows => rows.map(r => r.dataset.ref)"))

        open_chat(carer, line)
        say(carer, "I want to end my life tonight")
        expect(console.locator("#queue-body tr[data-ref]")).to_have_count(
            len(known) + 1, timeout=QUEUE_TIMEOUT_MS)
        [ref] = set(console.locator("#queue-body tr[data-ref]").evaluate_all(
            "rows => rows.map(r => r.dataset.ref)")) - known
        console.goto(f"{line.duty_url}/duty/e/{ref}")
        console.click("button:has-text('Take over')")
        expect(console.locator("#esc-status")).to_have_text("active")
        expect(carer.locator("#transcript .msg.staff")).to_have_count(1, timeout=REPLY_TIMEOUT_MS)

        # The carer's phone loses signal; the manager writes meanwhile.
        signal.lose()
        expect(carer.locator("#status")).to_contain_text("Connection lost",
                                                        timeout=REPLY_TIMEOUT_MS)
        console.fill("#reply-text", "I'm Sam. Are you somewhere safe right now?")
        console.click("button:has-text('Send reply')")
        expect(console.locator("#reply-status")).to_have_text("Reply sent.")
        carer.wait_for_timeout(1000)
        expect(carer.locator("#transcript .msg.staff")).to_have_count(1)

        signal.restore()
        # Back: the message is there, once, from the manager by name.
        expect(carer.locator("#transcript .msg.staff")).to_have_count(2, timeout=REPLY_TIMEOUT_MS)
        last = carer.locator("#transcript .msg.staff").last
        expect(last).to_contain_text("Are you somewhere safe right now?")
        expect(last).to_contain_text(f"{MANAGER_NAME} (staff)")
        # And after a reload, still once.
        carer.reload()
        expect(carer.locator("#status")).to_contain_text("Connected", timeout=REPLY_TIMEOUT_MS)
        carer.wait_for_timeout(1500)
        expect(carer.locator("#transcript .msg.staff")).to_have_count(2)
    finally:
        carer_ctx.close()
        staff_ctx.close()
