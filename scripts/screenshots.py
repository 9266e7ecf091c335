"""Take the duty console's and the web chat's screenshots in docs/ from the real line in Debian's
Chromium.

    PYTHONPATH=. .venv/bin/python scripts/screenshots.py [--out docs]

Starts the line as the browser tests do (``tests/browser/harness.py``: Rasa server with the
trained model, action server, duty service, a temporary SQLite database and a copy of
``data/rota/rota.yml``). A person makes their own crisis plan in the web chat, agrees that staff
may see it and asks for a person; a carer starts the web chat with "I'm worried about someone"
and reports that their son is at risk (the carers' path: an urgent escalation with the carer as
contact, their consent, what their son has said about sharing); a third conversation asks for a
person through the REST channel. A duty manager signs in (password, then the second factor's
code: ``Line.sign_in``) and takes the carer's conversation over. Writes:

- ``webchat-carer.png``: the web chat at phone size after "I'm worried about someone", the
  carer's welcome with its topic buttons;
- ``console-queue.png``: the queue with the urgent conversation and two requests for a person;
- ``console-conversation.png``: the carer's conversation after the take-over and a reply: the
  summary (the carer as contact), the cared-for person's wishes, the audit download links;
- ``console-plan.png``: the other conversation, their own plan shown beside the summary;
- ``console-blocks.png``: the block list with one sender blocked (from its conversation page);
- ``console-staff.png``: staff accounts, one added from the page and one disabled;
- ``console-rota.png``: the rota page (who is on call now, shifts, masked numbers).

Every person and message is invented; nothing leaves this machine.

Until the carers' path of issue 27 lands again (it was withdrawn before landing: with its
training data the full pipeline's false alarms on everyday messages rose over the limit),
the carer's start button and its steps below are missing and the run stops there. Needs the trained model
(``make train``) and Chromium (``bash scripts/ensure-chromium``).
"""

from __future__ import annotations

import argparse
import re
import secrets
import sys
import tempfile
from pathlib import Path

import requests
from playwright.sync_api import expect, sync_playwright

from tests.browser.harness import Line, ensure_chromium, launch_chromium
from tests.browser.test_browser import open_chat, say

ROOT = Path(__file__).resolve().parents[1]
WAIT_MS = 60_000
PHONE = {"width": 390, "height": 844}
# Tall enough that the conversation box (40% of the height on a phone) holds the carer's
# welcome and all six topics; the picture is cut where the page's content ends.
TALL_PHONE = {"width": 390, "height": 1800}
DESKTOP = {"width": 1200, "height": 900}
MANAGER = "sam.manager"
CARER_MESSAGE = "My son keeps saying he wants to kill himself and I don't know how to help him"
STAFF_REPLY = "Hello, I'm Sam from the crisis team. Thank you for staying with him. How is he now?"
CARER_ANSWER = "He's calmer now, he's here with me watching TV"
# A person's own plan, one answer a step (docs/plan.md), in their own (invented) words.
PLAN_STEPS = (
    "I go quiet and stop texting my friends back",
    "A hot shower, my playlist, a walk round the block",
    "The library cafe, my cousin Jo's kitchen",
    "My sister Kate, she said call any time",
    "My GP surgery, the community mental health team",
    "Ask Kate to come over and stay the night",
)
BLOCK_REASON = "Repeated abusive messages to staff"


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
            line.add_staff(MANAGER, password, "duty_manager", "Sam")
            for username, role, name, house in (
                    ("aisha", "peer_worker", "Aisha", None),
                    ("dev", "peer_worker", "Dev", None),
                    ("iris", "sanctuary_volunteer", "Iris", "taunton-haven")):
                line.add_staff(username, secrets.token_urlsafe(18), role, name, house=house)
            # A request for a person in the queue through the REST channel; blocked later.
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


def wrote(path: Path) -> None:
    print(f"wrote {path}", file=sys.stderr)


