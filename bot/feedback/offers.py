"""Offering the survey from the duty service: after staff resolve an escalation, and after a
quiet period (``bot/feedback/quiet_watch.py``).

The goodbye's offer is a reply in the person's own turn (``actions/feedback.py``). These two
come from nowhere the person can see, so they go the way staff replies go: ``send`` is the
duty service's staff relay (``bot/duty/handoff.py``), which writes the offer into the
conversation's transcript and delivers it on the person's channel (SMS: the outbox; web
chat: the page's socket.io room, only while a page is open, with YES and NO as buttons).

``store.offer`` decides whether the person may be asked (docs/feedback.md, "When the line
asks": never while another escalation is live, never to the opted-out or forgotten, once a
week) and records the survey; an offer the relay did not take is withdrawn
(``store.withdraw``), so nobody is counted as asked, or has a later "yes" read as an answer,
for a text they never got.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Optional

from bot.feedback import store, tracker
from bot.feedback.questions import Questions, configured

logger = logging.getLogger(__name__)

RESOLVED = "resolved"
# Channels the staff relay delivers on.
RELAYED = ("sms", "socketio")
# Why an offer was not delivered (``NotSent.code``).
ABSENT = "absent"  # web chat: no page of the conversation is open
UNREACHABLE = "unreachable"  # the relay could not be reached, or failed
REFUSED = "refused"  # the relay refused it (a bad conversation id, a channel it cannot use)


@dataclass(frozen=True)
class OfferMessage:
    """The offer as the relay carries it: never logged (it names the conversation)."""

    conversation_id: str
    channel: str
    text: str
    choices: tuple[str, ...]
    trigger: str
    ref: Optional[str] = None  # the escalation resolved, if any


class NotSent(Exception):
    """The relay did not deliver the offer; ``code`` says why (``ABSENT`` ...)."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


Send = Callable[[OfferMessage], Awaitable[None]]
RunDb = Callable[..., Awaitable[Any]]


def _offer_resolved(ref: str, questions: Questions) -> tuple[Optional[str], Optional[str],
                                                             store.Offered]:
    """In one transaction: the resolved escalation's conversation, its audience, the offer."""
    from bot.store.db import transaction

    with transaction() as s:
        found = store.escalation_conversation(ref, session=s)
        if found is None:
            return None, None, store.Offered(None, "no_escalation")
        cid, channel = found
        if channel not in RELAYED:
            return cid, channel, store.Offered(None, "channel")
        audience = tracker.latest_slots(s, cid, (tracker.SLOT_AUDIENCE,)).get(tracker.SLOT_AUDIENCE)
        return cid, channel, store.offer(cid, channel, RESOLVED, questions,
                                         audience if isinstance(audience, str) else None,
                                         session=s)


class Offers:
    """Offers the survey through ``send``; database work through ``run_db`` (the duty
    service's thread pool). ``after_resolution`` runs in the background: staff resolving a
    conversation never wait for the relay."""

    def __init__(self, send: Send, *, run_db: RunDb = asyncio.to_thread,
                 questions: Callable[[], Optional[Questions]] = configured) -> None:
        self.send = send
        self._db = run_db
        self.questions = questions
        self._tasks: set[asyncio.Task] = set()

    async def deliver(self, offered: store.Offered, conversation_id: str, channel: str,
                      trigger: str, ref: Optional[str] = None) -> Optional[str]:
        """Send a recorded offer; None when the relay took it, else ``NotSent``'s code (the
        survey is then withdrawn)."""
        assert offered.prompt is not None and offered.survey_id is not None
        message = OfferMessage(conversation_id, channel, offered.prompt.text,
                               tuple(offered.prompt.choices), trigger, ref)
        try:
            await self.send(message)
        except NotSent as exc:
            code = exc.code
        except Exception as exc:  # noqa: BLE001  a survey is never worth more than a log line
            logger.error("feedback: sending survey %s failed (%s)", offered.survey_id,
                         type(exc).__name__)
            code = UNREACHABLE
        else:
            logger.info("feedback: survey %s offered on %s (%s)", offered.survey_id, channel,
                        trigger)
            return None
        await self._db(store.withdraw, offered.survey_id, offered.asked_before)
        logger.info("feedback: survey %s not delivered (%s)", offered.survey_id, code)
        return code

    async def after_resolution(self, ref: str) -> str:
        """Offer the survey to the person whose escalation ``ref`` staff just resolved; what
        happened, as a fixed word (``ok``, or why not)."""
        questions = self.questions()
        if questions is None:
            return "no_questions"
        try:
            cid, channel, offered = await self._db(_offer_resolved, ref, questions)
        except Exception as exc:  # noqa: BLE001  the resolution stands; the survey can wait
            logger.error("feedback: could not offer after %s was resolved (%s)", ref,
                         type(exc).__name__)
            return "error"
        if offered.prompt is None:
            logger.info("feedback: not offered after %s was resolved (%s)", ref, offered.reason)
            return offered.reason
        code = await self.deliver(offered, cid, channel, RESOLVED, ref)
        return code or "ok"

    def resolved(self, ref: str) -> None:
        """``after_resolution`` in the background (the console's resolve returns at once)."""
        task = asyncio.get_running_loop().create_task(self.after_resolution(ref),
                                                     name="feedback-offer")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def idle(self) -> None:
        """Wait for the offers under way (tests; ``close``)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self, timeout_s: float = 6.0) -> None:
        """At shutdown: let the offers under way finish (the relay's own time-out is 5 s),
        then cancel what is left."""
        pending = list(self._tasks)
        if not pending:
            return
        _, late = await asyncio.wait(pending, timeout=timeout_s)
        for task in late:
            task.cancel()
        await asyncio.gather(*late, return_exceptions=True)
