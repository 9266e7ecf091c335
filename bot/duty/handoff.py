"""The duty service's half of the handoff: dispatcher, SMS sender and the takeover engine.

- ``handoff_ctx`` (a ``cleanup_ctx``, added by ``create_app(..., dispatch=True)``) runs the
  alert dispatcher (``bot/escalation/dispatch.py``) and an SMS outbox sender in this process.
  The sender is the SMS channel's own (``bot/sms/outbox.py``): it claims rows with leases,
  so it can run here and in the Rasa server at once without sending a row twice.
- It also runs the held-conversation risk watcher (``bot/escalation/watch.py``): a person's
  urgent or imminent message in a conversation a human holds alerts the holder and the duty
  manager at once.
- And the risk safety net (``bot/escalation/safety_net.py``): an urgent or imminent message
  in any conversation that the assistant did not record (the action server down) gets its
  escalation here, and the dispatcher is woken to alert at once.
- And the feedback survey's quiet-period watcher (``bot/feedback/quiet_watch.py``): a
  conversation that ended without a goodbye is offered the survey once, through the relay.
- And the wait watcher (``bot/escalation/wait_watch.py``): a person waiting for a human
  (nobody has acknowledged, taken over or resolved their escalation) gets an update every
  ``WAIT_UPDATE_SECONDS``, with an estimate or an honest "I don't know yet", through the
  relay's ``/wait`` step, which refuses once a human holds the conversation.
- On PostgreSQL, the alert wake-up (``bot/escalation/wakeup.py``): it LISTENs for the
  NOTIFY that a due alert job's transaction sends on commit (the action server's
  ``record_escalation``, in another process) and wakes the dispatcher, so the first alert
  does not wait for the dispatcher's poll. The poll stays, as the safety net.
- ``RelayTakeover`` is the ``TakeoverEngine`` the console uses: state changes go through the
  escalation engine (validated, audited, row-locked); what the person sees goes through the
  Rasa server's staff relay (``bot/channels/relay.py``), which pauses and resumes the
  assistant and delivers on SMS or web chat. When staff resolve a conversation in the
  console, it offers the feedback survey the same way (``resolved``). Its rota (for the
  houses it offers) is read in the database threads and kept in memory, because the console
  asks for the houses from a request handler, on the event loop, and must not wait on the
  disk there.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any, Optional

import aiohttp
from aiohttp import web
from sqlalchemy.orm import Session

from bot.escalation.delivery import outbox_sender
from bot.feedback.offers import ABSENT, REFUSED, UNREACHABLE, NotSent, OfferMessage, Offers
from bot.feedback.quiet_watch import QuietWatcher
from bot.sms.outbox import OUTBOX_CHANNEL, OutboxSender
from bot.duty.keys import (
    DB_EXECUTOR_KEY, DISPATCH_TIMINGS_KEY, ENGINE_KEY, HTTP_KEY, SETTINGS_KEY, DispatchTimings,
)
from bot.duty.staff import Principal
from bot.duty.takeover import TakeoverError
from bot.escalation import audit, engine
from bot.escalation.checkpoints import CheckpointWriter
from bot.escalation import rota as rota_module
from bot.escalation.dispatch import ALERT_KIND, PERSON_KIND, Dispatcher, RotaSource, alert_staff
from bot.store.models.handoff import PURPOSE_REFERRAL
from bot.escalation.safety_net import RiskSafetyNet
from bot.escalation import wait_watch
from bot.escalation.wait_watch import WaitMessage, WaitWatcher
from bot.plan import store as plan_store
from bot.escalation.wakeup import AlertWakeup
from bot.escalation.watch import HeldRiskWatcher
from bot.settings import Settings
from bot.store.models import Escalation

logger = logging.getLogger(__name__)

DISPATCHER_KEY = web.AppKey("dispatcher", Dispatcher)
SENDER_KEY = web.AppKey("sms_sender", OutboxSender)
WATCHER_KEY = web.AppKey("held_risk_watcher", HeldRiskWatcher)
SAFETY_NET_KEY = web.AppKey("risk_safety_net", RiskSafetyNet)
QUIET_KEY = web.AppKey("feedback_quiet_watcher", QuietWatcher)
WAIT_KEY = web.AppKey("wait_watcher", WaitWatcher)
CHECKPOINTS_KEY = web.AppKey("audit_checkpoints", CheckpointWriter)
WAKEUP_KEY = web.AppKey("alert_wakeup", AlertWakeup)
RELAY_TIMEOUT_S = 5.0
# How old the in-memory rota may get before a console page asks for a fresh read (in the
# background: that page still gets the copy in memory).
ROTA_REFRESH_S = 15.0


class RelayRefused(TakeoverError):
    """The relay answered, and not with 200: ``code`` is its error code (``not_present`` ...)."""

    def __init__(self, message: str, code: Any) -> None:
        super().__init__(message)
        self.code = code


class RelayClient:
    """POSTs to the Rasa server's staff relay (``$RASA_URL/webhooks/relay/...``)."""

    def __init__(self, settings: Settings, session: Optional[aiohttp.ClientSession] = None) -> None:
        self.base = settings.rasa_url.rstrip("/") + "/webhooks/relay"
        self.token = settings.relay_token
        self.session = session

    async def post(self, step: str, payload: dict[str, Any]) -> dict[str, Any]:
        if not self.token:
            raise TakeoverError("The staff relay is not configured (RELAY_TOKEN).")
        own = self.session is None
        session = self.session or aiohttp.ClientSession()
        try:
            async with session.post(
                f"{self.base}/{step}", json=payload,
                headers={"Authorization": f"Bearer {self.token}"},
                timeout=aiohttp.ClientTimeout(total=RELAY_TIMEOUT_S),
            ) as resp:
                body = await resp.json(content_type=None)
                if resp.status != 200:
                    code = body.get("error") if isinstance(body, dict) else resp.status
                    raise RelayRefused(f"The assistant server refused the step ({code}).", code)
                return body
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            raise TakeoverError(
                f"The assistant server could not be reached ({type(exc).__name__})."
            ) from None
        finally:
            if own:
                await session.close()

    async def send_offer(self, offer: OfferMessage) -> None:
        """The feedback survey's offer (``bot/feedback/offers.py``'s ``send``): through the
        relay's ``/feedback`` step, like a staff reply; ``NotSent`` when it did not go."""
        payload: dict[str, Any] = {
            "conversation_id": offer.conversation_id, "channel": offer.channel,
            "text": offer.text, "choices": list(offer.choices), "trigger": offer.trigger,
        }
        if offer.ref:
            payload["ref"] = offer.ref
        try:
            await self.post("feedback", payload)
        except RelayRefused as exc:
            raise NotSent(ABSENT if exc.code == "not_present"
                          else REFUSED if exc.code in ("bad_request", "unsupported_channel")
                          else UNREACHABLE) from None
        except TakeoverError:
            raise NotSent(UNREACHABLE) from None


