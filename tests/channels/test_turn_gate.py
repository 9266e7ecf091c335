"""The turn gate: a few turns at a time, a message showing risk before every ordinary one."""

from __future__ import annotations

import asyncio
import threading

import pytest
from rasa.core.channels.channel import CollectingOutputChannel, UserMessage

from bot.channels import gate as gate_module
from bot.channels.failsafe import run_turn
from bot.channels.gate import ORDINARY, RISK, TurnGate, gated, priority_of
from bot.sms.keywords import FAILSAFE_REPLY


def _message(text: str, sender: str) -> UserMessage:
    return UserMessage(text, CollectingOutputChannel(), sender_id=sender, input_channel="rest")


async def test_a_risk_message_overtakes_the_queue_and_ordinary_ones_keep_their_order():
    gate = TurnGate(1)
    release_first = asyncio.Event()
    started: list[str] = []

    async def agent(message: UserMessage) -> None:
        started.append(message.sender_id)
        if message.sender_id == "first":
            await release_first.wait()
        await message.output_channel.send_text_message(message.sender_id, "ok")

    turn = gated(agent, gate)
    first = asyncio.create_task(turn(_message("hello", "first")))
    await asyncio.sleep(0.01)
    waiting = [asyncio.create_task(turn(_message(f"can't sleep {i}", f"plain{i}")))
               for i in range(3)]
    await asyncio.sleep(0.01)
    risky = asyncio.create_task(turn(_message("I want to end my life tonight", "risky")))
    await asyncio.sleep(0.01)
    assert started == ["first"]  # one slot: everyone else waits
    assert gate.waiting == 4
    release_first.set()
    await asyncio.gather(first, risky, *waiting)
    assert started == ["first", "risky", "plain0", "plain1", "plain2"]
    assert gate.running == 0 and gate.waiting == 0


async def test_the_answer_to_are_you_safe_goes_first_too():
    # "no" shows nothing on its own; after a risk message in the same conversation it is the
    # most urgent answer there is.
    gate_module.reset()
    gate = TurnGate(1)
    release_first = asyncio.Event()
    started: list[str] = []

    async def agent(message: UserMessage) -> None:
        started.append(f"{message.sender_id}:{message.text}")
        if message.text == "hello":
            await release_first.wait()

    turn = gated(agent, gate)
    await turn(_message("I want to end my life", "person"))  # rated risk, remembered
    first = asyncio.create_task(turn(_message("hello", "other")))
    await asyncio.sleep(0.01)
    plain = asyncio.create_task(turn(_message("no", "stranger")))
    await asyncio.sleep(0.01)
    answer = asyncio.create_task(turn(_message("no", "person")))
    await asyncio.sleep(0.01)
    release_first.set()
    await asyncio.gather(first, plain, answer)
    assert started[2:] == ["person:no", "stranger:no"]
    gate_module.reset()


async def test_no_more_turns_than_slots_run_at_once():
    gate = TurnGate(3)
    running = peak = 0

    async def agent(message: UserMessage) -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.01)
        running -= 1

    await asyncio.gather(*(gated(agent, gate)(_message("hi", f"p{i}")) for i in range(12)))
    assert peak == 3
    assert gate.running == 0


async def test_a_cancelled_waiter_never_keeps_a_slot():
    gate = TurnGate(1)
    await gate.acquire()
    queued = asyncio.create_task(gate.acquire())
    await asyncio.sleep(0.01)
    queued.cancel()
    await asyncio.gather(queued, return_exceptions=True)
    gate.release()
    # The slot came back: a newcomer gets it at once.
    await asyncio.wait_for(gate.acquire(), 1)
    gate.release()
    assert gate.running == 0


async def test_a_turn_in_another_threads_loop_gets_the_slot_when_it_frees():
    # The SMS channel's turns run in their own thread and loop; web chat in the server's.
    gate = TurnGate(1)
    await gate.acquire()
    got_it = threading.Event()

    def other_thread() -> None:
        async def main() -> None:
            async with gate.slot(RISK):
                got_it.set()

        asyncio.run(main())

    thread = threading.Thread(target=other_thread)
    thread.start()
    await asyncio.sleep(0.05)
    assert not got_it.is_set()
    gate.release()
    await asyncio.to_thread(thread.join, 5)
    assert got_it.is_set()
    assert gate.running == 0


def test_priority_comes_from_risk_words_and_the_loaded_detector(monkeypatch):
    assert priority_of("I want to kill myself") == RISK
    assert priority_of("what's open near Taunton tonight") == ORDINARY
    assert priority_of("") == ORDINARY

    class Detector:
        def assess(self, text):
            return type("R", (), {"level": "imminent" if "bridge" in text else "none"})()

    monkeypatch.setattr(gate_module.risk, "loaded_detector", lambda: Detector())
    assert priority_of("standing on the bridge now") == RISK
    assert priority_of("standing on the platform now") == ORDINARY


async def test_a_turn_stuck_in_the_queue_still_gets_the_failsafe_reply(monkeypatch):
    gate = TurnGate(1)
    monkeypatch.setattr(gate_module, "shared_gate", lambda: gate)
    monkeypatch.setattr("bot.channels.failsafe.flag_for_staff", lambda *a, **k: None)
    await gate.acquire()  # a turn that never finishes holds the only slot

    async def agent(message: UserMessage) -> None:
        await message.output_channel.send_text_message(message.sender_id, "hello")

    message = _message("hello", "stuck")
    reason = await run_turn(message, agent, timeout_s=0.2, channel="rest")
    assert reason == "timeout"
    assert [m["text"] for m in message.output_channel.messages] == [FAILSAFE_REPLY]
    gate.release()  # the late turn runs when the slot frees, and its answer follows
    for _ in range(100):
        if len(message.output_channel.messages) == 2:
            break
        await asyncio.sleep(0.01)
    assert [m["text"] for m in message.output_channel.messages] == [FAILSAFE_REPLY, "hello"]


def test_a_gate_needs_a_slot():
    with pytest.raises(ValueError):
        TurnGate(0)
