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
- A message that arrives before ``session_request`` (buffered by the client while offline) is
  taken in the session it names, not dropped; each message is acknowledged at once (the
  socket.io ack) and taken once per ``client_id``.
- Every ``bot_uttered`` has a ``message_id`` (the tracker event's timestamp and part); a
  ``session_request`` with ``last_message_id`` is sent, from the tracker, what came after it.
- Metadata (known keys, small), engine.io bodies (64 KB) and new sessions per client address
  are limited.
- Message text is never logged.
- A turn never ends in silence: one that raises, outlasts ``turn_timeout_s`` (default
  ``SMS_TURN_TIMEOUT_S``) or sends nothing (the action server down) is answered with the
  fail-safe reply and flagged to staff, unless a human holds the conversation
  (``bot/channels/failsafe.py``).

Staff relay (issue 5): ``send_to_conversation(sender_id, text)`` emits into a conversation's
room from anywhere in the Rasa server process; see its docstring.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
import uuid
from collections import OrderedDict, deque
from typing import Any, Awaitable, Callable, Deque, Dict, List, Optional, Sequence, Text, Tuple

from rasa.core.channels.channel import InputChannel, OutputChannel, UserMessage
from rasa.core.channels.socketio import SocketBlueprint, SocketIOOutput
from rasa.shared.core.events import BotUttered
from sanic import Blueprint, Sanic, response
from sanic.request import Request
from sanic.response import HTTPResponse
from socketio import AsyncServer

from bot import settings as settings_module
from bot.channels.failsafe import run_turn
from bot.channels.ratelimit import TokenBucket

logger = logging.getLogger(__name__)

# A session id is a capability: whoever knows it joins the conversation's room and reads the
# replies. We hand out uuid4 hex (122 random bits) and accept nothing else, so an id cannot
# be guessed, and nothing a browser sends can name an SMS conversation's pseudonym.
SESSION_ID_RE = re.compile(r"[0-9a-f]{32}")  # fullmatch: "$" would let a newline through
# Far above anything typed into a chat box; stops a client pushing megabytes through NLU.
MAX_MESSAGE_CHARS = 4000
# engine.io's own limit on one HTTP long-poll body or WebSocket frame (its default is 1 MB):
# a 4000-character message is at most 16 KB of UTF-8; a batch of a few fits too. A bigger
# body is refused before it is parsed.
MAX_HTTP_BUFFER_BYTES = 64 * 1024
# Message metadata is stored in the tracker with the message, for ever: only these keys, as
# short strings, and the whole under MAX_METADATA_BYTES. Nothing in the line reads any other.
METADATA_KEYS = {"language": 16}
MAX_METADATA_BYTES = 256
# New conversations per client address: a burst, then one a minute (the defaults of
# WEBCHAT_NEW_SESSION_BURST and WEBCHAT_NEW_SESSIONS_PER_MIN). A reload keeps its
# conversation and does not count; "End chat" then "Start a new chat" does.
NEW_SESSIONS_BURST = 5
# Bot messages recently sent live to a conversation's room, so that a replay does not send
# them twice to a page that was already listening (bounded: recent rooms, recent messages).
_LIVE_ROOMS = 2048
_LIVE_PER_ROOM = 32
_CLIENT_IDS = 8192
SENDERS = ("staff", "system")

# The channel instance serving this process (set by ``blueprint``), for staff relay.
_active: Optional["WebChatInput"] = None


def new_session_id() -> str:
    return uuid.uuid4().hex


def valid_session_id(value: Any) -> bool:
    return isinstance(value, str) and bool(SESSION_ID_RE.fullmatch(value))


def message_id(timestamp: float, part: int = 0) -> str:
    """The id of part ``part`` of the bot event stamped ``timestamp``.

    The event's own timestamp, as the tracker keeps it, so the id a page saw live is the id a
    replay computes from the tracker. ``part``: the stock protocol splits a reply at blank
    lines into several ``bot_uttered``.
    """
    return f"{timestamp!r}-{part}"


def parse_message_id(value: Any) -> Optional[Tuple[float, int]]:
    if not isinstance(value, str) or len(value) > 40:
        return None
    stamp, _, part = value.rpartition("-")
    try:
        return float(stamp), int(part)
    except ValueError:
        return None


def clean_metadata(raw: Any) -> Dict[str, str]:
    """The known keys of a message's metadata, as short strings; nothing else is kept."""
    if isinstance(raw, str) and len(raw) <= MAX_METADATA_BYTES:
        try:
            raw = json.loads(raw)
        except ValueError:
            return {}
    if not isinstance(raw, dict):
        return {}
    kept = {
        key: value for key, limit in METADATA_KEYS.items()
        if isinstance(value := raw.get(key), str) and 0 < len(value) <= limit
    }
    if len(json.dumps(kept)) > MAX_METADATA_BYTES:
        return {}
    return kept


def bot_payloads(message: Dict[str, Any]) -> List[Dict[str, Any]]:
    """The ``bot_uttered`` payloads of one bot event, each with its ``message_id``.

    The same function builds what goes out live (``WebChatOutput.send_response``, the staff
    relay) and what a replay sends from the tracker, so both carry the same ids. An assistant
    reply is cut at blank lines as Rasa's stock socket.io output does (buttons on the last
    part); a staff or system message goes whole, with who sent it, and so does the person's
    own plan, marked ``plan``. Nothing else from the
    event's metadata (``actor``, ``ref``, ``utter_action``) reaches the page.
    """
    stamp = message.get("timestamp")
    if not isinstance(stamp, (int, float)):
        stamp = time.time()
    text = message.get("text") or ""
    payloads: List[Dict[str, Any]] = []
    if message.get("sender") in SENDERS:
        if text:
            payloads.append({"text": text, "sender": message["sender"],
                             "sender_name": message.get("sender_name") or ""})
    elif message.get("plan") and text:
        # The person's own plan (bot/channels/plan_turn.py): one message, never cut, marked
        # so the page offers to print or copy it.
        payloads.append({"text": text, "plan": True})
    else:
        buttons = message.get("quick_replies") or message.get("buttons")
        if text or buttons:
            payloads += [{"text": part} for part in text.strip().split("\n\n")]
            if buttons:
                payloads[-1]["quick_replies"] = [
                    {"content_type": "text", "title": b.get("title"), "payload": b.get("payload")}
                    for b in buttons if isinstance(b, dict)
                ]
        if message.get("image"):
            payloads.append({"attachment": {"type": "image",
                                            "payload": {"src": message["image"]}}})
        if message.get("attachment"):
            payloads.append({"attachment": message["attachment"]})
        for element in message.get("elements") or []:
            payloads.append({"attachment": {"type": "template", "payload": {
                "template_type": "generic", "elements": element}}})
    for part, payload in enumerate(payloads):
        payload["message_id"] = message_id(float(stamp), part)
    return payloads


_LOOPBACK_ORIGIN = re.compile(r"^http://(localhost|127\.0\.0\.1|\[::1\])(:\d{1,5})?$")


def client_address(environ: Dict[str, Any]) -> str:
    """Who is asking, for the new-session limit.

    The peer's address; behind the shipped nginx (on this host, the Rasa server on loopback)
    the peer is the proxy, so a loopback peer's ``X-Real-IP`` (nginx's ``$remote_addr``) is
    used. A remote peer's headers are never trusted.
    """
    request = environ.get("sanic.request")
    peer = ""
    if request is not None:
        peer = (getattr(request, "ip", "") or "").strip()
    if peer in ("127.0.0.1", "::1") or not peer:
        forwarded = (environ.get("HTTP_X_REAL_IP") or "").strip()
        if forwarded and len(forwarded) <= 64:
            return forwarded
    return peer or "unknown"


class WebChatOutput(SocketIOOutput):
    """Replies go to the conversation's room (every tab/socket that joined that session),
    one ``bot_uttered`` per part, each with its ``message_id``."""

    def __init__(self, sio: AsyncServer, bot_message_evt: Text,
                 channel: Optional["WebChatInput"] = None) -> None:
        super().__init__(sio, bot_message_evt)
        self.channel = channel

    @classmethod
    def name(cls) -> Text:
        return "socketio"

    async def _send_message(self, socket_id: Text, response: Any) -> None:
        if self.channel is not None and isinstance(response, dict):
            self.channel.note_live(socket_id, response.get("message_id"))
        await self.sio.emit(self.bot_message_evt, response, room=socket_id)

    async def send_response(self, recipient_id: Text, message: Dict[str, Any]) -> None:
        # Rasa passes ``BotUttered.message()``: the event's timestamp is in it, so the ids
        # sent now are the ids a replay finds in the tracker.
        for payload in bot_payloads(dict(message)):
            await self._send_message(recipient_id, payload)

    async def send_text_message(self, recipient_id: Text, text: Text, **kwargs: Any) -> None:
        # The fail-safe reply comes this way (it is not in the tracker: its id is the time it
        # was sent, which a replay's cursor orders correctly).
        await self.send_response(recipient_id, {"text": text})

    async def send_text_with_buttons(self, recipient_id: Text, text: Text,
                                     buttons: List[Dict[Text, Any]], **kwargs: Any) -> None:
        await self.send_response(recipient_id, {"text": text, "buttons": buttons})

    async def send_image_url(self, recipient_id: Text, image: Text, **kwargs: Any) -> None:
        await self.send_response(recipient_id, {"image": image})

    async def send_attachment(  # type: ignore[override]
        self, recipient_id: Text, attachment: Dict[Text, Any], **kwargs: Any
    ) -> None:
        await self.send_response(recipient_id, {"attachment": attachment})


class _Blueprint(SocketBlueprint):
    """Rasa's socket.io blueprint that also tells the channel which Sanic app it runs in (the
    agent, with the tracker and lock stores a replay reads, is on ``app.ctx``)."""

    def __init__(self, channel: "WebChatInput", *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.ctx.channel = channel

    def register(self, app: Sanic, options: Dict[Text, Any]) -> None:
        self.ctx.channel.app = app
        super().register(app, options)


class WebChatInput(InputChannel):
    """``socketio`` channel with session persistence, awaited rooms, an origin allow-list,
    message ids and replay on reconnect."""

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
            new_sessions_burst=credentials.get("new_sessions_burst"),
            new_sessions_per_minute=credentials.get("new_sessions_per_minute"),
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
        new_sessions_burst: Optional[float] = None,
        new_sessions_per_minute: Optional[float] = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.user_message_evt = user_message_evt
        self.bot_message_evt = bot_message_evt
        self.namespace = namespace
        self.socketio_path = socketio_path
        self.metadata_key = metadata_key
        cfg = settings_module.settings()
        # None: read WEBCHAT_ALLOWED_ORIGINS (default: the duty service's own origins). Pages
        # on this machine (any port) are allowed only while nothing is configured.
        if allowed_origins is not None:
            self.allowed_origins = list(allowed_origins)
            self.loopback_pages = False
        else:
            self.allowed_origins = list(cfg.webchat_allowed_origins)
            self.loopback_pages = not cfg.webchat_origins_configured
        # None: SMS_TURN_TIMEOUT_S, the same patience as the SMS line's.
        self.turn_timeout_s = (
            float(turn_timeout_s) if turn_timeout_s is not None
            else float(cfg.sms_turn_timeout_s)
        )
        # None: WEBCHAT_NEW_SESSION_BURST / WEBCHAT_NEW_SESSIONS_PER_MIN.
        burst = new_sessions_burst if new_sessions_burst is not None \
            else cfg.webchat_new_session_burst
        per_min = new_sessions_per_minute if new_sessions_per_minute is not None \
            else cfg.webchat_new_sessions_per_min
        self.new_sessions = TokenBucket(float(burst), float(per_min) / 60.0, clock)
        self.sio: Optional[AsyncServer] = None
        self.app: Optional[Sanic] = None
        self._clock = clock
        self._live: "OrderedDict[str, Deque[Tuple[float, str]]]" = OrderedDict()
        self._client_ids: "OrderedDict[Tuple[str, str], None]" = OrderedDict()
        self._turns: set = set()

    def origin_allowed(self, origin: Optional[str], _environ: Any = None) -> bool:
        """Which browser pages may open the chat socket.

        The configured origins ("*" allows all). While ``WEBCHAT_ALLOWED_ORIGINS`` is unset,
        pages on this machine too (http://localhost or 127.0.0.1, any port), so a stock Rasa
        web widget on a local test page works out of the box; once it is set, only what it
        names. Non-browser clients send no Origin and are not subject to CORS.
        """
        if not origin:
            return True
        if "*" in self.allowed_origins or origin in self.allowed_origins:
            return True
        return self.loopback_pages and bool(_LOOPBACK_ORIGIN.match(origin))

    def get_output_channel(self) -> Optional[OutputChannel]:
        # Used by Rasa for messages it sends outside a turn (reminders, external events,
        # POST /conversations/{id}/trigger_intent).
        if self.sio is None:
            return None
        return WebChatOutput(self.sio, self.bot_message_evt, self)

    # --- messages sent live, and replay ----------------------------------------------------

    def note_live(self, session_id: str, msg_id: Any) -> None:
        if not isinstance(msg_id, str):
            return
        sent = self._live.get(session_id)
        if sent is None:
            sent = self._live[session_id] = deque(maxlen=_LIVE_PER_ROOM)
            while len(self._live) > _LIVE_ROOMS:
                self._live.popitem(last=False)
        else:
            self._live.move_to_end(session_id)
        sent.append((self._clock(), msg_id))

    def _seen_before(self, session_id: str, client_id: Any) -> bool:
        """Whether this conversation already took the message the page numbered
        ``client_id`` (remembered for recent messages only)."""
        if not isinstance(client_id, str) or not 0 < len(client_id) <= 64:
            return False
        key = (session_id, client_id)
        if key in self._client_ids:
            return True
        self._client_ids[key] = None
        while len(self._client_ids) > _CLIENT_IDS:
            self._client_ids.popitem(last=False)
        return False

    def _turn_done(self, task: "asyncio.Future[Any]") -> None:
        self._turns.discard(task)
        if not task.cancelled() and task.exception() is not None:
            # run_turn sends the fail-safe for a failed turn; only its own failure lands here.
            logger.error("webchat: a turn failed (%s)", type(task.exception()).__name__)

    def _sent_live_since(self, session_id: str, since: float) -> set:
        return {mid for at, mid in self._live.get(session_id, ()) if at >= since}

    def _agent(self) -> Any:
        return getattr(getattr(self.app, "ctx", None), "agent", None) if self.app else None

    async def _conversation_exists(self, session_id: str) -> bool:
        agent = self._agent()
        store = getattr(agent, "tracker_store", None)
        if store is None:
            return True  # cannot tell: do not count it as new
        try:
            return bool(await store.exists(session_id))
        except Exception as exc:  # noqa: BLE001  the database down: not the person's fault
            logger.warning("webchat: cannot tell whether a session exists (%s)",
                           type(exc).__name__)
            return True

    async def missed_messages(self, session_id: str, last_id: Optional[str]) -> List[Dict]:
        """The bot and staff messages of the conversation after ``last_id`` (all of them for
        None), from the tracker, as the page receives them.

        Taken under the conversation's lock, so a turn in progress finishes (and its replies
        are in the tracker) first. ``last_id`` found: what follows it. Not found (a fail-safe
        reply, which the tracker does not hold, or an earlier session): what was stamped
        after it.
        """
        agent = self._agent()
        if agent is None or getattr(agent, "tracker_store", None) is None:
            return []
        async with agent.lock_store.lock(session_id, wait_time_in_seconds=0.05):
            tracker = await agent.tracker_store.retrieve(session_id)
        if tracker is None:
            return []
        payloads: List[Dict[str, Any]] = []
        for event in tracker.events:
            if isinstance(event, BotUttered):
                payloads += bot_payloads(event.message())
        if last_id is None:
            return payloads
        ids = [p["message_id"] for p in payloads]
        if last_id in ids:
            return payloads[ids.index(last_id) + 1:]
        cursor = parse_message_id(last_id)
        if cursor is None:
            return payloads
        return [p for p in payloads if (parse_message_id(p["message_id"]) or (0, 0)) > cursor]

    def present(self, sender_id: Text) -> int:
        """How many sockets of the conversation are connected now (0: no page is open)."""
        if self.sio is None:
            raise RuntimeError("the web chat channel is not running in this process")
        namespace = self.namespace or "/"
        return len(list(self.sio.manager.get_participants(namespace, sender_id)))

    async def send_to_conversation(
        self, sender_id: Text, text: Text, extra: Optional[Dict[str, Any]] = None,
        timestamp: Optional[float] = None,
    ) -> int:
        """Emit ``bot_uttered`` ``{"text": text, **extra, "message_id": ...}`` to every socket
        of a conversation.

        Returns how many sockets are in the room right now (0: the carer's page is closed; the
        message was not delivered live, and is replayed from the tracker when the page comes
        back). For staff relay, pass ``extra={"sender": "staff", "sender_name": "Sam"}`` so the
        page can show who is writing, and ``timestamp`` the tracker event's, so the id is the
        one a replay gives; recording the message in the tracker is the caller's job.
        """
        if self.sio is None:
            raise RuntimeError("the web chat channel is not running in this process")
        if not valid_session_id(sender_id):
            raise ValueError("not a web chat conversation id")
        stamp = timestamp if timestamp is not None else time.time()
        payload = {"text": text, **(extra or {}), "message_id": message_id(stamp, 0)}
        namespace = self.namespace or "/"
        present = self.present(sender_id)
        self.note_live(sender_id, payload["message_id"])
        await self.sio.emit(self.bot_message_evt, payload, room=sender_id, namespace=namespace)
        return present

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        global _active
        sio = AsyncServer(
            async_mode="sanic",
            cors_allowed_origins=self.origin_allowed,
            max_http_buffer_size=MAX_HTTP_BUFFER_BYTES,
            # Neither library may log payloads: they hold what people type.
            logger=False,
            engineio_logger=False,
        )
        self.sio = sio
        _active = self
        bp = _Blueprint(self, sio, self.socketio_path, "webchat_socketio", __name__)
        namespace = self.namespace

        @bp.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @sio.on("connect", namespace=namespace)
        async def connect(sid: Text, environ: Dict, auth: Optional[Dict] = None) -> bool:
            async with sio.session(sid, namespace=namespace) as session:
                session["address"] = client_address(environ)
            return True

        @sio.on("disconnect", namespace=namespace)
        async def disconnect(sid: Text, *reason: Any) -> None:
            # python-socketio ≥5.12 may pass a reason; rooms are left automatically.
            return None

        async def start_session(sid: Text, asked: Any) -> Optional[str]:
            """Join the socket to its conversation and confirm it; None when refused.

            An id we could not have issued is replaced, not trusted (see SESSION_ID_RE). A new
            conversation (none asked for, or one with no tracker yet) costs a token of the
            client address's bucket; with none left the socket is told to wait.
            """
            session = await sio.get_session(sid, namespace=namespace)
            if valid_session_id(asked) and session.get("session_id") == asked:
                await sio.emit("session_confirm", asked, room=sid, namespace=namespace)
                return asked
            known = valid_session_id(asked) and await self._conversation_exists(asked)
            if not known:
                address = session.get("address") or "unknown"
                if not self.new_sessions.try_take(address):
                    wait = max(1, round(self.new_sessions.wait_s(address)))
                    logger.warning("webchat: new-session limit reached for a client address")
                    await sio.emit("session_refused",
                                   {"reason": "too_many_new_chats", "retry_after_s": wait},
                                   room=sid, namespace=namespace)
                    return None
            session_id = asked if valid_session_id(asked) else new_session_id()
            async with sio.session(sid, namespace=namespace) as stored:
                previous = stored.get("session_id")
                stored["session_id"] = session_id
                stored["joined_at"] = self._clock()
            if previous and previous != session_id:
                await sio.leave_room(sid, previous, namespace=namespace)
            # The fix this module exists for: enter_room is a coroutine in python-socketio ≥5.10.
            await sio.enter_room(sid, session_id, namespace=namespace)
            await sio.emit("session_confirm", session_id, room=sid, namespace=namespace)
            return session_id

        async def replay(sid: Text, session_id: str, last_id: Optional[str]) -> None:
            """Send this socket what the conversation said while it was away."""
            session = await sio.get_session(sid, namespace=namespace)
            joined = session.get("joined_at", 0.0)
            try:
                missed = await self.missed_messages(session_id, last_id)
            except Exception as exc:  # noqa: BLE001  the page keeps working without a replay
                logger.error("webchat: replay failed (%s)", type(exc).__name__)
                return
            live = self._sent_live_since(session_id, joined)
            for payload in missed:
                if payload["message_id"] not in live:
                    await sio.emit(self.bot_message_evt, payload, room=sid, namespace=namespace)

        @sio.on("session_request", namespace=namespace)
        async def session_request(sid: Text, data: Any) -> None:
            data = data if isinstance(data, dict) else {}
            asked = data.get("session_id")
            session_id = await start_session(sid, asked)
            # "last_message_id" present (null: the page has none yet) asks for what was sent
            # while the page was away; absent (the stock widgets), nothing is replayed.
            if session_id is not None and session_id == asked and "last_message_id" in data:
                last = data.get("last_message_id")
                await replay(sid, session_id, last if isinstance(last, str) else None)

        @sio.on(self.user_message_evt, namespace=namespace)
        async def handle_message(sid: Text, data: Any) -> Optional[Dict[str, Any]]:
            """Take a message and start its turn; the return value is the socket.io
            acknowledgement (the line's page marks a message sent only when it has one):
            ``{"ok": true}``, or ``{"ok": false, "error": ...}`` for what cannot be taken."""
            if not isinstance(data, dict):
                return {"ok": False, "error": "bad_message"}
            text = data.get("message")
            if not isinstance(text, str) or not text.strip():
                return {"ok": False, "error": "empty"}
            session = await sio.get_session(sid, namespace=namespace)
            sender_id = session.get("session_id")
            if not sender_id:
                # Before session_request (a client that buffered it while offline and sent it
                # first on reconnect, or handlers running out of order): start the session the
                # message names, as session_request would, rather than lose it.
                sender_id = await start_session(sid, data.get("session_id"))
                if sender_id is None:
                    return {"ok": False, "error": "too_many_new_chats"}
                logger.info("webchat: message before session_request; session started")
            elif data.get("session_id") not in (None, sender_id):
                logger.info("webchat: message names another session; sent to its own")
            if self._seen_before(sender_id, data.get("client_id")):
                # A page that lost our acknowledgement sends the message again.
                return {"ok": True, "duplicate": True}
            message = UserMessage(
                text[:MAX_MESSAGE_CHARS],
                WebChatOutput(sio, self.bot_message_evt, self),
                sender_id,
                input_channel=self.name(),
                metadata=clean_metadata(data.get(self.metadata_key)),
            )
            # The turn runs on its own; the acknowledgement goes now, not after the turn.
            # Rasa's lock keeps one conversation's turns in order.
            turn = asyncio.ensure_future(run_turn(message, on_new_message,
                                                  timeout_s=self.turn_timeout_s,
                                                  channel=self.name()))
            self._turns.add(turn)
            turn.add_done_callback(self._turn_done)
            return {"ok": True}

        return bp


def active_channel() -> Optional[WebChatInput]:
    """The web chat channel of this Rasa server process, once Rasa has built its routes."""
    return _active


async def send_to_conversation(
    sender_id: Text, text: Text, extra: Optional[Dict[str, Any]] = None,
    timestamp: Optional[float] = None,
) -> int:
    """Module-level form of ``WebChatInput.send_to_conversation`` for the staff relay.

    Only works inside the Rasa server process that runs the channel (socket.io rooms live in
    that process's memory); raises RuntimeError elsewhere.
    """
    channel = _active
    if channel is None:
        raise RuntimeError("the web chat channel is not running in this process")
    return await channel.send_to_conversation(sender_id, text, extra, timestamp)


def present(sender_id: Text) -> int:
    """Module-level form of ``WebChatInput.present`` (the staff relay asks before it offers
    the feedback survey: an offer to a closed page would be read by nobody)."""
    channel = _active
    if channel is None:
        raise RuntimeError("the web chat channel is not running in this process")
    return channel.present(sender_id)
