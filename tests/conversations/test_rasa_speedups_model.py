"""With the trained model, Rasa's own methods and bot.rasa_runtime.speedups' give the same answers.

The unit tests compare each speed-up with Rasa's method on made-up inputs; this runs the real
model graph both ways: the intent, its confidence, the whole intent ranking and the entities
of every message, and the next action the policies predict, must be identical.
"""

from __future__ import annotations

import asyncio

import pytest

from bot.train import model_path

pytestmark = pytest.mark.slow

TEXTS = [
    "hi",
    "I feel really low tonight and I don't know what to do",
    "is anything open in Leeds now",
    "is there anywhere open near Taunton tonight",
    "I'm worried about my son, what can I do to help him",
    "can I talk to a real person",
    "I don't want to be here anymore",
    "no",
    "thanks 🙏",
    "?",
    "what's the weather like " * 20,  # longer than any training example
]


@pytest.fixture(scope="module")
def agent():
    from rasa.core.agent import Agent

    from bot.rasa_runtime import speedups as rasa_speedups

    assert model_path().exists(), "no model for the current inputs: run `make test`"
    rasa_speedups.install()
    return Agent.load(str(model_path()))


def _answers(agent) -> list[tuple]:
    from rasa.core.channels.channel import UserMessage
    from rasa.shared.core.events import ActionExecuted, UserUttered
    from rasa.shared.core.trackers import DialogueStateTracker

    loop = asyncio.new_event_loop()
    try:
        seen = []
        for text in TEXTS:
            parsed = loop.run_until_complete(
                agent.processor.parse_message(UserMessage(text, sender_id="speedups")))
            tracker = DialogueStateTracker.from_events(
                "speedups", [ActionExecuted("action_listen"), UserUttered(text, parsed)],
                slots=agent.domain.slots)
            prediction = agent.processor._predict_next_with_tracker(tracker)
            seen.append((
                parsed["intent"]["name"], parsed["intent"]["confidence"],
                [(r["name"], r["confidence"]) for r in parsed.get("intent_ranking", [])],
                [(e["entity"], e["value"], e.get("start"), e.get("end"))
                 for e in parsed.get("entities", [])],
                prediction.max_confidence_index, prediction.policy_name,
            ))
        return seen
    finally:
        loop.close()


def test_the_speedups_give_the_models_own_answers(agent):
    from rasa.core.policies.rule_policy import RulePolicy
    from rasa.engine.runner.dask import DaskGraphRunner
    from rasa.utils.tensorflow.models import RasaModel

    from bot.rasa_runtime import speedups as fast

    patches = [(DaskGraphRunner, "run", fast.rasa_graph_run, fast._run_graph),
               (RulePolicy, "_get_possible_keys", fast.rasa_get_possible_keys,
                fast._get_possible_keys),
               (RasaModel, "_rasa_predict", fast.rasa_predict, fast._rasa_predict)]
    try:
        for cls, name, own, _ in patches:
            setattr(cls, name, own)
        expected = _answers(agent)
    finally:
        for cls, name, _, ours in patches:
            setattr(cls, name, ours)
    calls = []
    flat = fast._flat_call

    def counting(step):
        found = flat(step)
        calls.append(found is not None)
        return found

    fast._flat_call = counting
    try:
        assert _answers(agent) == expected
    finally:
        fast._flat_call = flat
    # The classifier really took the flat call (not Rasa's, as a fallback) for every message.
    assert calls and all(calls)


def test_the_nlu_thread_gives_the_models_own_answers(agent):
    """The real pipeline (spaCy, TensorFlow) parsed in the NLU thread: the same answers."""
    import threading

    from rasa.core.processor import MessageProcessor

    from bot.rasa_runtime import nluthread

    nluthread.install()
    assert MessageProcessor.parse_message is nluthread.parse_message
    threads = []
    own = nluthread.rasa_parse_with_graph

    def recording(*args, **kwargs):
        threads.append(threading.current_thread().name)
        return own(*args, **kwargs)

    nluthread.rasa_parse_with_graph = recording
    try:
        in_thread = _answers(agent)
    finally:
        nluthread.rasa_parse_with_graph = own
    assert threads and all(t.startswith(nluthread.THREAD_NAME) for t in threads)
    assert len(threads) == len(TEXTS)  # each message parsed once, not again by Rasa's code
    MessageProcessor.parse_message = nluthread.rasa_parse_message
    MessageProcessor._parse_message_with_graph = own
    try:
        assert _answers(agent) == in_thread
    finally:
        MessageProcessor.parse_message = nluthread.parse_message
        MessageProcessor._parse_message_with_graph = nluthread._parse_message_with_graph


def test_the_nlu_process_gives_the_models_own_answers(agent, monkeypatch):
    """The real pipeline parsed in the NLU process (the model loaded there from the same
    file): the same answers; and with the process killed, the thread gives them again."""
    import os
    import signal
    import time

    from bot import settings as settings_module
    from bot.rasa_runtime import nluproc, nluthread

    nluthread.install()
    expected = _answers(agent)  # in the thread
    monkeypatch.setenv(nluproc.ENV_FLAG, "1")
    settings_module.reset()
    in_thread = []
    own = nluthread.rasa_parse_with_graph

    def recording(*args, **kwargs):
        in_thread.append(args[1].text)
        return own(*args, **kwargs)

    monkeypatch.setattr(nluthread, "rasa_parse_with_graph", recording)
    try:
        nluproc.for_processor(agent.processor)
        child = nluproc._current
        assert child is not None and child.wait_ready(240), "the NLU process did not load"
        assert _answers(agent) == expected
        assert in_thread == []  # every message was parsed in the process
        os.kill(child.pid, signal.SIGKILL)
        for _ in range(100):
            if child.dead:
                break
            time.sleep(0.05)
        assert _answers(agent) == expected
        assert in_thread == [t.strip() for t in TEXTS]  # UserMessage strips the text
    finally:
        nluproc.stop()
        monkeypatch.delenv(nluproc.ENV_FLAG)
        settings_module.reset()
