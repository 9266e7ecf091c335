"""The web chat's Rasa input channel: the stock web widgets' socket.io protocol, done safely.

Protocol (as Rasa's stock ``socketio`` channel and its widgets speak it):

- the browser connects to ``/socket.io`` and emits ``session_request`` with
  ``{"session_id": <id or null>}``; the server answers ``session_confirm`` with the id to use
  (a new one when the browser had none, or sent one that is not ours);
- the browser emits ``user_uttered`` with ``{"message": text, "session_id": id}``;
- replies come back as ``bot_uttered`` with ``{"text": ...}`` (plus ``quick_replies`` or
  ``attachment`` for buttons and images).

Why our own channel rather than credentials for the stock one (``rasa/core/channels/socketio.py``):

- Rasa 3.6 calls ``AsyncServer.enter_room`` without ``await``; python-socketio made it a
  coroutine in 5.10, so with session persistence the socket never joins the conversation's room
  and replies never reach the browser. We await it.
- Session persistence is always on: the conversation is the *session id*, not the socket, so
  a reload (a new socket) keeps the conversation. Each socket's session id is remembered
  server-side at ``session_request``; a ``user_uttered`` is attributed to that id, never to
  whatever id the message claims, so one browser cannot write into another's conversation.
- The stock channel allows every origin (``cors_allowed_origins=[]`` plus a Sanic-CORS hack);
  we accept only the duty service's page (``WEBCHAT_ALLOWED_ORIGINS``).
- Message text is never logged.
- A turn never ends in silence: one that raises, outlasts ``turn_timeout_s`` (default
  ``SMS_TURN_TIMEOUT_S``) or sends nothing (the action server down) is answered with the
  fail-safe reply and flagged to staff, unless a human holds the conversation
  (``bot/channels/failsafe.py``).

Staff relay (issue 5): ``send_to_conversation(sender_id, text)`` emits into a conversation's
room from anywhere in the Rasa server process; see its docstring.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from typing import Any, Awaitable, Callable, Dict, Optional, Sequence, Text

from rasa.core.channels.channel import InputChannel, OutputChannel, UserMessage
from rasa.core.channels.socketio import SocketBlueprint, SocketIOOutput
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse
from socketio import AsyncServer

from bot import settings as settings_module
from bot.channels.failsafe import run_turn

logger = logging.getLogger(__name__)

# A session id is a capability: whoever knows it joins the conversation's room and reads the
# replies. We hand out uuid4 hex (122 random bits) and accept nothing else, so an id cannot
# be guessed, and nothing a browser sends can name an SMS conversation's pseudonym.
SESSION_ID_RE = re.compile(r"[0-9a-f]{32}")  # fullmatch: "$" would let a newline through
# Far above anything typed into a chat box; stops a client pushing megabytes through NLU.
MAX_MESSAGE_CHARS = 4000

# The channel instance serving this process (set by ``blueprint``), for staff relay.
_active: Optional["WebChatInput"] = None


def new_session_id() -> str:
    return uuid.uuid4().hex


def valid_session_id(value: Any) -> bool:
    return isinstance(value, str) and bool(SESSION_ID_RE.fullmatch(value))


_LOOPBACK_ORIGIN = re.compile(r"^http://(localhost|127\.0\.0\.1|\[::1\])(:\d{1,5})?$")

class WebChatOutput(SocketIOOutput):
    """Replies go to the conversation's room (every tab/socket that joined that session)."""

    @classmethod
    def name(cls) -> Text:
        return "socketio"


