"""The real Rasa server and action server, started as `make run` starts them.

These are the checks a person would notice: risk is on every parse, an imminent message gets
999 in the first reply and an escalation in the database, the API honours its auth token, and
no message text reaches the logs. With the action server gone, the emergency numbers still go
out.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, Iterator, List, Optional

import pytest
import requests
from sqlalchemy import create_engine, select

from bot import settings as settings_module
from bot.run import commands
from bot.store import migrate
from bot.store.models import Escalation
from bot.train import model_path

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
TOKEN = "integration-test-token"
ACTIONS_TOKEN = "integration-test-actions-token"

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Line:
    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.db_url = f"sqlite:///{tmp / 'line.db'}"
        self.rasa_port = free_port()
        self.actions_port = free_port()
        self.logs = {"rasa": tmp / "rasa.log", "actions": tmp / "actions.log"}
        self.procs: Dict[str, subprocess.Popen] = {}
        self.env = dict(
            os.environ,
            DATABASE_URL=self.db_url,
            ACTIONS_PORT=str(self.actions_port),
            RASA_PORT=str(self.rasa_port),
            PYTHONPATH=str(ROOT),
            RASA_TELEMETRY_ENABLED="false",
            # endpoints.yml: where the Rasa server calls actions, and the token it sends.
            ACTIONS_URL=f"http://127.0.0.1:{self.actions_port}",
            ACTIONS_TOKEN=ACTIONS_TOKEN,
            # As bot.run passes it: the setting, and Rasa's --auth-token below.
            RASA_AUTH_TOKEN=TOKEN,
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.rasa_port}"

    def start(self, name: str) -> None:
        # Exactly what make run starts (bot/run.py), with these settings: the Rasa server on
        # RASA_HOST with --auth-token, the action server with its token check.
        argv = commands(settings_module.load(self.env), model_path())[name]
        log = open(self.logs[name], "ab")
        self.procs[name] = subprocess.Popen(argv, cwd=ROOT, env=self.env, stdout=log, stderr=log)

    def stop(self, name: str) -> None:
        proc = self.procs.pop(name, None)
        if proc and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()

    def wait_ready(self, timeout: float = 180.0) -> None:
        deadline = time.monotonic() + timeout
        checks = [f"{self.url}/status?token={TOKEN}", f"http://127.0.0.1:{self.actions_port}/health"]
        while time.monotonic() < deadline:
            try:
                if all(requests.get(u, timeout=2).status_code == 200 for u in checks):
                    return
            except requests.RequestException:
                pass
            for name, proc in self.procs.items():
                if proc.poll() is not None:
                    raise RuntimeError(f"{name} exited: {self.logs[name].read_text()[-3000:]}")
            time.sleep(1)
        raise TimeoutError("the line did not become ready")

    def parse(self, text: str) -> dict:
        # The token as a header (the line's Rasa server takes it there as well as in ?token=).
        r = requests.post(f"{self.url}/model/parse", json={"text": text}, timeout=30,
                          headers={"Authorization": f"Bearer {TOKEN}"})
        r.raise_for_status()
        return r.json()

    def say(self, sender: str, text: str) -> List[str]:
        r = requests.post(
            f"{self.url}/webhooks/rest/webhook", json={"sender": sender, "message": text},
            headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60,
        )
        r.raise_for_status()
        return [m.get("text", "") for m in r.json()]

    def escalations(self, sender: str) -> List[Escalation]:
        engine = create_engine(self.db_url, future=True)
        with engine.connect() as conn:
            rows = conn.execute(select(Escalation).where(Escalation.conversation_id == sender)).all()
        engine.dispose()
        return rows


@pytest.fixture(scope="module")
def line(tmp_path_factory) -> Iterator[Line]:
    assert model_path().exists(), "no model for the current inputs: run `make test`"
    line = Line(tmp_path_factory.mktemp("line"))
    migrate.upgrade(line.db_url)
    line.start("actions")
    line.start("rasa")
    try:
        line.wait_ready()
        yield line
    finally:
        for name in list(line.procs):
            line.stop(name)


def test_parse_shows_risk_and_sets_the_intent_for_imminent_risk(line):
    parsed = line.parse("I've just swallowed everything in my medicine cabinet")
    assert parsed["risk"]["level"] == "imminent"
    assert parsed["intent"]["name"] == "risk_imminent"
    assert isinstance(parsed["risk"]["signals"], list) and parsed["risk"]["signals"]


def test_parse_of_an_everyday_message_has_no_risk(line):
    parsed = line.parse("what time does the chemist on the high street close")
    assert parsed["risk"] == {"level": "none", "signals": []} or parsed["risk"]["level"] == "none"


def test_idiom_is_not_urgent(line):
    assert line.parse("this deadline is killing me lol")["risk"]["level"] in ("none", "concern")


def test_api_refuses_a_missing_token(line):
    r = requests.post(f"{line.url}/model/parse", json={"text": "hello"}, timeout=10)
    assert r.status_code == 401


def test_imminent_message_gets_999_first_and_an_escalation(line):
    replies = line.say("itest-imminent", "im on the bridge and im going to jump")
    assert replies and "999" in replies[0]
    rows = line.escalations("itest-imminent")
    assert len(rows) == 1 and rows[0].level == "imminent" and rows[0].status == "open"


def test_every_imminent_message_of_the_eval_set_gets_999_in_the_first_reply(line):
    from bot.nlu.risk_eval import eval_dir, read_tsv

    path = eval_dir() / "risk_dev.tsv"
    if not path.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{path} missing")
        pytest.skip(f"{path} not found")
    imminent = [row["text"] for row in read_tsv(path) if row.get("imminent") == "yes"]
    assert imminent
    for i, text in enumerate(imminent):
        replies = line.say(f"itest-eval-imminent-{i}", text)
        assert replies and "999" in replies[0], f"item {i}: first reply lacks 999"


def _tracker(line, sender: str) -> dict:
    r = requests.get(f"{line.url}/conversations/{sender}/tracker?token={TOKEN}", timeout=30)
    r.raise_for_status()
    return r.json()


def _all_numbers(replies: List[str]) -> bool:
    joined = " ".join(replies)
    return "999" in joined and "116 123" in joined and "111" in joined


def test_after_an_imminent_message_hi_keeps_the_numbers_not_the_greeting(line):
    greeting = line.say("itest-memory-greeting", "hi")[0]
    replies = line.say("itest-memory", "im on the bridge and im going to jump")
    assert "999" in replies[0] and _all_numbers(replies)
    for text in ("hi", "thanks", "what's the weather like"):
        replies = line.say("itest-memory", text)
        assert greeting not in replies, f"{text!r} got the ordinary greeting"
        assert _all_numbers(replies), f"{text!r}: a reply without the emergency numbers"
    slots = _tracker(line, "itest-memory")["slots"]
    assert slots["risk_level"] == "imminent" and slots["risk_emergency"] is True


def test_a_means_after_thoughts_of_dying_is_imminent_999_first(line):
    line.say("itest-memory-means", "i want to die")
    replies = line.say("itest-memory-means", "i bought some rope")
    assert replies[0].startswith("Please call 999 now")  # the imminent reply, not the urgent one
    rows = line.escalations("itest-memory-means")
    assert len(rows) == 1 and rows[0].level == "imminent"


def test_confirmed_safe_ends_the_emergency_but_not_the_record(line):
    sender = "itest-memory-safe"
    line.say(sender, "ive just taken a whole packet of my tablets")
    asked = line.say(sender, "i'm safe now")
    assert any("are you safe now" in r for r in asked) and _all_numbers(asked)  # asked first
    line.say(sender, "yes")
    slots = _tracker(line, sender)["slots"]
    assert slots["risk_emergency"] is False and slots["risk_level"] == "imminent"
    assert line.say(sender, "hi")[0] == line.say("itest-memory-safe-2", "hi")[0]


def test_a_plan_is_held_back_in_the_emergency_offered_once_safe_and_kept_out_of_rasa(line):
    """Issue 27: the person's own plan through the real Rasa server's REST channel."""
    from bot.plan import flow, sections

    sender = "itest-plan"
    line.say(sender, "ive just taken a whole packet of my tablets")
    assert line.say(sender, "PLAN") == [flow.NOT_NOW]  # never during imminent risk
    line.say(sender, "i'm safe now")
    confirmed = line.say(sender, "yes")
    assert any(r.endswith("write your own plan for hard times: reply PLAN.") for r in confirmed)
    assert line.say(sender, "PLAN") == [flow.OFFER]
    assert line.say(sender, "yes") == [flow.INTRO, sections.question(0)]
    assert line.say(sender, "Quartz-Heron warning sign")[0].endswith(sections.question(1))
    assert line.say(sender, "done") == [flow.ASK_CONSENT]
    assert line.say(sender, "no") == [flow.CONSENT_NO]
    [plan] = line.say(sender, "plan")
    assert "Warning signs: Quartz-Heron warning sign" in plan and "116 123" in plan
    # Plan messages never reached Rasa: not in the tracker (so not in any transcript).
    assert "Quartz-Heron" not in str(_tracker(line, sender)["events"])
    for log in line.logs.values():
        assert "Quartz-Heron" not in log.read_text(errors="replace")


def test_a_risk_answer_while_building_a_plan_reaches_staff_and_the_plan_pauses(line):
    """Risk always wins over the plan, through the real servers: the answer goes to the
    dialogue's risk path, which gives the numbers and records the escalation that alerts
    staff, and only then is the person told the plan is paused."""
    from bot.plan import flow

    sender = "itest-plan-risk"
    assert line.say(sender, "PLAN") == [flow.OFFER]
    line.say(sender, "yes")
    replies = line.say(sender, "i have been thinking about killing myself")
    assert "116 123" in " ".join(replies[:-1]) and replies[-1] == flow.PAUSED
    assert [e.level for e in line.escalations(sender)] == ["urgent"]


def test_urgent_message_gets_numbers_a_person_and_a_safety_question(line):
    replies = line.say("itest-urgent", "i have been thinking about killing myself")
    joined = " ".join(replies)
    assert "116 123" in joined and "111, option 2" in joined
    assert replies[-1].endswith("are you safe right now?")
    assert line.escalations("itest-urgent")[0].level == "urgent"


def test_a_blocked_sender_gets_the_numbers_and_their_urgent_message_still_reaches_staff(
        line, monkeypatch):
    """Issue 27: a block a duty manager made (from an earlier, resolved escalation) answers
    an ordinary message with the emergency numbers and no dialogue turn; an urgent message
    goes through the real risk path: the numbers, a new escalation and its staff alert."""
    from bot.channels.contact_turn import BLOCKED_REPLY
    from bot.escalation import blocks, engine
    from bot.store import db
    from bot.store.models.handoff import AlertJob

    sender = "itest-blocked"
    monkeypatch.setenv("DATABASE_URL", line.db_url)
    settings_module.reset()
    try:
        first = engine.record_escalation(sender, "support", channel="rest")
        engine.resolve(first.ref, "staff:mo", "supported")
        blocks.block(db.get_engine(line.db_url), first.ref, "staff:mo", "abusive messages", 4)
    finally:
        db.dispose_all()
        monkeypatch.undo()
        settings_module.reset()
    time.sleep(1.2)  # the server reads the block list at most once a second
    assert line.say(sender, "hello, what's open tonight") == [BLOCKED_REPLY]
    user_texts = [e.get("text") for e in _tracker(line, sender)["events"] if e["event"] == "user"]
    assert user_texts == []  # no dialogue turn
    replies = line.say(sender, "i have been thinking about killing myself")
    assert _all_numbers(replies) and BLOCKED_REPLY not in replies
    live = [r for r in line.escalations(sender) if r.status != "resolved"]
    assert len(live) == 1 and live[0].level == "urgent"
    engine_ = create_engine(line.db_url, future=True)
    with engine_.connect() as conn:
        alerts = conn.execute(select(AlertJob).where(AlertJob.escalation_id == live[0].id)).all()
    engine_.dispose()
    assert alerts, "no staff alert was scheduled"


def test_asking_for_a_person_gives_an_honest_estimate_in_the_first_reply(line):
    """The action's estimate (slot wait_estimate) reaches utter_human_requested's text through
    the real runtime: no history on a new line, so "I don't know yet" (or, in a gap in the
    example rota, "nobody ... on call"), never a number dressed up as an estimate."""
    replies = line.say("itest-human", "can i talk to a real person please")
    [first] = [r for r in replies if r.startswith("I've asked for one of our team")]
    assert "{" not in first and "None" not in first and "a few minutes" not in first
    assert ("I don't know yet how long it may take. Waiting before you: " in first
            or "Nobody from our team is on call right now" in first), first
    assert "999" in first and "116 123" in first and len(first) <= 306
    assert line.escalations("itest-human")[0].level == "support"


def test_no_message_text_in_the_logs(line):
    secret = "my neighbour zebracorn keeps shouting at night"
    line.say("itest-privacy", secret)
    line.parse(secret)
    time.sleep(0.5)
    for log in line.logs.values():
        assert "zebracorn" not in log.read_text(errors="replace")


def outward_address() -> Optional[str]:
    """This machine's address on its network (no packet is sent), or None without one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("10.255.255.255", 1))
            address = s.getsockname()[0]
        except OSError:
            return None
    return None if address.startswith("127.") else address


def test_neither_server_is_on_the_network_by_default(line):
    address = outward_address()
    if address is None:
        pytest.skip("this machine has no network address besides the loopback")
    for port in (line.rasa_port, line.actions_port):
        with pytest.raises(requests.ConnectionError):
            requests.get(f"http://{address}:{port}/", timeout=5)


def test_with_the_action_server_down_the_person_still_gets_the_emergency_numbers(line):
    line.stop("actions")
    try:
        replies = line.say("itest-no-actions", "i want to die")
        joined = " ".join(replies)
        assert "116 123" in joined and "999" in joined
    finally:
        line.start("actions")
        line.wait_ready()
