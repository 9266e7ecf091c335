"""The NLU process parses for the Rasa server, and whenever it cannot, the NLU thread does:
not ready, dead, slow, failing, or built from another model. No message is lost between them.

The child here is a stand-in (no model: it answers at once, or hangs, fails or dies on cue) so
that each case is quick; tests/conversations/test_rasa_speedups_model.py runs the real one.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from rasa.core.channels.channel import UserMessage
from rasa.core.processor import MessageProcessor

from bot import rasa_runtime
from bot import settings as settings_module
from bot.rasa_runtime import nluproc, nluthread
from bot.run import process_env
from tests.unit.nlu_stand_in import stand_in

ROOT = Path(__file__).resolve().parents[2]
rasa_runtime.install()  # the NLU thread, as python -m bot.rasa_server installs it


def _processor(model_file: Path, model_id: str = "model-1") -> MessageProcessor:
    processor = object.__new__(MessageProcessor)  # no model: the child is a stand-in
    processor.http_interpreter = None
    processor.domain = None
    processor.model_path = model_file
    processor.model_metadata = SimpleNamespace(model_id=model_id)
    return processor


@pytest.fixture
def model_file(tmp_path):
    path = tmp_path / "model.tar.gz"
    path.write_text("model-1")  # what the stand-in reports as its model
    return path


@pytest.fixture
def in_thread(monkeypatch):
    """The NLU thread's parse, recording what it parsed."""
    texts: list[str] = []

    def parse(self, message, tracker, only_output_properties=True):
        texts.append(message.text)
        if message.text == "boom":
            raise RuntimeError("the pipeline failed")
        return {"text": message.text, "intent": {"name": "greet", "confidence": 0.9},
                "entities": [], "parsed_by": "thread"}

    monkeypatch.setattr(nluthread, "rasa_parse_with_graph", parse)
    return texts


@pytest.fixture
def process_on(monkeypatch):
    monkeypatch.setenv(nluproc.ENV_FLAG, "1")
    settings_module.reset()
    monkeypatch.setattr(nluproc, "_child_target", stand_in)
    monkeypatch.setattr(nluproc, "PARSE_TIMEOUT_S", 0.5)
    monkeypatch.setattr(nluproc, "RESTART_AFTER_S", 0.2)
    yield
    nluproc.stop()
    settings_module.reset()


def ready_process(processor) -> nluproc.NluProcess:
    assert nluproc.for_processor(processor) is None  # starting: the thread parses meanwhile
    assert nluproc.state() == "starting"
    current = nluproc._current
    assert current is not None and current.wait_ready(60)
    assert nluproc.for_processor(processor) is current
    return current


def parse(processor, text: str) -> dict:
    return asyncio.run(processor.parse_message(UserMessage(text, sender_id="p1")))


def test_messages_are_parsed_in_the_process_once_it_is_ready(process_on, in_thread, model_file):
    processor = _processor(model_file)
    assert parse(processor, "before")["parsed_by"] == "thread"  # still loading
    child = ready_process(processor)
    parsed = parse(processor, "hello")
    assert parsed["parsed_by"] == child.pid != os.getpid()
    # Rasa's own parse_message still wrapped the answer.
    assert parsed["intent"]["name"] == "greet" and parsed["text"] == "hello"
    assert in_thread == ["before"]
    assert nluproc.state() == "process"


def test_a_stuck_process_does_not_hold_the_message_up_and_is_replaced(process_on, in_thread,
                                                                       model_file):
    processor = _processor(model_file)
    stuck = ready_process(processor)
    started = time.monotonic()
    assert parse(processor, "hang")["parsed_by"] == "thread"
    assert time.monotonic() - started < 2.5
    assert in_thread == ["hang"]
    for _ in range(50):  # killed, so that the next messages do not wait on it too
        if stuck.dead:
            break
        time.sleep(0.05)
    assert stuck.dead and nluproc.state() == "thread"
    time.sleep(0.3)  # RESTART_AFTER_S
    assert ready_process(processor) is not stuck


def test_a_burst_beyond_what_may_wait_on_the_process_goes_to_the_thread(
        process_on, in_thread, model_file, monkeypatch):
    monkeypatch.setattr(nluproc, "MAX_IN_FLIGHT", 2)
    processor = _processor(model_file)
    child = ready_process(processor)

    async def burst():
        return await asyncio.gather(*(
            processor.parse_message(UserMessage(f"slow-{i}", sender_id=f"p{i}"))
            for i in range(5)))

    answers = asyncio.run(burst())
    assert [a["text"] for a in answers] == [f"slow-{i}" for i in range(5)]
    assert sum(a["parsed_by"] == child.pid for a in answers) == 2
    assert sorted(in_thread) == ["slow-2", "slow-3", "slow-4"]


def test_a_dead_process_loses_nothing_and_is_started_again(process_on, in_thread, model_file):
    processor = _processor(model_file)
    first = ready_process(processor)
    # The message it died on is parsed in the thread, and so is the next until it is back.
    assert parse(processor, "die")["parsed_by"] == "thread"
    assert first.dead and nluproc.state() == "thread"
    assert parse(processor, "while it is down")["parsed_by"] == "thread"
    time.sleep(0.3)  # RESTART_AFTER_S
    second = ready_process(processor)
    assert second is not first and second.pid != first.pid
    assert parse(processor, "back")["parsed_by"] == second.pid
    assert in_thread == ["die", "while it is down"]


