"""The plan's turn: plan words (PLAN, PLAN EDIT, PLAN DELETE, PLAN SHARE, PLAN PRIVATE) and the
messages of a conversation building its plan are the plan's, unless they show risk
(docs/plan.md).

``plan_first(handler)`` wraps a channel's turn handler beside ``survey_first`` (inside the
turn gate, so the fail-safe's timeout and reply counting cover it; a live survey takes a
message first). An ordinary message costs no query (``bot/plan/live.py``). The replies go back
through the message's own output channel (web chat: choices as quick-reply buttons, and the
plan itself as one message the page can print or copy; SMS: one text, which the outbox sends
in as many parts as it needs). Plan messages never reach Rasa, so the plan's words are not in
the tracker store or the transcript: staff see a plan only when the person agreed
(``bot/plan/reading.py``).

**Risk always wins**: the reading is ``gate.shows_risk`` (the NLU's own detector behind an
over-inclusive word check; unsure counts as risk). A message it reads as urgent or imminent
is handed to the dialogue, which takes the normal risk path, and building pauses (the person
is told after the dialogue's reply). So is every message while a human holds the
conversation, an SMS opt-out word (building ends), and every message when the plan's
database work fails.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Awaitable, Callable, Optional

from rasa.core.channels.channel import OutputChannel, UserMessage

from bot.channels.gate import shows_risk
from bot.escalation.watch import conversation_held
from bot.plan import flow, live, store
from bot.sms import keywords

logger = logging.getLogger(__name__)

Handler = Callable[[UserMessage], Awaitable[Any]]
# Channels whose page draws quick-reply buttons and the plan's print and copy buttons.
WEB_CHANNELS = frozenset({"socketio"})


async def send_reply(output: OutputChannel, recipient: str, reply: flow.Reply,
                     channel: str) -> None:
    if channel in WEB_CHANNELS and reply.plan and hasattr(output, "send_response"):
        # One message, shown whole, marked as the plan (bot/channels/webchat.py bot_payloads).
        await output.send_response(recipient, {"text": reply.text, "plan": True})
    elif channel in WEB_CHANNELS and reply.choices:
        buttons = [{"title": c, "payload": c} for c in reply.choices]
        await output.send_text_with_buttons(recipient, reply.text, buttons)
    else:
        await output.send_text_message(recipient, reply.text)


async def _plan_step(view: live.LivePlans, conversation: str, text: str, channel: str,
                     at_risk: bool) -> Optional[flow.Outcome]:
    """The plan's outcome for the message, or None when it is the dialogue's alone. A message
    that needed the plan's tables is noted in ``view`` (live or not, as they now say)."""
    needed = view.known(conversation, text, at_risk)
    if needed is None:
        needed = await asyncio.to_thread(view.needs_lookup, conversation, text, at_risk)
    if not needed:
        return None
    outcome = await _looked_up(conversation, text, channel, at_risk)
    view.note(conversation, outcome is not None and outcome.state is not None)
    return outcome


async def _looked_up(conversation: str, text: str, channel: str,
                     at_risk: bool) -> Optional[flow.Outcome]:
    if channel == "sms" and keywords.classify(text) == keywords.OPT_OUT:
        # Twilio's opt-out (the SMS inbox ends building as it records one; a turn that still
        # sees the word gives it to the dialogue, never to a step).
        await asyncio.to_thread(store.stop, conversation)
        return None
    if not at_risk and await asyncio.to_thread(conversation_held, conversation):
        return None  # a human has the conversation: theirs to answer
    return await asyncio.to_thread(store.handle, conversation, text, channel, risk=at_risk)


def plan_first(handler: Handler) -> Handler:
    async def run(message: UserMessage) -> Any:
        text, conversation = message.text, message.sender_id
        if not text or not conversation:
            return await handler(message)
        channel = message.input_channel or ""
        # A plan word is a command from a closed list ("PLAN DELETE", "my plan"): it cannot
        # tell of risk, but the statistical model reads "delete plan" as urgent, and then
        # the person could never delete their plan (the word would go to the risk path).
        at_risk = flow.command(text) is None and shows_risk(text)
        view = live.view()
        outcome = None
        try:
            outcome = await _plan_step(view, conversation, text, channel, at_risk)
        except Exception as exc:  # noqa: BLE001  the dialogue answers; the plan can wait
            logger.error("plan: could not read the plan (%s)", type(exc).__name__)
        if outcome is None:
            return await handler(message)
        for reply in outcome.replies:
            await send_reply(message.output_channel, conversation, reply, channel)
        if not outcome.passthrough:
            return None
        result = await handler(message)
        for reply in outcome.after:
            await send_reply(message.output_channel, conversation, reply, channel)
        return result

    return run
