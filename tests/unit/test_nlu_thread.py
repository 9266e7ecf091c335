"""The NLU pipeline runs in its own thread: the turn's event loop goes on meanwhile.

A stand-in for the model graph blocks its thread (as TensorFlow does) and records where it
ran; Rasa's own ``parse_message`` still wraps the result.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time

import pytest
from rasa.core.channels.channel import UserMessage
from rasa.core.processor import MessageProcessor

from bot import rasa_runtime
from bot.rasa_runtime import nluthread
from bot.run import child_env, process_env
from bot.settings import load

rasa_runtime.install()  # as python -m bot.rasa_server does


def _processor() -> MessageProcessor:
    processor = object.__new__(MessageProcessor)  # no model: the graph call is replaced
    processor.http_interpreter = None
    processor.domain = None
    return processor


@pytest.fixture
def graph(monkeypatch):
    """A model graph that takes 0.3 s of its thread and says where it ran."""
    calls: list[str] = []

    def parse(self, message, tracker, only_output_properties=True):
        calls.append(threading.current_thread().name)
        time.sleep(0.3)  # blocks its thread, as the classifier's TensorFlow call does
        if message.text == "boom":
            raise RuntimeError("the pipeline failed")
        return {"text": message.text, "intent": {"name": "greet", "confidence": 0.9},
                "entities": []}

    monkeypatch.setattr(nluthread, "rasa_parse_with_graph", parse)
    return calls


def test_it_is_installed_on_rasas_processor():
    assert MessageProcessor.parse_message is nluthread.parse_message
    assert MessageProcessor._parse_message_with_graph is nluthread._parse_message_with_graph


def test_other_turns_go_on_while_a_message_is_parsed(graph):
    async def main():
        ticks = 0
        parsing = asyncio.create_task(_processor().parse_message(UserMessage("hi", sender_id="a")))
        while not parsing.done():
            await asyncio.sleep(0.01)
            ticks += 1
        return await parsing, ticks

    parsed, ticks = asyncio.run(main())
    assert parsed["intent"] == {"name": "greet", "confidence": 0.9}
    assert ticks >= 10  # the loop kept running through the 0.3 s parse
    assert len(graph) == 1 and graph[0].startswith(nluthread.THREAD_NAME)  # parsed once, there


def test_messages_are_parsed_one_at_a_time_in_one_thread(graph):
    async def main():
        processor = _processor()
        started = time.monotonic()
        results = await asyncio.gather(*(
            processor.parse_message(UserMessage(f"message {n}", sender_id=str(n)))
            for n in range(3)))
        return results, time.monotonic() - started

    results, took = asyncio.run(main())
    assert [r["text"] for r in results] == ["message 0", "message 1", "message 2"]
    assert len(set(graph)) == 1  # one thread: the pipeline's components never run side by side
    assert took >= 0.85


def test_a_pipeline_error_reaches_the_turn(graph):
    with pytest.raises(RuntimeError, match="the pipeline failed"):
        asyncio.run(_processor().parse_message(UserMessage("boom", sender_id="a")))


def test_a_parse_outside_parse_message_is_rasas_own(graph):
    processor = _processor()
    parsed = processor._parse_message_with_graph(UserMessage("direct", sender_id="a"), None)
    assert parsed["text"] == "direct"
    assert graph == [threading.current_thread().name]  # no NLU thread for a direct call


def test_tensorflow_gets_one_thread_in_the_rasa_server_only():
    env = child_env(load({}), base={})
    rasa, actions, duty = (process_env(name, env) for name in ("rasa", "actions", "duty"))
    assert rasa["TF_INTRA_OP_PARALLELISM_THREADS"] == "1"
    assert rasa["TF_INTER_OP_PARALLELISM_THREADS"] == "1"
    # Set for any `rasa` command, they make it import TensorFlow: the action server has none.
    for other in (actions, duty):
        assert not any(name.startswith("TF_INT") for name in other)
    told = child_env(load({}), base={"TF_INTRA_OP_PARALLELISM_THREADS": "4"})
    assert process_env("rasa", told)["TF_INTRA_OP_PARALLELISM_THREADS"] == "4"
    assert "TF_INTRA_OP_PARALLELISM_THREADS" not in process_env("actions", told)


def test_the_action_server_starts_without_tensorflow(tmp_path):
    """What bot.run starts as the action server, with bot.run's environment: no TensorFlow
    loaded (its memory stays about a quarter of what it would be)."""
    import subprocess
    import sys

    env = process_env("actions", child_env(load({}), base=dict(os.environ)))
    probe = ("import sys, rasa.__main__ as m; from rasa.utils.tensorflow import environment; "
             "environment.setup_tf_environment(); print('tensorflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True,
                         text=True, timeout=120, check=True).stdout.strip().splitlines()[-1]
    assert out == "False"