async def send_wait(relay: RelayClient, message: WaitMessage) -> None:
    """An update to a person waiting for a human (``WaitWatcher``'s ``send``): through the
    relay's ``/wait`` step; ``NotSent`` when it did not go (``paused``: a human has it)."""
    payload = {"conversation_id": message.conversation_id, "channel": message.channel,
               "ref": message.ref, "text": message.text}
    try:
        await relay.post("wait", payload)
    except RelayRefused as exc:
        raise wait_watch.NotSent(
            wait_watch.PAUSED if exc.code == "paused"
            else wait_watch.ABSENT if exc.code == "not_present"
            else wait_watch.REFUSED if exc.code in ("bad_request", "unsupported_channel")
            else wait_watch.UNREACHABLE) from None
    except TakeoverError:
        raise wait_watch.NotSent(wait_watch.UNREACHABLE) from None


def _conversation(session: Session, ref: str) -> tuple[str, str]:
    esc = engine.load(session, ref, lock=False)
    return esc.conversation_id, esc.channel


class RelayTakeover:
    """The console's takeover engine (see ``bot/duty/takeover.py`` for the contract)."""

    def __init__(self, settings: Settings, rota_path: Optional[str] = None) -> None:
        self.settings = settings
        self.rota = RotaSource(rota_path or settings.rota_file, settings.database_url)
        self.relay = RelayClient(settings)
        # The feedback survey's offer after a resolution goes the way staff replies go.
        self.offers = Offers(self.relay.send_offer, run_db=self._db)
        self.app: Optional[web.Application] = None  # bound by app_ctx
        # The last rota read (off the event loop) and when: ``referral_houses`` uses it.
        self._rota: Optional[rota_module.Rota] = None
        self._rota_at = float("-inf")
        self._refreshing: Optional[asyncio.Task] = None

    async def app_ctx(self, app: web.Application) -> AsyncIterator[None]:
        """cleanup_ctx (``create_app`` adds it after the database): bind to the app's
        database threads and HTTP session, and read the rota before the first request."""
        self.app = app
        self.relay.session = app[HTTP_KEY]
        try:
            await self.refresh_rota()
        except Exception as exc:  # noqa: BLE001  the console still works; houses stay empty
            logger.error("takeover: cannot read the rota (%s)", type(exc).__name__)
        yield
        task, self._refreshing = self._refreshing, None
        if task is not None:
            await asyncio.gather(task, return_exceptions=True)
        await self.offers.close()
        self.app = None

    async def refresh_rota(self) -> rota_module.Rota:
        """Read the current rota (a new version parsed once) in a database thread, never on
        the loop."""
        rota = await self._db(self.rota.get)
        self._rota = rota
        self._rota_at = asyncio.get_running_loop().time()
        return rota

    async def _db(self, fn, *args: Any, **kwargs: Any) -> Any:
        call = functools.partial(fn, *args, **kwargs)
        if self.app is not None:
            return await asyncio.get_running_loop().run_in_executor(self.app[DB_EXECUTOR_KEY], call)
        return await asyncio.to_thread(call)

    async def _step(self, fn, *args: Any, **kwargs: Any) -> Any:
        try:
            return await self._db(fn, *args, **kwargs)
        except engine.TransitionError as exc:
            raise TakeoverError(str(exc)) from None

    def _payload(self, ref: str, staff: Principal, cid: str, channel: str, **extra) -> dict:
        return {"conversation_id": cid, "channel": channel, "ref": ref, "actor": staff.actor,
                "display_name": staff.display_name, **extra}

    async def take_over(self, ref: str, staff: Principal) -> None:
        await self._step(engine.take_over, ref, staff.actor, staff.display_name)
        cid, channel = await self._step(_in_session, _conversation, ref)
        try:
            await self.relay.post("takeover", self._payload(ref, staff, cid, channel))
        except TakeoverError:
            # The assistant was not paused and the person not told: undo, so the console
            # never shows a take-over that did not happen.
            await self._step(engine.hand_back, ref, "system:relay",
                             reason="take-over undone: the assistant server could not be reached")
            raise

    async def reply(self, ref: str, staff: Principal, text: str) -> None:
        cid, channel = await self._step(_in_session, _check_holder, ref, staff.actor)
        await self.relay.post("send", self._payload(ref, staff, cid, channel, text=text))
        # The text is in the transcript (the tracker); the trail records that it was sent.
        await self._step(_in_session, _audit_message, ref, staff.actor, len(text))

    async def hand_back(self, ref: str, staff: Principal) -> None:
        cid, channel = await self._step(_in_session, _check_active, ref)
        # Resume first: if the relay fails the conversation stays with the human (active),
        # never "handed back" to an assistant that is still paused.
        await self.relay.post("handback", self._payload(ref, staff, cid, channel))
        await self._step(engine.hand_back, ref, staff.actor)

    async def refer(self, ref: str, staff: Principal, house: str) -> None:
        rota = await self.refresh_rota()  # the rota as it is now, read off the loop
        now = dt.datetime.now(dt.timezone.utc)
        if house not in {h.id for h in rota.houses_open(now)}:
            raise TakeoverError("That house is not taking referrals now.")
        people = rota.on_call(house, now)
        await self._step(_in_session, _refer_and_alert, ref, staff.actor, house,
                         people, self.settings.duty_public_url, self.settings.tz_line)
        if self.app is not None and SENDER_KEY in self.app:
            self.app[SENDER_KEY].wake()

    def resolved(self, ref: str) -> None:
        """Staff resolved ``ref`` in the console: offer the person the feedback survey, in
        the background, if they may be asked (``bot/feedback/offers.py``)."""
        self.offers.resolved(ref)

    def referral_houses(self) -> Sequence[tuple[str, str]]:
        """Houses with a volunteer on duty now, from the rota in memory (no file I/O here:
        the console calls this on the event loop). A stale copy starts a background read."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if (loop is not None and loop.time() - self._rota_at > ROTA_REFRESH_S
                and (self._refreshing is None or self._refreshing.done())):
            self._refreshing = loop.create_task(self._refresh_quietly())
        if self._rota is None:
            return []  # not read yet: offer nothing rather than guess
        now = dt.datetime.now(dt.timezone.utc)
        return [(h.id, h.name) for h in self._rota.houses_open(now)]

    async def _refresh_quietly(self) -> None:
        try:
            await self.refresh_rota()
        except Exception as exc:  # noqa: BLE001  keep the last good copy
            logger.error("takeover: cannot re-read the rota (%s)", type(exc).__name__)


def _in_session(fn, *args: Any) -> Any:
    from bot.store.db import transaction

    with transaction() as s:
        return fn(s, *args)


def _check_active(session: Session, ref: str) -> tuple[str, str]:
    esc = engine.load(session, ref, lock=False)
    if engine.taken_by(session, esc.id) is None or esc.status not in ("active", "referred"):
        raise engine.TransitionError(f"Cannot hand back {esc.ref}: it is {esc.status}.")
    return esc.conversation_id, esc.channel


def _check_holder(session: Session, ref: str, actor: str) -> tuple[str, str]:
    esc = engine.load(session, ref, lock=False)
    holder = (engine.taken_by(session, esc.id) or {}).get("staff")
    # A referral made while holding the conversation leaves it held (status "referred").
    if esc.status not in ("active", "referred") or holder is None:
        raise engine.TransitionError(f"Take {esc.ref} over before replying.")
    if holder != actor:
        raise engine.TransitionError(f"{esc.ref} is taken over by someone else.")
    return esc.conversation_id, esc.channel


def _audit_message(session: Session, ref: str, actor: str, chars: int) -> None:
    esc: Escalation = engine.load(session, ref)
    # Never the text: the trail is kept forever; the transcript holds what was said.
    audit.append(session, esc, "staff_message", actor, reason="message relayed to the person",
                 data={"chars": chars})


def _refer_and_alert(session: Session, ref: str, actor: str, house: str,
                     people: list[rota_module.StaffMember], public_url: str, tz_name: str) -> None:
    from bot.directory import beds as beds_module

    free = beds_module.free(session, [house], beds_module.tonight(tz_name)).get(house)
    if not free:
        # The house keeps its free beds in the console; no number tonight is no bed offered.
        raise engine.TransitionError("That house has no free bed recorded for tonight.")
    if not people:
        raise engine.TransitionError("Nobody is on duty at that house to take the referral.")
    rec = engine.refer(ref, actor, house, session=session)
    esc = engine.load(session, rec.id)
    text = (f"Sanctuary referral {esc.ref} ({esc.level}) to your house. Open "
            f"{public_url}/duty/sanctuary to accept or decline.")
    rows: list[int] = []
    for member in people:
        rows += alert_staff(session, esc, member, text, PURPOSE_REFERRAL)
    audit.append(session, esc, "referral_alerted", "system:dispatcher",
                 reason="house volunteers on duty alerted by SMS",
                 data={"house": house, "outbox_ids": rows})


async def handoff_ctx(app: web.Application) -> AsyncIterator[None]:
    cfg: Settings = app[SETTINGS_KEY]
    executor = app[DB_EXECUTOR_KEY]
    _ = app[ENGINE_KEY]  # database_ctx runs first: the executor and engine exist

    async def run_db(fn, *args):
        return await asyncio.get_running_loop().run_in_executor(
            executor, functools.partial(fn, *args)
        )

    relay = RelayClient(cfg, app[HTTP_KEY])

    async def notify(conversation_id: str, channel: str, ref: str, text: str) -> None:
        await relay.post("notify", {"conversation_id": conversation_id, "channel": channel,
                                    "ref": ref, "text": text})

    # Staff alerts and the line's messages to a person in an escalation are written here
    # (and go out at once: ``wake_urgent`` skips the gap between the sender's passes).
    # SMS_SENDER=duty (the default on PostgreSQL): the Rasa server's replies are posted here
    # too, woken by their NOTIFY, so the Rasa server spends its CPU on the bot's turns.
    # Otherwise they are its own sender's, taken here only when they have waited (the Rasa
    # server is down or stuck: outbox.BACKUP_AFTER_S).
    duty_sends = cfg.sms_sender == "duty"
    timings = app.get(DISPATCH_TIMINGS_KEY) or DispatchTimings()
    sender_timing = {} if timings.sender_poll_s is None else {"poll_s": timings.sender_poll_s}
    sender = outbox_sender(run_db=run_db,
                           kinds=None if duty_sends else (ALERT_KIND, PERSON_KIND),
                           **sender_timing)
    dispatcher = Dispatcher(cfg.rota_file, poll_s=timings.dispatch_poll_s,
                            timeout_override=cfg.escalation_ack_timeout_s,
                            run_db=run_db, on_enqueued=sender.wake_urgent, notify=notify)
    watcher = HeldRiskWatcher(cfg.rota_file, run_db=run_db, on_enqueued=sender.wake_urgent)
    net = RiskSafetyNet(run_db=run_db, on_recorded=dispatcher.wake)
    # A conversation that ended without a goodbye is offered the feedback survey once, after
    # FEEDBACK_QUIET_MINUTES (bot/feedback/quiet_watch.py), through the same relay.
    quiet = QuietWatcher(Offers(relay.send_offer, run_db=run_db),
                         quiet_s=cfg.feedback_quiet_minutes * 60.0,
                         poll_s=timings.quiet_poll_s, run_db=run_db)
    # A person waiting for a human hears how it is going every WAIT_UPDATE_SECONDS (0: never),
    # through the same relay (bot/escalation/wait_watch.py); to a person with a crisis plan
    # saved (bot/plan) it also offers PLAN.
    waits = (WaitWatcher(functools.partial(send_wait, relay), rota_path=cfg.rota_file,
                         interval_s=float(cfg.wait_update_seconds), poll_s=timings.wait_poll_s,
                         run_db=run_db, has_plan=plan_store.has_plan)
             if cfg.wait_update_seconds > 0 else None)
    # Connects in the database threads: shutdown does not wait for a connection attempt to
    # an unreachable server (``database_ctx`` drops them).
    wakeup = AlertWakeup(cfg.database_url, dispatcher.wake, run_db=run_db,
                         also={OUTBOX_CHANNEL: sender.wake} if duty_sends else None,
                         urgent={OUTBOX_CHANNEL: sender.wake_urgent} if duty_sends else None)
    await sender.start()
    await dispatcher.start()
    await watcher.start()
    await net.start()
    await quiet.start()
    if waits is not None:
        await waits.start()
        app[WAIT_KEY] = waits
    # A signed checkpoint of the audit trail now and hourly: what catches entries removed
    # from the end of a trail (bot/escalation/checkpoints.py, docs/audit.md).
    anchors = CheckpointWriter(poll_s=timings.checkpoint_poll_s, run_db=run_db,
                               url=cfg.database_url)
    await anchors.start()
    await wakeup.start()  # does nothing on SQLite
    app[SENDER_KEY] = sender
    app[DISPATCHER_KEY] = dispatcher
    app[WATCHER_KEY] = watcher
    app[SAFETY_NET_KEY] = net
    app[QUIET_KEY] = quiet
    app[CHECKPOINTS_KEY] = anchors
    app[WAKEUP_KEY] = wakeup
    logger.info("handoff: dispatcher%s, risk watcher, risk safety net, feedback quiet watcher, "
                "wait watcher (%s), audit checkpoints and SMS sender running",
                " (woken by NOTIFY)" if wakeup.enabled else " (polling)",
                f"every {cfg.wait_update_seconds}s" if waits is not None else "off")
    yield
    await stop_handoff(app)


async def stop_handoff(app: web.Application) -> None:
    """Stop the wake-up, the safety net, the watcher and the dispatcher, then the sender
    (idempotent).

    Also an ``on_shutdown`` hook: aiohttp (3.9) waits, before running cleanup contexts, for
    every task created after start-up, and the loops' per-poll wait tasks (``nap``) are such
    tasks; without stopping the loops first, shutdown would hang for ``shutdown_timeout``.
    """
    if WAKEUP_KEY in app:
        await app[WAKEUP_KEY].stop()  # closes its listening connection
    if SAFETY_NET_KEY in app:
        await app[SAFETY_NET_KEY].stop()
    if WAIT_KEY in app:
        await app[WAIT_KEY].stop()
    if QUIET_KEY in app:
        await app[QUIET_KEY].stop()
        await app[QUIET_KEY].offers.close()
    if CHECKPOINTS_KEY in app:
        await app[CHECKPOINTS_KEY].stop()
    if WATCHER_KEY in app:
        await app[WATCHER_KEY].stop()
    if DISPATCHER_KEY in app:
        await app[DISPATCHER_KEY].stop()
    if SENDER_KEY in app:
        await app[SENDER_KEY].stop()