def test_a_pipeline_error_reaches_the_turn_as_rasas_own(process_on, in_thread, model_file):
    processor = _processor(model_file)
    ready_process(processor)
    with pytest.raises(RuntimeError, match="the pipeline failed"):
        parse(processor, "boom")
    assert in_thread == ["boom"]  # parsed again in the thread, whose error it is
    assert parse(processor, "next")["parsed_by"] != "thread"  # the process is still used


def test_a_process_built_from_another_model_is_not_used(process_on, in_thread, model_file):
    processor = _processor(model_file, model_id="model-2")  # the server loaded another model
    assert nluproc.for_processor(processor) is None
    current = nluproc._current
    assert not current.wait_ready(5)
    assert parse(processor, "hello")["parsed_by"] == "thread"


def test_parses_from_two_event_loops_at_once_each_get_their_own(process_on, in_thread,
                                                                 model_file):
    """The SMS turn thread and the server's loop both parse: answers go to the right loop."""
    processor = _processor(model_file)
    ready_process(processor)
    results: dict[str, list] = {}

    def turns(name: str) -> None:
        async def main():
            return await asyncio.gather(*(
                processor.parse_message(UserMessage(f"{name}-{i}", sender_id=name))
                for i in range(20)))
        results[name] = asyncio.run(main())

    threads = [threading.Thread(target=turns, args=(n,)) for n in ("sms", "rest")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    for name in ("sms", "rest"):
        assert [r["text"] for r in results[name]] == [f"{name}-{i}" for i in range(20)]
    assert in_thread == []


def test_off_unless_the_rasa_server_is_told(monkeypatch, in_thread, model_file):
    monkeypatch.delenv(nluproc.ENV_FLAG, raising=False)
    settings_module.reset()
    assert nluproc.for_processor(_processor(model_file)) is None
    assert nluproc._current is None and nluproc.state() == "thread"
    assert parse(_processor(model_file), "hello")["parsed_by"] == "thread"
    env = {"PATH": os.environ.get("PATH", "")}
    assert process_env("rasa", env)[nluproc.ENV_FLAG] == "1"
    assert nluproc.ENV_FLAG not in process_env("actions", env)
    assert nluproc.ENV_FLAG not in process_env("duty", {**env, nluproc.ENV_FLAG: "1"})
    assert process_env("rasa", {**env, nluproc.ENV_FLAG: "0"})[nluproc.ENV_FLAG] == "0"


def test_the_process_does_not_outlive_a_killed_server(model_file):
    code = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from bot.rasa_runtime import nluproc\n"
        "from tests.unit.nlu_stand_in import stand_in\n"
        "if __name__ == '__main__':\n"
        "    p = nluproc.NluProcess(Path(sys.argv[1]), 'model-1', target=stand_in)\n"
        "    p.start()\n"
        "    assert p.wait_ready(60)\n"
        "    print(p.pid, flush=True)\n"
        "    time.sleep(60)\n"
    )
    server = subprocess.Popen([sys.executable, "-c", code, str(model_file)], cwd=ROOT,
                              stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        child = int(server.stdout.readline())
        os.kill(server.pid, signal.SIGKILL)  # as make faults kills the Rasa server
        server.wait(10)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and _alive(child):
            time.sleep(0.1)
        assert not _alive(child)
    finally:
        server.kill()


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_a_busy_process_that_still_answers_is_kept(process_on, in_thread, model_file):
    """Slow is not stuck: the messages that waited too long are parsed in the thread, and the
    process, answering the others meanwhile, is not killed."""
    processor = _processor(model_file)
    child = ready_process(processor)

    async def burst():
        return await asyncio.gather(*(
            processor.parse_message(UserMessage(f"slow-{i}", sender_id=f"p{i}"))
            for i in range(8)))  # 0.1 s each in the process; the last wait over 0.5 s

    answers = asyncio.run(burst())
    assert [a["text"] for a in answers] == [f"slow-{i}" for i in range(8)]
    assert in_thread and len(in_thread) < 8
    assert not child.dead
    assert parse(processor, "next")["parsed_by"] == child.pid


def test_a_process_that_never_gets_ready_is_retried_ever_more_slowly(process_on, in_thread,
                                                                      model_file):
    """A child that cannot start (here: another model) must not cost a model load every few
    seconds: each retry waits twice as long as the one before."""
    processor = _processor(model_file, model_id="model-2")
    starts = []
    for _ in range(3):
        nluproc.for_processor(processor)
        current = nluproc._current
        assert not current.wait_ready(5)
        starts.append(current)
        died = current.died_at
        # Not before twice the last wait (RESTART_AFTER_S is 0.2 s here)...
        while time.monotonic() - died < 0.2 * 2 ** len(starts) - 0.05:
            assert nluproc.for_processor(processor) is None
            assert nluproc._current is current
            time.sleep(0.02)
        time.sleep(0.1)
    assert len({id(p) for p in starts}) == 3
    assert parse(processor, "hello")["parsed_by"] == "thread"