def shoot(browser, line: Line, password: str, out: Path) -> None:
    person = browser.new_context(viewport=PHONE).new_page()
    carer = browser.new_context(viewport=TALL_PHONE).new_page()
    console = browser.new_context(viewport=DESKTOP).new_page()

    make_plan_and_ask_for_a_person(person, line)

    # The carer starts with the start choice, so the conversation is on the carers' path.
    open_chat(carer, line)
    carer.click("#start-carer")
    expect(carer.locator("#transcript .quick-replies button")).to_have_count(6, timeout=WAIT_MS)
    carer.wait_for_timeout(500)
    carer.locator("#conversation").evaluate("c => { c.scrollTop = 0; }")
    carer.evaluate("document.activeElement && document.activeElement.blur()")
    bottom = carer.evaluate("Math.ceil(Math.max(...Array.from(document.body.children)"
                            ".map(e => e.getBoundingClientRect().bottom))) + 16")
    carer.screenshot(path=str(out / "webchat-carer.png"),
                     clip={"x": 0, "y": 0, "width": TALL_PHONE["width"], "height": bottom})
    wrote(out / "webchat-carer.png")
    say(carer, CARER_MESSAGE)
    expect(last_reply(carer)).to_contain_text("Are you with them now?")
    say(carer, "yes I'm with him")
    expect(last_reply(carer)).to_contain_text("may I pass on what you've told me")
    say(carer, "yes")  # their own consent to pass on what they said
    expect(last_reply(carer)).to_contain_text("has the person you're worried about said")
    say(carer, "yes")  # what their son has said about sharing with them
    expect(last_reply(carer)).to_contain_text("noted it as what you told me")

    console.goto(f"{line.duty_url}/login")
    line.sign_in(console, MANAGER, password)
    urgent = console.locator("#queue-body tr.level-urgent[data-ref]").filter(has_text="socketio")
    expect(urgent).to_have_count(1, timeout=WAIT_MS)
    asking = console.locator("#queue-body tr.level-support[data-ref]")
    expect(asking).to_have_count(2, timeout=WAIT_MS)
    plan_ref = asking.filter(has=console.locator("td", has_text=re.compile("^socketio$"))
                             ).get_attribute("data-ref")
    rest_ref = asking.filter(has=console.locator("td", has_text=re.compile("^rest$"))
                             ).get_attribute("data-ref")
    console.screenshot(path=str(out / "console-queue.png"))
    wrote(out / "console-queue.png")

    urgent.locator("a").click()
    console.click("button:has-text('Take over')")
    expect(console.locator("#esc-status")).to_have_text("active")
    expect(carer.locator("#transcript .msg.staff")).not_to_have_count(0, timeout=WAIT_MS)
    console.fill("#reply-text", STAFF_REPLY)
    console.click("button:has-text('Send reply')")
    expect(carer.locator("#transcript .msg.staff").last).to_contain_text("How is he now", timeout=WAIT_MS)
    carer.fill("#message", CARER_ANSWER)
    carer.press("#message", "Enter")
    expect(console.locator("#transcript .msg.person").last).to_contain_text("watching TV", timeout=WAIT_MS)
    expect(console.locator("#cared-for-wishes")).to_be_visible()
    expect(console.locator("#audit-export")).to_be_visible()
    console.evaluate("document.activeElement && document.activeElement.blur()")
    console.screenshot(path=str(out / "console-conversation.png"), full_page=True)
    wrote(out / "console-conversation.png")

    console.goto(f"{line.duty_url}/duty/e/{plan_ref}")
    expect(console.locator("#plan-steps")).to_contain_text(PLAN_STEPS[0])
    console.screenshot(path=str(out / "console-plan.png"), full_page=True)
    wrote(out / "console-plan.png")

    console.goto(f"{line.duty_url}/duty/e/{rest_ref}")
    console.fill("#block-reason", BLOCK_REASON)
    console.select_option("#block-hours", "72")
    console.click("#block-form button[type=submit]")
    expect(console.locator("#sender-blocked")).to_be_visible()
    console.goto(f"{line.duty_url}/duty/blocks")
    expect(console.locator("#current-blocks tr[data-block]")).to_have_count(1)
    console.screenshot(path=str(out / "console-blocks.png"), full_page=True)
    wrote(out / "console-blocks.png")

    console.goto(f"{line.duty_url}/duty/staff")
    console.fill("#new-username", "ben")
    console.fill("#new-display-name", "Ben")
    console.select_option("#new-role", "peer_worker")
    console.click("button:has-text('Add account')")
    expect(console.locator("#temporary-password")).to_be_visible()
    # Shown once, never in a picture: back to the list, then disable an account.
    console.goto(f"{line.duty_url}/duty/staff")
    row = console.locator("#accounts tr[data-username=dev]")
    row.locator("summary").click()
    row.locator("button:has-text('Disable')").click()
    expect(console.locator("#accounts tr[data-username=dev]")).to_contain_text("Disabled")
    console.goto(f"{line.duty_url}/duty/staff")
    console.screenshot(path=str(out / "console-staff.png"), full_page=True)
    wrote(out / "console-staff.png")

    console.goto(f"{line.duty_url}/duty/rota")
    console.locator("#team-peer_workers details").first.evaluate("d => d.open = true")
    console.screenshot(path=str(out / "console-rota.png"), full_page=True)
    wrote(out / "console-rota.png")


def last_reply(page):
    return page.locator("#transcript .msg.assistant").last


def make_plan_and_ask_for_a_person(page, line: Line) -> None:
    """Their own plan, step by step, shared with staff (docs/plan.md); then a request for a
    person, which opens the escalation whose page shows the plan."""
    open_chat(page, line)
    say(page, "PLAN")
    expect(last_reply(page)).to_contain_text("make one now")
    say(page, "yes")
    for words in PLAN_STEPS:
        say(page, words)
    expect(last_reply(page)).to_contain_text("may they see it")
    say(page, "yes")
    expect(last_reply(page)).to_contain_text("they will see your plan")
    say(page, "can I talk to a real person please")


if __name__ == "__main__":
    sys.exit(main())
