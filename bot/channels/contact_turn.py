"""A blocked sender, and very frequent contact: the turn's two rules about who is writing.

``contact_rules(handler)`` wraps a channel's turn handler (inside the turn gate, outside the
feedback survey's wrapper, so the fail-safe's timeout and reply counting cover it), on SMS
and web chat alike (docs/console.md, "Blocking a sender"; docs/sms.md, "Fair use").

**Risk always wins.** A message that shows urgent or imminent risk (``gate.shows_risk``: the
NLU's own detector behind an over-inclusive word check; "unsure" counts as risk), or any
message of a conversation that showed risk within the hour ("no" to "are you safe?"), goes to
the dialogue untouched, blocked or not: its risk path sends the emergency reply, records the
escalation and alerts staff. No fair-use note is ever added to it.

**A blocked sender** (``bot/escalation/blocks.py``; known from a per-process view read at
most once a second, not a query a turn): any other message is answered with
``BLOCKED_REPLY``, the emergency numbers and nothing else, and never reaches the dialogue.
While a human holds the conversation (taken over), the person's messages go through as
usual: staff are talking with them.

**Fair use** (``FAIR_USE_CONTACTS`` contacts within ``FAIR_USE_WINDOW_HOURS``; 0 turns it
off): a contact is a message after ``CONTACT_GAP_S`` of quiet. When a conversation reaches
the threshold, its next ordinary message is answered by the dialogue as usual, followed by
``FAIR_USE_REPLY`` once, and not again within the window. Never on a message that shows
risk, nor in a conversation that showed risk within the hour, nor while staff are involved
(a live escalation). Counted in memory per process: the Rasa server runs every SMS and web
chat turn, and a restart only forgets who had the note; a web chat session is one browser's
conversation (a new chat is a new one, and the line does not follow a person across them).

Neither rule drops a message: the SMS rate limit (``ratelimit.py``) only slows a flood.
Logs carry the conversation id, never the message.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Deque, Optional

from rasa.core.channels.channel import UserMessage
from sqlalchemy import select

from bot.channels.gate import recently_at_risk, shows_risk
from bot.escalation import blocks
from bot.escalation.engine import LIVE_STATUSES
from bot.escalation.watch import conversation_held
from bot.store.db import transaction
from bot.store.models import Escalation

logger = logging.getLogger(__name__)

Handler = Callable[[UserMessage], Awaitable[Any]]

# Both fit one SMS (at most 306 GSM-7 characters) and carry the emergency numbers; neither
# says the person did wrong or warns them (tests/channels/test_contact_turn.py).
BLOCKED_REPLY = (
    "This is an automated reply. The line is not able to reply to your messages for now. "
    "If you are in danger call 999 or go to A&E. Samaritans: 116 123 (free, 24/7). "
    "NHS 111, option 2 for mental health."
)
FAIR_USE_REPLY = (
    "This is an automated message. Thank you for getting in touch again. Many people use "
    "this line, so some nights our chats may need to be shorter. Samaritans are there any "
    "time: 116 123 (free). NHS 111, option 2 for mental health. If you are in danger call 999."
)
# A message after this long without one from the person starts a new contact.
CONTACT_GAP_S = 30 * 60.0
# Conversations the fair-use counter keeps (the least recently heard from go first).
MAX_TRACKED = 100_000


@dataclass
class _Contacts:
    starts: Deque[float] = field(default_factory=deque)
    last: Optional[float] = None
    noted: Optional[float] = None


class FrequentContact:
    """Counts each conversation's contacts and says when the fair-use note is due.

    ``contacts`` within ``window_s`` (0: never due); a contact starts with a message after
    ``gap_s`` of quiet. The note is due once per window: ``noted`` records that it went.
    Thread-safe (SMS turns run in their own thread, web chat turns in the server's loop).
    """

    def __init__(self, contacts: int, window_s: float, gap_s: float = CONTACT_GAP_S,
                 size: int = MAX_TRACKED, clock: Callable[[], float] = time.monotonic) -> None:
        self.contacts = contacts
        self.window_s = window_s
        self.gap_s = gap_s
        self.size = size
        self._clock = clock
        self._seen: OrderedDict[str, _Contacts] = OrderedDict()
        self._lock = threading.Lock()

    def seen(self, conversation_id: str) -> bool:
        """Count a message of ``conversation_id``; True when the note is due now."""
        if self.contacts <= 0:
            return False
        now = self._clock()
        with self._lock:
            entry = self._seen.pop(conversation_id, None) or _Contacts()
            self._seen[conversation_id] = entry  # most recently heard from last
            if entry.last is None or now - entry.last >= self.gap_s:
                entry.starts.append(now)
            entry.last = now
            while entry.starts and (now - entry.starts[0] >= self.window_s
                                    or len(entry.starts) > self.contacts):
                entry.starts.popleft()
            while len(self._seen) > self.size:
                self._seen.popitem(last=False)
            return (len(entry.starts) >= self.contacts
                    and (entry.noted is None or now - entry.noted >= self.window_s))

    def noted(self, conversation_id: str) -> None:
        with self._lock:
            entry = self._seen.get(conversation_id)
            if entry is not None:
                entry.noted = self._clock()


_counter: Optional[FrequentContact] = None
_counter_lock = threading.Lock()


def counter() -> FrequentContact:
    """The process's fair-use counter, from ``FAIR_USE_CONTACTS`` and ``FAIR_USE_WINDOW_HOURS``."""
    global _counter
    with _counter_lock:
        if _counter is None:
            from bot.settings import settings

            s = settings()
            _counter = FrequentContact(s.fair_use_contacts, s.fair_use_window_hours * 3600.0)
        return _counter


def reset() -> None:
    """Forget the counter and the block view (tests)."""
    global _counter
    with _counter_lock:
        _counter = None
    blocks.reset()


def staff_involved(conversation_id: str) -> bool:
    """A live escalation: staff are (or are about to be) with this person."""
    with transaction() as s:
        return s.execute(
            select(Escalation.id)
            .where(Escalation.conversation_id == conversation_id,
                   Escalation.status.in_(LIVE_STATUSES))
            .limit(1)
        ).first() is not None


async def _blocked(conversation_id: str) -> bool:
    view = blocks.view()
    try:
        known = view.known(conversation_id)
        if known is None:
            known = await asyncio.to_thread(view.lookup, conversation_id)
        if known:
            # A human who holds the conversation hears everything the person says.
            return not await asyncio.to_thread(conversation_held, conversation_id)
        return False
    except Exception as exc:  # noqa: BLE001  the dialogue answers: a block is not safety
        logger.error("blocks: could not read the block list (%s)", type(exc).__name__)
        return False


async def _fair_use_note(message: UserMessage) -> None:
    conversation = message.sender_id
    try:
        if await asyncio.to_thread(staff_involved, conversation):
            return
        await message.output_channel.send_text_message(conversation, FAIR_USE_REPLY)
    except Exception as exc:  # noqa: BLE001  the person has had the dialogue's answer
        logger.error("fair use: no note for %s (%s)", conversation, type(exc).__name__)
        return
    counter().noted(conversation)
    logger.info("fair use: note sent to %s", conversation)


def contact_rules(handler: Handler) -> Handler:
    async def run(message: UserMessage) -> Any:
        conversation = message.sender_id
        if not conversation:
            return await handler(message)
        due = counter().seen(conversation)
        if shows_risk(message.text) or recently_at_risk(conversation):
            return await handler(message)  # risk always wins: the dialogue's risk path
        if await _blocked(conversation):
            logger.info("blocks: %s is blocked; answered with the emergency numbers",
                        conversation)
            await message.output_channel.send_text_message(conversation, BLOCKED_REPLY)
            return None
        result = await handler(message)
        if due:
            await _fair_use_note(message)
        return result

    return run
