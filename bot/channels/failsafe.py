"""A turn that fails must not leave the person in silence (web chat and REST).

When the action server is down, Rasa logs "Failed to run custom action ... Bot will continue"
and the turn ends having said nothing; a turn can also raise, or hang on a slow database. On
a crisis line silence is not an answer, so the web chat and REST channels run each turn
through ``run_turn``: if it raises, takes longer than the turn timeout, or finishes without
sending a single message, the person gets ``FAILSAFE_REPLY`` (999, Samaritans 116 123, NHS
111 option 2) and the conversation is flagged to staff (``turn_failed`` on its escalation,
opening a ``support`` one when there is none), as the SMS worker does for texts
(``bot/channels/worker.py``).

Not a failure: a turn that says nothing while a human holds the conversation (the relay
paused the assistant; ``bot/escalation/watch.conversation_held``). A turn that times out
keeps running; if it answers late, the person gets that answer too.

Never message text or numbers in the logs or the trail: the conversation id (a random session
id or a pseudonym) and the reason.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Awaitable, Callable, Optional

from rasa.core.channels.channel import OutputChannel, UserMessage

from bot.channels.contact_turn import contact_rules
from bot.channels.feedback_turn import survey_first
from bot.channels.plan_turn import plan_first
from bot.channels.gate import gated
from bot.sms.keywords import FAILSAFE_REPLY
from bot.escalation.engine import flag_for_staff
from bot.escalation.watch import conversation_held

logger = logging.getLogger(__name__)

TurnHandler = Callable[[UserMessage], Awaitable[Any]]
REASON_NO_REPLY = "no_reply"
REASON_TIMEOUT = "timeout"
# Turns that outlived their timeout and still run (kept so they are not garbage collected).
_late: set[asyncio.Task] = set()


class ReplyCounter:
    """Counts what a turn sends through one output channel.

    Wraps, on the instance only, the one method every send goes through: ``_send_message``
    for socket.io outputs, ``_persist_message`` for Rasa's collecting (REST) outputs.
    """

    def __init__(self, output: OutputChannel) -> None:
        self.sent = 0
        name = "_send_message" if hasattr(output, "_send_message") else "_persist_message"
        inner = getattr(output, name, None)
        if inner is None:
            raise TypeError(f"cannot count the replies of {type(output).__name__}")

        async def counted(*args: Any, **kwargs: Any) -> Any:
            result = await inner(*args, **kwargs)
            self.sent += 1
            return result

        setattr(output, name, counted)


def _late_turn_done(task: asyncio.Task) -> None:
    _late.discard(task)
    if not task.cancelled() and task.exception() is not None:
        logger.error("failsafe: a late turn raised %s", type(task.exception()).__name__)


async def _held(conversation_id: str) -> bool:
    try:
        return await asyncio.to_thread(conversation_held, conversation_id)
    except Exception as exc:  # noqa: BLE001  cannot tell: a fail-safe beats silence
        logger.error("failsafe: cannot check whether %s is held (%s)", conversation_id,
                     type(exc).__name__)
        return False


async def send_failsafe(message: UserMessage, channel: str, reason: str) -> None:
    """The fail-safe reply to the person, then the flag to staff (each failure logged and
    survived: the other still happens)."""
    try:
        await message.output_channel.send_text_message(message.sender_id, FAILSAFE_REPLY)
    except Exception as exc:  # noqa: BLE001  the staff flag below must still go out
        logger.error("failsafe: the fail-safe reply to %s could not be sent (%s)",
                     message.sender_id, type(exc).__name__)
    try:
        await asyncio.to_thread(
            flag_for_staff, message.sender_id, "turn_failed",
            f"the assistant could not answer a {channel} message ({reason}); "
            "the fail-safe reply was sent",
            {"reason": reason, "channel": channel}, "support", channel,
        )
    except Exception as exc:  # noqa: BLE001  the database down: the log says so, no data
        logger.error("failsafe: could not flag %s to staff (%s)", message.sender_id,
                     type(exc).__name__)


async def run_turn(message: UserMessage, handler: TurnHandler, *, timeout_s: float,
                   channel: str) -> Optional[str]:
    """Run one turn; on failure send the fail-safe and flag staff. Returns why, or None.

    The turn queues at the process's turn gate (risk first, ``bot/channels/gate.py``); the
    timeout covers that wait too.
    """
    counter = ReplyCounter(message.output_channel)
    task = asyncio.ensure_future(gated(contact_rules(plan_first(survey_first(handler))))(message))
    try:
        await asyncio.wait_for(asyncio.shield(task), timeout_s)
        if counter.sent or await _held(message.sender_id):
            return None
        reason = REASON_NO_REPLY
    except asyncio.TimeoutError:  # noqa: UP041  on Python 3.10 it is not the builtin TimeoutError
        reason = REASON_TIMEOUT
        _late.add(task)
        task.add_done_callback(_late_turn_done)
    except asyncio.CancelledError:
        task.cancel()
        raise
    except Exception as exc:  # noqa: BLE001
        reason = type(exc).__name__
    logger.warning("failsafe: %s turn for %s failed (%s); sending the fail-safe reply",
                   channel, message.sender_id, reason)
    await send_failsafe(message, channel, reason)
    return reason
