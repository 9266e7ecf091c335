"""The survey's turn: a message of a conversation with a live survey is the survey's, unless
it shows risk (docs/feedback.md).

``survey_first(handler)`` wraps a channel's turn handler (inside the turn gate, so the
fail-safe's timeout and reply counting cover it). With no live survey, or no questions file,
the message goes to the dialogue untouched. With one, ``bot.feedback.store.handle`` takes the
message and its risk reading; the replies go back through the message's own output channel
(web chat: the question with its choices as quick-reply buttons, the text naming them too;
SMS: one question per text). Survey answers never reach Rasa, so they are not in the tracker
store or the transcript, and the free text is only in ``feedback_comments``.

**Risk always wins**: the reading is ``gate.shows_risk``, the NLU's own detector behind an
over-inclusive word check (and "unsure" counts as risk). A message it reads as urgent or
imminent ends the survey and is handed to the dialogue, which takes the normal risk path. So
is a message the survey passes on (anything but an answer after the offer; a second
non-answer), and every message when the survey's database work fails.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Awaitable, Callable

from rasa.core.channels.channel import OutputChannel, UserMessage

from bot.channels.gate import shows_risk
from bot.feedback import live, store, survey
from bot.feedback.questions import configured
from bot.feedback.survey import Prompt
from bot.store.models import utcnow

logger = logging.getLogger(__name__)

Handler = Callable[[UserMessage], Awaitable[Any]]
# Channels whose page draws quick-reply buttons (the line's web chat, bot/duty/static).
BUTTON_CHANNELS = frozenset({"socketio"})


async def send_prompt(output: OutputChannel, recipient: str, prompt: Prompt, channel: str) -> None:
    if prompt.choices and channel in BUTTON_CHANNELS:
        buttons = [{"title": c, "payload": c} for c in prompt.choices]
        await output.send_text_with_buttons(recipient, prompt.text, buttons)
    else:
        await output.send_text_message(recipient, prompt.text)


def survey_first(handler: Handler) -> Handler:
    async def run(message: UserMessage) -> Any:
        questions = configured()
        if questions is None or not message.text or not message.sender_id:
            return await handler(message)
        conversation = message.sender_id
        at_risk = shows_risk(message.text)
        view = live.view()
        # The dialogue is called outside the ``try``: its own error is the turn's (for the
        # fail-safe), and it must never run twice.
        try:
            # No query for an ordinary turn (bot/feedback/live.py): at most one a second.
            needed = view.known(conversation, message.text, at_risk)
            if needed is None:
                needed = await asyncio.to_thread(view.needs_lookup, conversation,
                                                 message.text, at_risk)
            if needed:
                outcome = await asyncio.to_thread(store.handle, conversation, message.text,
                                                  "urgent" if at_risk else "none", questions,
                                                  dialogue_at=view.passed(conversation))
        except Exception as exc:  # noqa: BLE001  the dialogue answers; the survey can wait
            logger.error("feedback: could not read the survey (%s)", type(exc).__name__)
            return await handler(message)
        if not needed:
            view.went_to_dialogue(conversation, utcnow())
            return await handler(message)
        view.note(conversation, outcome is not None and outcome.state.status in survey.LIVE)
        if outcome is None:
            return await handler(message)
        for prompt in outcome.replies:
            await send_prompt(message.output_channel, message.sender_id, prompt,
                              message.input_channel or "")
        if outcome.passthrough:
            return await handler(message)
        return None

    return run
