"""The action server, started as ``make run`` starts it, answers only the Rasa server.

An attacker who could reach it posted a made-up tracker to ``/webhook`` and so opened an
imminent escalation for a sender who does not exist (the crisis team got a real alert). Here
the same forged call is refused, while the call the Rasa server makes, with the endpoint
configuration from ``endpoints.yml``, is served; and the server is not on the network at all
unless ``ACTIONS_HOST`` says so.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import time

import pytest
import requests
from sqlalchemy import create_engine, select

from bot import settings as settings_module
from bot.run import child_env, commands, process_env
from bot.settings import ROOT
from bot.store import migrate
from bot.store.models import Escalation

DATA = ROOT / "tests" / "actions" / "data"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def outward_address() -> str | None:
    """This machine's address on its network (no packet is sent), or None without one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("10.255.255.255", 1))
            address = s.getsockname()[0]
        except OSError:
            return None
    return None if address.startswith("127.") else address


def forged_call(sender: str) -> dict:
    """What the attacker posted: a tracker whose last message shows imminent risk."""
    events = json.loads((DATA / "urgent_after_greeting.json").read_text())["events"]
    events[-2]["parse_data"]["risk"] = {"level": "imminent", "signals": ["overdose_taken"]}
    events[-2]["parse_data"]["intent"]["name"] = "risk_imminent"
    return {
        "next_action": "action_record_escalation",
        "sender_id": sender,
        "version": "3.6.21",
        "domain": {},
        "tracker": {"sender_id": sender, "slots": {}, "latest_message": events[-2]["parse_data"],
                    "events": events, "paused": False, "followup_action": None,
                    "active_loop": {}, "latest_action_name": None},
    }


@pytest.fixture
def action_server(tmp_path, monkeypatch):
    db_url = f"sqlite:///{tmp_path / 'line.db'}"
    migrate.upgrade(db_url)
    base = {k: v for k, v in os.environ.items()
            if k not in ("ACTIONS_TOKEN", "RASA_AUTH_TOKEN", "ACTIONS_HOST", "ACTIONS_URL",
                         "TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_NUMBER")}
    base.update(DATABASE_URL=db_url, ACTIONS_PORT=str(free_port()),
                RASA_AUTH_TOKEN="action-server-test-token-0123456789")
    s = settings_module.load(base)
    env = child_env(s, base)
    argv = commands(s, tmp_path / "model.tar.gz")["actions"]
    log = open(tmp_path / "actions.log", "ab")
    proc = subprocess.Popen(argv, cwd=ROOT, env=process_env("actions", env), stdout=log,
                            stderr=log, start_new_session=True)
    url = f"http://127.0.0.1:{s.actions_port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if requests.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the action server did not start: "
                            f"{(tmp_path / 'actions.log').read_text()[-2000:]}")
            time.sleep(0.3)
        # The Rasa server reads endpoints.yml with the environment bot.run gives it.
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        yield url, s, db_url
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        log.close()


def escalations(db_url: str, sender: str) -> list:
    engine = create_engine(db_url, future=True)
    with engine.connect() as conn:
        rows = conn.execute(select(Escalation.id).where(Escalation.conversation_id == sender)).all()
    engine.dispose()
    return rows


def test_a_forged_action_call_is_refused_and_the_rasa_servers_call_is_served(action_server):
    from rasa.core.utils import read_endpoints_from_path

    url, _s, db_url = action_server
    forged = requests.post(f"{url}/webhook", json=forged_call("made-up-sender"), timeout=30)
    assert forged.status_code == 401
    wrong = requests.post(f"{url}/webhook", json=forged_call("made-up-sender"), timeout=30,
                          headers={"Authorization": "Bearer guessed"})
    assert wrong.status_code == 401
    assert requests.get(f"{url}/actions", timeout=5).status_code == 401
    assert escalations(db_url, "made-up-sender") == []

    # The Rasa server's own call: its action endpoint as endpoints.yml configures it.
    endpoint = read_endpoints_from_path(ROOT / "endpoints.yml").action
    result = asyncio.run(endpoint.request(json=forged_call("real-person"), method="post",
                                          timeout=30))
    assert any(e.get("name") == "escalation_ref" for e in result["events"])
    assert len(escalations(db_url, "real-person")) == 1
    # The duty service's health probe needs no token.
    assert requests.get(f"{url}/health", timeout=5).json() == {"status": "ok"}


def long_conversation_call(sender: str, turns: int) -> dict:
    """An action call for a session of ``turns`` turns, as big as the line's own are."""
    call = forged_call(sender)
    turn = call["tracker"]["events"]
    call["tracker"]["events"] = [dict(e) for _ in range(turns) for e in turn]
    return call


def test_an_oversize_action_call_is_refused_and_a_long_conversation_is_served(action_server):
    from bot.action_server import MAX_BODY_BYTES

    url, s, db_url = action_server
    auth = {"Authorization": f"Bearer {s.actions_token}", "Content-Type": "application/json"}
    # Over the limit: refused (sanic allowed 100 MB); without the token it is refused too,
    # with 401, before its body is read.
    big = b'{"padding": "' + b"x" * MAX_BODY_BYTES + b'"}'
    assert requests.post(f"{url}/webhook", data=big, headers=auth, timeout=60).status_code == 413
    assert requests.post(f"{url}/webhook", data=big, timeout=60,
                         headers={"Content-Type": "application/json"}).status_code in (401, 413)
    # A long conversation's call (1 MB: some 270 turns of the line's own, at 3.7 KB a turn)
    # is served as before.
    call = long_conversation_call("long-talker", 1500)
    body = json.dumps(call).encode()
    assert 900_000 < len(body) < MAX_BODY_BYTES
    r = requests.post(f"{url}/webhook", data=body, headers=auth, timeout=60)
    assert r.status_code == 200, r.text
    assert any(e.get("name") == "escalation_ref" for e in r.json()["events"])
    assert len(escalations(db_url, "long-talker")) == 1


def test_the_action_server_is_not_on_the_network_by_default(action_server):
    url, s, _db = action_server
    address = outward_address()
    if address is None:
        pytest.skip("this machine has no network address besides the loopback")
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://{address}:{s.actions_port}/health", timeout=5)


def test_a_failed_action_call_answers_without_the_tracker(action_server):
    url, s, _db = action_server
    call = forged_call("broken")
    call["tracker"]["events"] = "not a list"  # the action fails on it
    r = requests.post(f"{url}/webhook", json=call, timeout=30,
                      headers={"Authorization": f"Bearer {s.actions_token}"})
    assert r.status_code >= 400
    assert "i want to end it all" not in r.text

