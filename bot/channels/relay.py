"""Staff relay: how a human writes into a conversation the assistant was having.

``bot.channels.relay.RelayInput`` in credentials.yml; routes under ``/webhooks/relay/``, all
``POST`` with JSON and ``Authorization: Bearer $RELAY_TOKEN`` (default ``RASA_AUTH_TOKEN``;
with neither set every request is refused):

- ``/takeover`` ``{conversation_id, channel, ref, actor, display_name}``: pauses the assistant
  (a Rasa ``pause`` event: Rasa then records the person's messages but predicts nothing) and
  tells the person who joined.
- ``/send`` ``{conversation_id, channel, ref, actor, display_name, text}``: a staff message.
- ``/handback`` ``{conversation_id, channel, ref, actor, display_name}``: tells the person, then
  resumes the assistant (``resume`` event).
- ``/notify`` ``{conversation_id, channel, ref, text}``: a message from the line itself (the
  dispatcher's "nobody could be reached yet" on web chat).
- ``/wait`` ``{conversation_id, channel, ref, text}``: an update to a person waiting for a
  human (``bot/escalation/wait_watch.py``). Refused with 409 ``paused`` once the conversation
  is paused for a human (checked, recorded and delivered under the conversation's lock, so
  it can never follow the "has joined" message), and on web chat with 409 ``not_present``
  when no page of the conversation is open; either way nothing is recorded.
- ``/feedback`` ``{conversation_id, channel, text, choices, trigger, ref?}``: the feedback
  survey's offer after staff resolved a conversation or it went quiet
  (``bot/feedback/offers.py``). The assistant's own words, so no ``sender`` in the metadata
  (``{"feedback": trigger, "ref"}``); on web chat the ``choices`` are quick-reply buttons,
  and only to an open page: with none, 409 ``not_present`` and nothing is recorded.

Every message is delivered on the person's channel (SMS: the outbox; web chat: the socket.io
room, which lives in this process) and appended to the tracker as a bot event with metadata
``{"sender": "staff" | "system", "actor", "sender_name", "ref"}``, so the transcript in the
console shows who wrote it. This runs in the Rasa server because only it can reach a web chat
socket and it owns the tracker's lock; the duty service calls it (``bot/duty/handoff.py``).

Nothing here logs message text, and the conversation id only as the escalation reference.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from rasa.core.channels.channel import InputChannel, UserMessage
from rasa.shared.core.events import BotUttered, ConversationPaused, ConversationResumed
from sanic import Blueprint, response
from sanic.exceptions import InvalidUsage
from sanic.request import Request
from sanic.response import HTTPResponse

from bot.settings import settings

logger = logging.getLogger(__name__)

SMS_CHANNELS = ("sms",)
WEBCHAT_CHANNELS = ("socketio", "webchat")
MAX_TEXT = 1600  # Twilio's own limit for one message
# The longest conversation id the SMS tables hold (a pseudonym is "sms-" and 40 hex digits).
MAX_SMS_CONVERSATION_ID = 64
OPTIONAL_TEXT_FIELDS = ("text", "actor", "display_name", "ref", "trigger")
# The feedback offer's choices (quick-reply buttons on web chat): a few short words.
MAX_CHOICES = 5
MAX_CHOICE = 40


def joined_text(name: str) -> str:
    return (f"{name} from the on-call team has joined the conversation. You are now talking "
            f"to a person, not the automated assistant.")


def handed_back_text(name: str) -> str:
    return (f"{name} has handed you back to the automated assistant. You can ask for a person "
            f"again at any time.")


class RelayError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def check_target(conversation_id: str, channel: str) -> None:
    """Refuse, before anything is recorded, a conversation no message could reach."""
    if channel in SMS_CHANNELS:
        if len(conversation_id) > MAX_SMS_CONVERSATION_ID:
            raise RelayError(400, "bad_request", "not an SMS conversation id")
    elif channel in WEBCHAT_CHANNELS:
        from bot.channels import webchat

        if not webchat.valid_session_id(conversation_id):
            raise RelayError(400, "bad_request", "not a web chat conversation id")
    else:
        raise RelayError(409, "unsupported_channel", f"cannot relay on channel {channel!r}")


async def deliver(conversation_id: str, channel: str, text: str, extra: dict[str, Any],
                  timestamp: float | None = None) -> dict:
    """Send ``text`` to the person on their channel; what happened, for the caller.

    ``timestamp``: the tracker event's, so the web chat message id is the one a page that
    reconnects later is replayed (``bot/channels/webchat.py``).
    """
    check_target(conversation_id, channel)
    if channel in SMS_CHANNELS:
        from bot.sms import outbox

        # The outbox row is the delivery: the SMS sender (here or in the duty service, by
        # SMS_SENDER) posts it; the duty service's is told at once.
        await asyncio.to_thread(outbox.enqueue, conversation_id, text, outbox.STAFF_KIND, None,
                                3, False, settings().sms_sender == "duty")
        return {"delivered": "sms_outbox"}
    if channel in WEBCHAT_CHANNELS:
        from bot.channels import webchat

        present = await webchat.send_to_conversation(conversation_id, text, extra, timestamp)
        # 0: the carer's page is closed right now; the message is still in the transcript.
        return {"delivered": "webchat", "sockets": present}
    raise RelayError(409, "unsupported_channel", f"cannot relay on channel {channel!r}")


class RelayInput(InputChannel):
    """Not a channel people write in on: the staff relay, mounted like one."""

    @classmethod
    def name(cls) -> str:
        return "relay"

    @classmethod
    def from_credentials(cls, credentials: dict[str, Any] | None) -> InputChannel:
        return cls()

    def __init__(self, deliver_fn: Callable[..., Awaitable[dict]] | None = None) -> None:
        self.deliver = deliver_fn or deliver

    @staticmethod
    def _authorised(request: Request) -> bool:
        token = settings().relay_token
        if not token:
            return False
        given = request.headers.get("Authorization", "")
        return hmac.compare_digest(given.encode(), f"Bearer {token}".encode())

    @staticmethod
    def _payload(request: Request, *needed: str) -> dict[str, Any]:
        try:
            body = request.json
        except InvalidUsage:  # not JSON at all: the caller's mistake, not a relay failure
            body = None
        if not isinstance(body, dict):
            raise RelayError(400, "bad_request", "expected a JSON object")
        for key in needed:
            if not isinstance(body.get(key), str) or not body[key].strip():
                raise RelayError(400, "bad_request", f"field {key!r} is required")
        for key in OPTIONAL_TEXT_FIELDS:
            if body.get(key) is not None and not isinstance(body[key], str):
                raise RelayError(400, "bad_request", f"field {key!r} must be a string")
        choices = body.get("choices")
        if choices is not None and not (
            isinstance(choices, list) and len(choices) <= MAX_CHOICES
            and all(isinstance(c, str) and 0 < len(c.strip()) <= MAX_CHOICE for c in choices)
        ):
            raise RelayError(400, "bad_request",
                             f"choices must be at most {MAX_CHOICES} words of 1 to {MAX_CHOICE} characters")
        for key in ("ref", "trigger"):
            if len(body.get(key) or "") > 32:
                raise RelayError(400, "bad_request", f"field {key!r} is too long")
        if len(body.get("text") or "") > MAX_TEXT:
            raise RelayError(400, "bad_request", f"text longer than {MAX_TEXT} characters")
        if isinstance(body.get("text"), str):
            # PostgreSQL cannot store a NUL in text, and no one means to send one.
            body["text"] = body["text"].replace("\x00", "")
        return body

    async def _relay(self, request: Request, step: str) -> dict[str, Any]:
        needed = {
            "takeover": ("conversation_id", "channel", "ref", "actor", "display_name"),
            "send": ("conversation_id", "channel", "ref", "actor", "display_name", "text"),
            "handback": ("conversation_id", "channel", "ref", "actor", "display_name"),
            "notify": ("conversation_id", "channel", "ref", "text"),
            "feedback": ("conversation_id", "channel", "text"),
            "wait": ("conversation_id", "channel", "ref", "text"),
        }[step]
        body = self._payload(request, *needed)
        agent = getattr(request.app.ctx, "agent", None)
        if agent is None or agent.tracker_store is None:
            raise RelayError(503, "not_ready", "the assistant is not loaded yet")
        cid, channel, ref = body["conversation_id"], body["channel"], body.get("ref") or "-"
        # Checked before the tracker changes: a refused call leaves no trace in the transcript.
        check_target(cid, channel)
        if step == "feedback":
            return await self._feedback(agent, body, cid, channel)
        if step == "wait":
            return await self._wait(agent, body, cid, channel, ref)
        name = (body.get("display_name") or "").strip()
        if step == "takeover":
            text = joined_text(name)
        elif step == "handback":
            text = handed_back_text(name)
        else:
            text = body["text"]
        sender = "system" if step == "notify" else "staff"
        meta = {"sender": sender, "actor": body.get("actor") or "system", "ref": ref}
        if name:
            meta["sender_name"] = name
        # The conversation's lock: a turn in progress finishes before the pause lands, and the
        # turn after it sees the pause (Rasa holds the same lock for each message).
        async with agent.lock_store.lock(cid):
            tracker = await agent.tracker_store.get_or_create_tracker(cid)
            if step == "takeover" and not tracker.is_paused():
                tracker.update(ConversationPaused())
            uttered = BotUttered(text, data={}, metadata=meta)
            tracker.update(uttered)
            if step == "handback" and tracker.is_paused():
                tracker.update(ConversationResumed())
            # Recorded before it is sent: a message the person got is always in the transcript.
            await agent.tracker_store.save(tracker)
        result = await self.deliver(cid, channel, text, {"sender": sender, "sender_name": name},
                                    uttered.timestamp)
        logger.info("relay: %s on %s for %s (%s)", step, channel, ref, result.get("delivered"))
        return {"ok": True, "paused": step in ("takeover", "send"), **result}

    async def _feedback(self, agent: Any, body: dict[str, Any], cid: str,
                        channel: str) -> dict[str, Any]:
        """The survey's offer: recorded as the assistant's message, then delivered."""
        choices = [c.strip() for c in body.get("choices") or []]
        if channel in WEBCHAT_CHANNELS:
            from bot.channels import webchat

            # An offer to a closed page would wait in the transcript and be replayed, days
            # later perhaps, with nobody's survey behind its buttons.
            if not webchat.present(cid):
                raise RelayError(409, "not_present", "no page of the conversation is open")
        meta = {"feedback": body.get("trigger") or "offer"}
        if body.get("ref"):
            meta["ref"] = body["ref"]
        buttons = ([{"title": c, "payload": c} for c in choices]
                   if channel in WEBCHAT_CHANNELS else [])
        async with agent.lock_store.lock(cid):
            tracker = await agent.tracker_store.get_or_create_tracker(cid)
            uttered = BotUttered(body["text"], data={"buttons": buttons} if buttons else {},
                                 metadata=meta)
            tracker.update(uttered)
            await agent.tracker_store.save(tracker)
        extra = ({"quick_replies": [{"content_type": "text", "title": b["title"],
                                     "payload": b["payload"]} for b in buttons]}
                 if buttons else {})
        result = await self.deliver(cid, channel, body["text"], extra, uttered.timestamp)
        logger.info("relay: feedback offer (%s) on %s (%s)", meta["feedback"], channel,
                    result.get("delivered"))
        return {"ok": True, "paused": tracker.is_paused(), **result}

    async def _wait(self, agent: Any, body: dict[str, Any], cid: str, channel: str,
                    ref: str) -> dict[str, Any]:
        """An update to a person waiting for a human: never once a human holds the
        conversation. Checked, recorded and delivered under the conversation's lock, which a
        take-over's pause also takes: the update is either delivered before the "has joined"
        message or refused, never after it."""
        if channel in WEBCHAT_CHANNELS:
            from bot.channels import webchat

            # Replayed to a page opened later it would be stale; the next update will come.
            if not webchat.present(cid):
                raise RelayError(409, "not_present", "no page of the conversation is open")
        meta = {"sender": "system", "actor": "system:wait", "ref": ref, "wait": True}
        async with agent.lock_store.lock(cid):
            tracker = await agent.tracker_store.get_or_create_tracker(cid)
            if tracker.is_paused():
                raise RelayError(409, "paused", "a human holds the conversation")
            uttered = BotUttered(body["text"], data={}, metadata=meta)
            tracker.update(uttered)
            await agent.tracker_store.save(tracker)
            result = await self.deliver(cid, channel, body["text"], {"sender": "system"},
                                        uttered.timestamp)
        logger.info("relay: wait update on %s for %s (%s)", channel, ref, result.get("delivered"))
        return {"ok": True, "paused": False, **result}

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        bp = Blueprint("staff_relay", __name__)

        @bp.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        async def handle(request: Request, step: str) -> HTTPResponse:
            if not self._authorised(request):
                return response.json({"error": "unauthorized"}, status=401,
                                     headers={"WWW-Authenticate": "Bearer"})
            try:
                return response.json(await self._relay(request, step))
            except RelayError as exc:
                return response.json({"error": exc.code, "message": exc.message},
                                     status=exc.status)
            except Exception as exc:  # noqa: BLE001  never a traceback (or text) to the caller
                logger.error("relay: %s failed (%s)", step, type(exc).__name__)
                return response.json({"error": "relay_failed"}, status=502)

        @bp.route("/takeover", methods=["POST"])
        async def takeover(request: Request) -> HTTPResponse:
            return await handle(request, "takeover")

        @bp.route("/send", methods=["POST"])
        async def send(request: Request) -> HTTPResponse:
            return await handle(request, "send")

        @bp.route("/handback", methods=["POST"])
        async def handback(request: Request) -> HTTPResponse:
            return await handle(request, "handback")

        @bp.route("/notify", methods=["POST"])
        async def notify(request: Request) -> HTTPResponse:
            return await handle(request, "notify")

        @bp.route("/feedback", methods=["POST"])
        async def feedback(request: Request) -> HTTPResponse:
            return await handle(request, "feedback")

        @bp.route("/wait", methods=["POST"])
        async def wait(request: Request) -> HTTPResponse:
            return await handle(request, "wait")

        return bp
