"""Take the duty console's screenshots in docs/ from the real line in Debian's Chromium.

    PYTHONPATH=. .venv/bin/python scripts/screenshots.py [--out docs]

Starts the line as the browser tests do (``tests/browser/harness.py``: Rasa server with the
trained model, action server, duty service, a temporary SQLite database and a copy of
``data/rota/rota.yml``), has a carer write an urgent message in the web chat, and signs in a
duty manager who takes the conversation over. Writes:

- ``console-queue.png``: the queue with the urgent conversation in it;
- ``console-conversation.png``: the conversation view after the take-over and a reply;
- ``console-rota.png``: the rota page (who is on call now, shifts, masked numbers).

Every person and message is invented; nothing leaves this machine. Needs the trained model
(``make train``) and Chromium (``bash scripts/ensure-chromium``).
"""

from __future__ import annotations

import argparse
import secrets
import sys
import tempfile
from pathlib import Path

import requests
from playwright.sync_api import expect, sync_playwright

from tests.browser.harness import Line, ensure_chromium, launch_chromium

ROOT = Path(__file__).resolve().parents[1]
WAIT_MS = 60_000
CARER_MESSAGE = "My son keeps saying he wants to kill himself and I don't know how to help him"
STAFF_REPLY = "Hello, I'm Sam from the crisis team. Is your son with you right now?"
CARER_ANSWER = "Yes he's in the next room, he's quiet"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(ROOT / "docs"), help="folder for the PNGs (default docs/)")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    why = ensure_chromium()
    if why is not None:
        print(f"Chromium is not available: {why}", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="line-screenshots-") as tmp:
        line = Line(Path(tmp))
        print("starting the line (about a minute)...", file=sys.stderr)
        line.start()
        try:
            password = secrets.token_urlsafe(18)
            line.add_staff("sam.manager", password, "duty_manager", "Sam")
            # A second, lower-level request in the queue, through the REST channel.
            requests.post(f"{line.rasa_url}/webhooks/rest/webhook", timeout=60, json={
                "sender": "screenshot-support", "message": "can I talk to a real person please"})
            with sync_playwright() as p:
                browser = launch_chromium(p)
                try:
                    shoot(browser, line, password, out)
                finally:
                    browser.close()
        finally:
            line.stop()
    return 0


def shoot(browser, line: Line, password: str, out: Path) -> None:
    carer = browser.new_context(viewport={"width": 420, "height": 800}).new_page()
    console = browser.new_context(viewport={"width": 1200, "height": 900}).new_page()

    carer.goto(f"{line.duty_url}/")
    expect(carer.locator("#status")).to_contain_text("Connected", timeout=WAIT_MS)
    carer.fill("#message", CARER_MESSAGE)
    carer.press("#message", "Enter")
    expect(carer.locator("#transcript .msg.assistant")).not_to_have_count(0, timeout=WAIT_MS)

    console.goto(f"{line.duty_url}/login")
    console.fill("#username", "sam.manager")
    console.fill("#password", password)
    console.click("button[type=submit]")
    console.wait_for_url(f"{line.duty_url}/duty")
    row = console.locator("#queue-body tr[data-ref]").filter(has_text="socketio").first
    expect(row).to_be_visible(timeout=WAIT_MS)
    console.screenshot(path=str(out / "console-queue.png"))
    print(f"wrote {out / 'console-queue.png'}", file=sys.stderr)

    row.locator("a").click()
    console.click("button:has-text('Take over')")
    expect(console.locator("#esc-status")).to_have_text("active")
    expect(carer.locator("#transcript .msg.staff")).not_to_have_count(0, timeout=WAIT_MS)
    console.fill("#reply-text", STAFF_REPLY)
    console.click("button:has-text('Send reply')")
    expect(carer.locator("#transcript .msg.staff").last).to_contain_text("Is your son", timeout=WAIT_MS)
    carer.fill("#message", CARER_ANSWER)
    carer.press("#message", "Enter")
    expect(console.locator("#transcript .msg.person").last).to_contain_text("next room", timeout=WAIT_MS)
    console.evaluate("document.activeElement && document.activeElement.blur()")
    console.screenshot(path=str(out / "console-conversation.png"), full_page=True)
    print(f"wrote {out / 'console-conversation.png'}", file=sys.stderr)

    console.goto(f"{line.duty_url}/duty/rota")
    console.locator("#team-peer_workers details").first.evaluate("d => d.open = true")
    console.screenshot(path=str(out / "console-rota.png"), full_page=True)
    print(f"wrote {out / 'console-rota.png'}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