class WebChatInput(InputChannel):
    """``socketio`` channel with session persistence, awaited rooms and an origin allow-list."""

    @classmethod
    def name(cls) -> Text:
        # Same name as the stock channel: the widgets' path is /socket.io and Rasa's routes,
        # tracker metadata and the escalation's channel all say "socketio".
        return "socketio"

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> InputChannel:
        credentials = credentials or {}
        if credentials.get("session_persistence") is False:
            # Off would tie the conversation to one socket; the page relies on persistence.
            logger.warning("webchat: session_persistence: false is ignored; it is always on")
        return cls(
            user_message_evt=credentials.get("user_message_evt", "user_uttered"),
            bot_message_evt=credentials.get("bot_message_evt", "bot_uttered"),
            namespace=credentials.get("namespace"),
            socketio_path=credentials.get("socketio_path", "/socket.io"),
            metadata_key=credentials.get("metadata_key", "metadata"),
            allowed_origins=credentials.get("cors_allowed_origins"),
            turn_timeout_s=credentials.get("turn_timeout_s"),
        )

    def __init__(
        self,
        user_message_evt: Text = "user_uttered",
        bot_message_evt: Text = "bot_uttered",
        namespace: Optional[Text] = None,
        socketio_path: Text = "/socket.io",
        metadata_key: Text = "metadata",
        allowed_origins: Optional[Sequence[str]] = None,
        turn_timeout_s: Optional[float] = None,
    ) -> None:
        self.user_message_evt = user_message_evt
        self.bot_message_evt = bot_message_evt
        self.namespace = namespace
        self.socketio_path = socketio_path
        self.metadata_key = metadata_key
        # None: read WEBCHAT_ALLOWED_ORIGINS (default: the duty service's own origins).
        self.allowed_origins = (
            list(allowed_origins)
            if allowed_origins is not None
            else list(settings_module.settings().webchat_allowed_origins)
        )
        # None: SMS_TURN_TIMEOUT_S, the same patience as the SMS line's.
        self.turn_timeout_s = (
            float(turn_timeout_s) if turn_timeout_s is not None
            else float(settings_module.settings().sms_turn_timeout_s)
        )
        self.sio: Optional[AsyncServer] = None

    def origin_allowed(self, origin: Optional[str], _environ: Any = None) -> bool:
        """Which browser pages may open the chat socket.

        The configured origins ("*" allows all), and pages on this machine (http://localhost or
        127.0.0.1, any port), so a stock Rasa web widget on a local test page works out of the
        box. Non-browser clients send no Origin and are not subject to CORS.
        """
        if not origin:
            return True
        if "*" in self.allowed_origins or origin in self.allowed_origins:
            return True
        return bool(_LOOPBACK_ORIGIN.match(origin))

    def get_output_channel(self) -> Optional[OutputChannel]:
        # Used by Rasa for messages it sends outside a turn (reminders, external events,
        # POST /conversations/{id}/trigger_intent).
        if self.sio is None:
            return None
        return WebChatOutput(self.sio, self.bot_message_evt)

    async def send_to_conversation(
        self, sender_id: Text, text: Text, extra: Optional[Dict[str, Any]] = None
    ) -> int:
        """Emit ``bot_uttered`` ``{"text": text, **extra}`` to every socket of a conversation.

        Returns how many sockets are in the room right now (0: the carer's page is closed; the
        message was not delivered live). For staff relay, pass ``extra={"sender": "staff",
        "sender_name": "Sam"}`` so the page can show who is writing; recording the message in
        the tracker is the caller's job.
        """
        if self.sio is None:
            raise RuntimeError("the web chat channel is not running in this process")
        if not valid_session_id(sender_id):
            raise ValueError("not a web chat conversation id")
        payload = {"text": text, **(extra or {})}
        namespace = self.namespace or "/"
        present = len(list(self.sio.manager.get_participants(namespace, sender_id)))
        await self.sio.emit(self.bot_message_evt, payload, room=sender_id, namespace=namespace)
        return present

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        global _active
        sio = AsyncServer(
            async_mode="sanic",
            cors_allowed_origins=self.origin_allowed,
            # Neither library may log payloads: they hold what people type.
            logger=False,
            engineio_logger=False,
        )
        self.sio = sio
        _active = self
        bp = SocketBlueprint(sio, self.socketio_path, "webchat_socketio", __name__)
        namespace = self.namespace

        @bp.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @sio.on("connect", namespace=namespace)
        async def connect(sid: Text, environ: Dict, auth: Optional[Dict] = None) -> bool:
            return True

        @sio.on("disconnect", namespace=namespace)
        async def disconnect(sid: Text, *reason: Any) -> None:
            # python-socketio ≥5.12 may pass a reason; rooms are left automatically.
            return None

        @sio.on("session_request", namespace=namespace)
        async def session_request(sid: Text, data: Any) -> None:
            asked = data.get("session_id") if isinstance(data, dict) else None
            # An id we could not have issued is replaced, not trusted (see SESSION_ID_RE).
            session_id = asked if valid_session_id(asked) else new_session_id()
            async with sio.session(sid, namespace=namespace) as session:
                previous = session.get("session_id")
                session["session_id"] = session_id
            if previous and previous != session_id:
                await sio.leave_room(sid, previous, namespace=namespace)
            # The fix this module exists for: enter_room is a coroutine in python-socketio ≥5.10.
            await sio.enter_room(sid, session_id, namespace=namespace)
            await sio.emit("session_confirm", session_id, room=sid, namespace=namespace)

        @sio.on(self.user_message_evt, namespace=namespace)
        async def handle_message(sid: Text, data: Any) -> None:
            session = await sio.get_session(sid, namespace=namespace)
            sender_id = session.get("session_id")
            if not sender_id:
                # No session_request yet: there is no conversation to put this in.
                logger.info("webchat: message before session_request ignored")
                return
            if not isinstance(data, dict):
                return
            text = data.get("message")
            if not isinstance(text, str) or not text.strip():
                return
            if data.get("session_id") not in (None, sender_id):
                logger.info("webchat: message names another session; sent to its own")
            metadata = data.get(self.metadata_key) or {}
            if isinstance(metadata, str):
                try:
                    metadata = json.loads(metadata)
                except ValueError:
                    metadata = {}
            if not isinstance(metadata, dict):
                metadata = {}
            message = UserMessage(
                text[:MAX_MESSAGE_CHARS],
                WebChatOutput(sio, self.bot_message_evt),
                sender_id,
                input_channel=self.name(),
                metadata=metadata,
            )
            await run_turn(message, on_new_message, timeout_s=self.turn_timeout_s,
                           channel=self.name())

        return bp


def active_channel() -> Optional[WebChatInput]:
    """The web chat channel of this Rasa server process, once Rasa has built its routes."""
    return _active


async def send_to_conversation(
    sender_id: Text, text: Text, extra: Optional[Dict[str, Any]] = None
) -> int:
    """Module-level form of ``WebChatInput.send_to_conversation`` for the staff relay.

    Only works inside the Rasa server process that runs the channel (socket.io rooms live in
    that process's memory); raises RuntimeError elsewhere.
    """
    channel = _active
    if channel is None:
        raise RuntimeError("the web chat channel is not running in this process")
    return await channel.send_to_conversation(sender_id, text, extra)
