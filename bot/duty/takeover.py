"""The console's interface to the takeover engine (issue 5), which another change provides.

The console shows "Take over", "Reply", "Hand back" and "Refer to a sanctuary house" only when
an engine is given to ``create_app(settings, takeover=engine)``. Without one those buttons and
their routes do not exist: the console never pretends a person has been reached.

What an engine must do (the console relies on each point):

- ``take_over``: the assistant stops answering the conversation; the person is told who has
  joined (``staff.display_name``: a first name or a role); status becomes ``active``; an audit
  entry (actor ``staff.actor``) is written.
- ``reply``: the text reaches the person on their channel (SMS through the outbox; web chat
  through the Rasa server's staff-relay endpoint, which calls
  ``bot.channels.webchat.send_to_conversation``) and is kept in the transcript. Only the staff
  member who took the conversation over may reply.
- ``hand_back``: the assistant answers again; status back to ``acknowledged``; audited.
- ``refer``: with the person's consent recorded, refer to a sanctuary house; status
  ``referred`` and an audit entry of kind ``referred`` whose ``data`` is ``{"house": <id>}``
  (the sanctuary page finds a house's referrals by it).
- ``referral_houses``: the houses that may be offered tonight, as ``(id, name)`` pairs.
- ``resolved`` (optional, not async): called after staff resolved an escalation in the
  console; the relay engine offers the feedback survey from it, in the background
  (``bot/feedback/offers.py``). It must return at once and never raise.
- Raise ``TakeoverError`` with a message fit to show staff when a step cannot be done (taken
  by someone else, already resolved, no consent, the person opted out of SMS...). Anything
  else is a bug and becomes a 500.

Each method receives the escalation's reference (``E7K2Q``) rather than the conversation id:
the console never handles the conversation id or the person's number.
"""

from __future__ import annotations

from typing import Protocol, Sequence, runtime_checkable

from bot.duty.staff import Principal


class TakeoverError(Exception):
    """A takeover step that cannot be done; the message is shown to the member of staff."""


@runtime_checkable
class TakeoverEngine(Protocol):
    async def take_over(self, ref: str, staff: Principal) -> None: ...

    async def reply(self, ref: str, staff: Principal, text: str) -> None: ...

    async def hand_back(self, ref: str, staff: Principal) -> None: ...

    async def refer(self, ref: str, staff: Principal, house: str) -> None: ...

    def referral_houses(self) -> Sequence[tuple[str, str]]: ...


# Longest staff reply accepted from the console: a few SMS segments' worth, so a reply never
# splits into a dozen texts on the person's phone.
MAX_REPLY_CHARS = 1000
