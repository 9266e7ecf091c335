"""The SMS (Twilio) channel: ``bot.channels.sms.SmsInput`` in credentials.yml.

Routes (Rasa mounts the blueprint under ``/webhooks/sms``):
- ``POST /webhooks/sms/webhook``: Twilio's incoming-message webhook. Checks the signature,
  stores the message in the inbox and answers empty TwiML at once; the bot answers later.
- ``POST /webhooks/sms/status``: Twilio's delivery status callback for messages we sent.
- ``GET /webhooks/sms/``: liveness of the channel's worker and sender.

Unlike Rasa's stock Twilio connector this never holds Twilio's request for a bot turn,
never blocks the event loop to send, retries properly, and never uses or logs the phone
number as the conversation id. See docs/sms.md.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable, Iterable
from typing import Any
from urllib.parse import parse_qs

from rasa.core.channels.channel import InputChannel, OutputChannel, UserMessage
from sanic import Blueprint, response
from sanic.request import Request, RequestParameters
from sanic.response import HTTPResponse
from twilio.request_validator import RequestValidator

from bot.channels import inbox, server_hooks
from bot.sms import outbox
from bot.store.dbthread import DbThread
from bot.channels.contact_turn import contact_rules
from bot.channels.feedback_turn import survey_first
from bot.channels.plan_turn import plan_first
from bot.channels.gate import gated, recently_at_risk
from bot.sms.pseudonym import BadNumber, normalise_number
from bot.channels.ratelimit import TokenBucket
from bot.channels.turnloop import TurnLoop
from bot.channels.worker import InboxWorker
from bot.escalation import delivery, staff_sms
from bot.settings import check as check_settings
from bot.settings import settings

logger = logging.getLogger(__name__)

EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'
_SID = re.compile(r"[A-Z]{2}[0-9a-fA-F]{32}")  # fullmatch: "$" would let a newline through
# Twilio's delivery statuses are short lower-case words and its error codes are numbers.
_STATUS_WORD = re.compile(r"[a-z_]{1,24}")
_ERROR_CODE = re.compile(r"[0-9]{1,32}")
# Twilio's own limit is 1,600 characters; anything far beyond is not Twilio.
MAX_BODY = 5000
MAX_MEDIA = 10
# A whole webhook request: Twilio's are a few KB (about 25 fields; 45 with ten pictures). An
# unsigned 10 MB form once held the Rasa server for seconds while it was read and parsed, so
# the signature header is looked for before the body is read, and a body is read only up to
# this size (413 beyond), its fields counted as they are parsed (413 beyond MAX_FIELDS).
MAX_REQUEST_BYTES = 64 * 1024
MAX_FIELDS = 100


# ``Received.kind`` of a text from a staff phone, answered (once per MessageSid) by the staff handler
STAFF = staff_sms.STAFF_KIND
# The outbox kinds this process writes: bot replies, the help and fail-safe replies, the
# answers to staff texts (``staff_sms``) and staff members' messages through the relay.
SERVER_KINDS = frozenset({"reply", "help", "failsafe", staff_sms.REPLY_KIND, outbox.STAFF_KIND})


def ingest_many(items: list[tuple]) -> list[Any]:
    """The webhook's database work for every message queued together, in order.

    Staff phones are answered by ``staff_sms`` (each in its own transaction; a failure there
    fails that message only); the rest are stored by ``inbox.receive_many`` in one transaction.
    """
    results: list[Any] = [None] * len(items)
    people: list[int] = []
    for i, (sid, number, body, _num_media) in enumerate(items):
        try:
            if staff_sms.handle_if_staff(number, body, sid):
                results[i] = inbox.Received(None, "", STAFF)
                continue
        except Exception as exc:  # noqa: BLE001  handed to that webhook only
            results[i] = exc
            continue
        people.append(i)
    if people:
        for i, received in zip(people, inbox.receive_many([items[i] for i in people]),
                               strict=True):
            results[i] = received
    return results


def _retrieve(future: asyncio.Future) -> None:
    if not future.cancelled():
        future.exception()  # marks it retrieved: no "exception was never retrieved" log


class TooManyFields(Exception):
    """A form with more than ``MAX_FIELDS`` fields."""


def _plain(status: int, text: str) -> HTTPResponse:
    return response.text(text, status=status, content_type="text/plain; charset=utf-8")


class SmsOutput(OutputChannel):
    """Turns each bot message into outbox rows; the sender posts them.

    ``recipient_id`` is the pseudonym (the Rasa sender id), never a number: the sender looks
    the number up in ``sms_contacts`` at the last moment.

    ``defer`` (the inbox worker's turns): a message is queued for the database thread and the
    turn goes on without waiting for the commit; ``flush`` waits for them all, after the turn
    has given back its slot of the turn gate. Each write still starts the moment the bot says
    the message (the 999 reply is not held back to the end of the turn), in the order said.
    Waiting for each commit inside the turn kept a gate slot idle for a round trip through a
    busy database thread per message.
    """

    def __init__(self, runtime: SmsRuntime, inbox_id: int | None = None,
                 replay: bool = False, defer: bool = False) -> None:
        self.runtime = runtime
        self.inbox_id = inbox_id
        # A turn run again after a crash: what it already sent is not sent twice.
        self.replay = replay
        self.defer = defer
        self.sent = 0  # messages the bot produced in this turn (the worker checks for none)
        self._pending: list[asyncio.Future] = []

    @classmethod
    def name(cls) -> str:
        return "sms"

    async def send_text_message(self, recipient_id: str, text: str, **kwargs: Any) -> None:
        self.sent += 1
        if self.defer:
            self._pending.append(self.runtime.enqueue_soon(
                recipient_id, text, "reply", self.inbox_id, self.replay))
        else:
            await self.runtime.enqueue(recipient_id, text, "reply", self.inbox_id, self.replay)

    async def flush(self) -> None:
        """Wait until every deferred message is written; raise the first write that failed."""
        pending, self._pending = self._pending, []
        if not pending:
            return
        results = await asyncio.gather(*pending, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result

    def abandon(self) -> None:
        """The turn failed: its deferred writes finish on their own, their errors unheard
        (the worker sends the fail-safe reply)."""
        pending, self._pending = self._pending, []
        for future in pending:
            future.add_done_callback(_retrieve)

    async def send_text_with_buttons(
        self, recipient_id: str, text: str, buttons: list[dict[str, Any]], **kwargs: Any
    ) -> None:
        # One SMS with numbered options, not one SMS per button as Rasa's default would send.
        lines = [text] + [f"{i}: {b.get('title', '')}" for i, b in enumerate(buttons, start=1)]
        await self.send_text_message(recipient_id, "\n".join(lines))

    async def send_image_url(self, recipient_id: str, image: str, **kwargs: Any) -> None:
        await self.send_text_message(recipient_id, image)

    async def send_elements(
        self, recipient_id: str, elements: Iterable[dict[str, Any]], **kwargs: Any
    ) -> None:
        for element in elements:
            text = " - ".join(p for p in (element.get("title"), element.get("subtitle")) if p)
            if text:
                await self.send_text_message(recipient_id, text)

    async def send_custom_json(
        self, recipient_id: str, json_message: dict[str, Any], **kwargs: Any
    ) -> None:
        # Only text makes sense by SMS; raw JSON would reach a person's phone otherwise.
        text = json_message.get("text") or json_message.get("body")
        if text:
            await self.send_text_message(recipient_id, str(text))
        else:
            logger.warning("sms: custom message without text for %s not sent", recipient_id)


class SmsRuntime:
    """The channel's background parts in one process: the inbox worker and the outbox sender.

    Both live in the Rasa server's event loop; the bot turns the worker starts run in a second
    loop in their own thread (``turnloop.py``), so that a busy bot never delays the webhook.
    """

    def __init__(self, options: dict[str, Any]) -> None:
        self.options = options
        # All the channel's database work, the webhook's first (see dbthread.py). On a server
        # database the webhook's writes get a thread and connection of their own, so a message
        # never queues behind the worker's and sender's work; SQLite has one writer at a time,
        # and two writing threads would only meet in its busy handler.
        self.db = DbThread()
        sqlite = settings().database_url.startswith("sqlite")
        self.ingest_db = self.db if sqlite else DbThread("sms-ingest")
        # The turns' replies too: py-spy at 50 SMS conversations had the one database thread
        # busy three quarters of the time, mostly waiting on PostgreSQL's answers, with the
        # replies' writes queued behind the worker's claims and finishes.
        self.out_db = self.db if sqlite else DbThread("sms-out")
        # SMS_SENDER=duty (the default on PostgreSQL): the duty service posts what this
        # process writes, woken by a NOTIFY, and its CPU is not taken from the bot's turns;
        # this process's sender only covers for it, when a part is 3 s late.
        self.duty_sends = settings().sms_sender == "duty"
        self.sender = delivery.outbox_sender(
            run_db=self.run_db,
            max_attempts=options["max_send_attempts"],
            backoff_base_s=options["backoff_base_s"],
            backoff_cap_s=options["backoff_cap_s"],
            send_timeout_s=options["send_timeout_s"],
            # Covering for the duty service, a pass only looks for parts already late: one
            # every half of that delay, not every poll_s (py-spy: those passes were a seventh
            # of this process's database thread under load, claiming nothing).
            poll_s=max(options["poll_s"], outbox.BACKUP_AFTER_S / 2) if self.duty_sends
            else options["poll_s"],
            # Replies to people and answers to staff texts are written here; staff alerts
            # and the line's messages in an escalation by the duty service, whose sender
            # takes ours (and we theirs) only when they have waited (outbox.BACKUP_AFTER_S).
            kinds=() if self.duty_sends else SERVER_KINDS,
        )
        self.worker: InboxWorker | None = None
        self.turns = TurnLoop()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._starting: asyncio.Lock | None = None

    @property
    def started(self) -> bool:
        return self.worker is not None

    async def start(self, handler: Callable[[UserMessage], Awaitable[Any]]) -> None:
        """Start the sender, then the worker (both pick up what an earlier run left)."""
        if self._starting is None:
            self._starting = asyncio.Lock()
        async with self._starting:
            if self.worker is not None:
                return
            self._loop = asyncio.get_running_loop()
            await self.sender.start()
            self.turns.start()
            opts = self.options

            # In the turn thread, through the process's turn gate (risk first, gate.py), the
            # block list and fair use (contact_turn.py), plan words and a plan being built
            # (plan_turn.py), then a live survey; the turn's replies are written after it has
            # given back its slot (SmsOutput.defer).
            gated_turn = gated(contact_rules(plan_first(survey_first(handler))))

            async def turn_in_thread(message: UserMessage) -> Any:
                output = message.output_channel
                try:
                    result = await gated_turn(message)
                except BaseException:
                    if isinstance(output, SmsOutput):
                        output.abandon()
                    raise
                if isinstance(output, SmsOutput):
                    await output.flush()
                return result

            async def turn(message: UserMessage) -> Any:
                return await self.turns.run(turn_in_thread, message)

            self.worker = InboxWorker(
                turn,
                lambda inbox_id, replay=False: SmsOutput(self, inbox_id, replay, defer=True),
                self.enqueue,
                turn_timeout_s=opts["turn_timeout_s"],
                turn_hard_limit_s=opts["turn_hard_limit_s"],
                lease_s=opts["lease_s"],
                poll_s=opts["poll_s"],
                purge_first_after_s=opts["purge_first_after_s"],
                limiter=TokenBucket(opts["rate_capacity"], opts["rate_refill_per_s"]),
                retention_days=settings().sms_retention_days,
                run_db=self.run_db,
            )
            await self.worker.start()
            logger.info("sms: worker and sender started (%s mode)",
                        "Twilio" if settings().twilio_configured else "local, not sending")

    async def stop(self) -> None:
        worker, self.worker = self.worker, None
        if worker is not None:
            await worker.stop()
        await self.sender.stop()
        await asyncio.to_thread(self.turns.stop)
        for extra in (self.ingest_db, self.out_db):
            if extra is not self.db:
                extra.close()
        self.db.close()

    def wake(self, risk: bool = False) -> None:
        if self.worker is not None:
            self.worker.wake(risk)

    async def run_db(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await self.db.background(fn, *args)

    @staticmethod
    def urgent(pid: str, kind: str) -> bool:
        """A part the sender posts without waiting for the gap between its passes: the
        fail-safe reply, and anything said in a conversation that showed risk within the hour
        (the turn gate remembers it before the turn starts, so the reply with 999 is one)."""
        return kind == "failsafe" or recently_at_risk(pid)

    async def enqueue(self, pid: str, text: str, kind: str, inbox_id: int | None,
                      replay: bool = False) -> None:
        await self.enqueue_soon(pid, text, kind, inbox_id, replay)

    def enqueue_soon(self, pid: str, text: str, kind: str, inbox_id: int | None,
                     replay: bool = False) -> asyncio.Future:
        """``enqueue`` without waiting: the write is queued now, its future returned."""
        urgent = self.urgent(pid, kind)
        future = self.out_db.background_soon(outbox.enqueue, pid, text, kind, inbox_id,
                                             self.options["max_segments"], replay,
                                             self.duty_sends, urgent)
        if not self.duty_sends:
            future.add_done_callback(lambda _f: self.wake_sender(urgent))
        return future

    def wake_sender(self, urgent: bool = False) -> None:
        """Wake the sender from either loop (bot replies are written from the turn thread).

        Not when the duty service posts (``duty_sends``): its NOTIFY has told it, and a pass
        here would claim nothing."""
        if self.duty_sends:
            return
        loop = self._loop
        try:
            current = asyncio.get_running_loop()
        except RuntimeError:
            current = None
        if loop is None or current is loop:
            self.sender.wake(urgent)
        else:
            try:
                loop.call_soon_threadsafe(self.sender.wake, urgent)
            except RuntimeError:
                pass  # the server's loop is closed: the sender is gone with it


DEFAULTS: dict[str, Any] = {
    "turn_timeout_s": None,  # None: SMS_TURN_TIMEOUT_S (default 8)
    "turn_hard_limit_s": 120.0,
    "lease_s": 30.0,
    "poll_s": 0.5,
    "max_send_attempts": 6,
    "backoff_base_s": 1.0,
    "backoff_cap_s": 60.0,
    "send_timeout_s": 10.0,
    "max_segments": 3,
    "rate_capacity": 5.0,
    "rate_refill_per_s": 0.5,
    # The first purge of old rows (SMS_RETENTION_DAYS) after start-up: a restart stays light.
    "purge_first_after_s": 300.0,
}


class SmsInput(InputChannel):
    """Twilio SMS in; settings come from the environment (bot/settings.py)."""

    @classmethod
    def name(cls) -> str:
        return "sms"

    @classmethod
    def from_credentials(cls, credentials: dict[str, Any] | None) -> InputChannel:
        # The Rasa server loads its channels as it starts: in production it stops here on an
        # unsafe setting, naming it (bot.settings.check).
        check_settings(settings(), "Rasa server")
        # Secrets stay in the environment; credentials.yml may only tune the channel.
        known = {k: v for k, v in (credentials or {}).items() if k in DEFAULTS}
        unknown = sorted(set(credentials or {}) - set(known))
        if unknown:
            logger.warning("sms: ignoring unknown credentials.yml keys %s", unknown)
        return cls(**known)

    def __init__(self, **options: Any) -> None:
        unknown = set(options) - set(DEFAULTS)
        if unknown:
            raise TypeError(f"unknown SmsInput options: {sorted(unknown)}")
        merged = {**DEFAULTS, **{k: v for k, v in options.items() if v is not None}}
        if merged["turn_timeout_s"] is None:
            merged["turn_timeout_s"] = float(settings().sms_turn_timeout_s)
        self.options = merged
        self.runtime = SmsRuntime(merged)

    def get_output_channel(self) -> OutputChannel:
        # For messages not caused by an inbound SMS (reminders, staff relay, trigger_intent).
        return SmsOutput(self.runtime)

    # -- request checks ----------------------------------------------------------------------

    @staticmethod
    def _form(request: Request, raw: bytes) -> RequestParameters | None:
        """The form fields of ``raw``, blank ones kept; None when it is not a readable form.

        Not ``request.form``: sanic 21.12 drops blank fields (``Body=`` of a picture message,
        Twilio's empty ``FromCity=``...) although Twilio's signature covers them, and it logs a
        traceback for an undecodable body. Raises ``TooManyFields`` beyond ``MAX_FIELDS``.
        """
        content_type = (request.content_type or "").split(";")[0].strip().lower()
        if content_type != "application/x-www-form-urlencoded":
            return None
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            return None
        try:
            return RequestParameters(parse_qs(text, keep_blank_values=True,
                                              max_num_fields=MAX_FIELDS))
        except ValueError as exc:
            if "Max number of fields exceeded" in str(exc):
                raise TooManyFields() from None
            return None

    @staticmethod
    def _may_be_signed(request: Request) -> bool:
        """Whether reading the body could be worth it: False for a request that cannot pass
        the signature check whatever its body (no X-Twilio-Signature, or local mode without
        SMS_ALLOW_UNSIGNED), so it is refused before a byte of the body is read."""
        cfg = settings()
        if not cfg.twilio_auth_token:
            return cfg.sms_allow_unsigned
        return bool(request.headers.get("X-Twilio-Signature", ""))

    @classmethod
    async def _read_form(cls, request: Request) -> tuple[HTTPResponse | None,
                                                          RequestParameters | None]:
        """(a refusal, None) or (None, the form, or None when the body is not a form), for a
        streamed request: the checks that need no body first, then at most
        ``MAX_REQUEST_BYTES`` read, then the signature."""
        length = request.headers.get("Content-Length")
        if length is not None and (not length.strip().isdigit()
                                   or int(length) > MAX_REQUEST_BYTES):
            return _plain(413, f"request larger than {MAX_REQUEST_BYTES} bytes"), None
        # The signature is checked first, so a caller without one learns nothing else.
        if not cls._may_be_signed(request):
            return _plain(403, "invalid signature"), None
        raw = bytearray()
        while True:
            chunk = await request.stream.read() if request.stream is not None else None
            if chunk is None:
                break
            raw += chunk
            if len(raw) > MAX_REQUEST_BYTES:  # chunked, so no Content-Length said so
                return _plain(413, f"request larger than {MAX_REQUEST_BYTES} bytes"), None
        try:
            form = cls._form(request, bytes(raw))
        except TooManyFields:
            return _plain(413, f"more than {MAX_FIELDS} form fields"), None
        if not cls._signed(request, form):
            return _plain(403, "invalid signature"), None
        return None, form

    @staticmethod
    def _signed(request: Request, form: RequestParameters | None) -> bool:
        cfg = settings()
        token = cfg.twilio_auth_token
        if not token:
            # Local mode: refuse everything unless a developer explicitly allowed it.
            return cfg.sms_allow_unsigned
        signature = request.headers.get("X-Twilio-Signature", "")
        if not signature:
            return False
        # Twilio signs the public URL it called, which behind a proxy is not the one we see.
        url = cfg.public_base_url + request.path
        if request.query_string:
            url += "?" + request.query_string
        return RequestValidator(token).validate(url, form or {}, signature)

    # -- routes --------------------------------------------------------------------------------

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        bp = Blueprint("sms_webhook", __name__)
        runtime = self.runtime

        @bp.listener("before_server_start")
        async def _limit(_app: Any, _loop: Any) -> None:
            # The whole Rasa server's request size limit (sanic's default is 100 MB), set here
            # because every Rasa server of the line loads this channel, however it is started.
            _app.config.REQUEST_MAX_SIZE = settings().rasa_max_body_bytes

        @bp.listener("after_server_start")
        async def _start(_app: Any, _loop: Any) -> None:
            # The model is loaded (Rasa loads it before the server starts): the Rasa runtime,
            # when installed, freezes the heap and starts the NLU process here
            # (bot/rasa_runtime/__init__.py, bot/channels/server_hooks.py).
            agent = getattr(getattr(_app, "ctx", None), "agent", None)
            processor = agent.processor if agent is not None else None
            for hook in server_hooks.after_start:
                hook(processor)
            await runtime.start(on_new_message)

        @bp.listener("before_server_stop")
        async def _stop(_app: Any, _loop: Any) -> None:
            await runtime.stop()
            for hook in server_hooks.before_stop:
                await asyncio.to_thread(hook)

        @bp.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            return response.json({
                "status": "ok" if runtime.started else "starting",
                "mode": "twilio" if settings().twilio_configured else "local",
                "nlu": server_hooks.nlu_state[-1](),
            })

        # Streamed: the handler runs before the body is read (``_read_form``).
        @bp.route("/webhook", methods=["POST"], stream=True)
        async def webhook(request: Request) -> HTTPResponse:
            try:
                return await self._webhook(request, on_new_message)
            except Exception as exc:  # noqa: BLE001
                # Exception messages can carry bound SQL parameters (the number, the text):
                # only the type is logged. 500 makes Twilio report the failure.
                logger.error("sms webhook: could not store the message (%s)",
                             type(exc).__name__)
                return _plain(500, "could not store the message")

        @bp.route("/status", methods=["POST"], stream=True)
        async def status(request: Request) -> HTTPResponse:
            try:
                return await self._status(request)
            except Exception as exc:  # noqa: BLE001
                logger.error("sms status: could not record (%s)", type(exc).__name__)
                return _plain(500, "could not record the status")

        return bp

    async def _webhook(
        self, request: Request, on_new_message: Callable[[UserMessage], Awaitable[Any]]
    ) -> HTTPResponse:
        refused, form = await self._read_form(request)
        if refused is not None:
            return refused
        if form is None:
            return _plain(400, "expected a form-encoded Twilio webhook")
        sid = form.get("MessageSid") or form.get("SmsSid") or ""
        if not _SID.fullmatch(sid):
            return _plain(400, "missing or malformed MessageSid")
        try:
            number = normalise_number(form.get("From") or "")
        except BadNumber:
            return _plain(400, "missing or malformed From")
        try:
            num_media = int(form.get("NumMedia") or 0)
        except ValueError:
            return _plain(400, "malformed NumMedia")
        if not 0 <= num_media <= MAX_MEDIA:
            return _plain(400, "malformed NumMedia")
        body = form.get("Body")
        if body is not None:
            # No phone sends a NUL on purpose, and PostgreSQL cannot store one in text: drop
            # it rather than lose the message (found by tests/fuzz).
            body = body.replace("\x00", "")
        if body is None and num_media == 0:
            return _plain(400, "missing Body")
        if body is not None and len(body) > MAX_BODY:
            return _plain(413, "Body too long")
        # One trip to the database thread: a staff phone's text (ACK E7K2Q, ACCEPT/DECLINE a
        # referral) goes to the staff handler, never to the inbox or the assistant; anything
        # else is stored in the inbox (a media-only message as a message with no words).
        received = await self.runtime.ingest_db.ingest_batched(
            ingest_many, sid, number, body or "", num_media
        )
        if received.kind == STAFF:
            logger.info("sms webhook: %s from a staff phone handled by the staff handler", sid)
            self.runtime.wake_sender()
            return response.text(EMPTY_TWIML, content_type="text/xml")
        if received.duplicate:
            logger.info("sms webhook: %s repeated; acknowledged, not processed again", sid)
        else:
            logger.info("sms webhook: %s stored for %s (%s)", sid, received.pseudonym,
                        received.kind)
            if not self.runtime.started:
                # The listener normally starts it; this covers apps that never fire it.
                await self.runtime.start(on_new_message)
            self.runtime.wake(received.risk or recently_at_risk(received.pseudonym))
        return response.text(EMPTY_TWIML, content_type="text/xml")

    async def _status(self, request: Request) -> HTTPResponse:
        refused, form = await self._read_form(request)
        if refused is not None:
            return refused
        if form is None:
            return _plain(400, "expected a form-encoded status callback")
        sid = form.get("MessageSid") or form.get("SmsSid") or ""
        status = (form.get("MessageStatus") or form.get("SmsStatus") or "").lower()
        # Anything else is not Twilio, and would not fit the outbox's columns (or, with a NUL,
        # not be storable at all on PostgreSQL): 400, not 500 (found by tests/fuzz).
        if not _SID.fullmatch(sid) or not _STATUS_WORD.fullmatch(status):
            return _plain(400, "missing MessageSid or MessageStatus")
        raw_code = form.get("ErrorCode") or ""
        error_code = raw_code if _ERROR_CODE.fullmatch(raw_code) else None
        pid = await self.runtime.ingest_db.ingest(delivery.apply_status, sid, status, error_code)
        if pid:
            logger.warning("sms status: %s for %s is %s (error %s)", sid, pid, status,
                           error_code)
        return response.empty()

