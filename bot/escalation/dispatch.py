"""The alert dispatcher and the escalation ladder (runs in the duty service).

Work comes from ``escalation_alerts`` rows (``bot/store/models/handoff.py``): ``record_escalation``
writes the first tier's job with the escalation; processing a job writes the next one, due
after the tier's acknowledgement timeout. So the ladder's timers live in the database and
survive any process dying.

Exactly once, with any number of duty services:

1. ``claim_jobs`` takes due jobs with a lease (a leased queue, ``bot/store/queue.py``:
   ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so two dispatchers never claim the same row;
   SQLite has one writer at a time). A job whose lease ran out (its dispatcher died) is due
   again.
2. ``process_job`` does everything a job means in ONE transaction: it re-checks the lease and
   the escalation's status (under the escalation's row lock, the same lock acknowledge
   takes), writes the SMS outbox rows for the people on call, the audit entry, the escalation's
   new status, the next job, and marks this job done. Killed before the commit, nothing of it
   happened and the job is claimed again after its lease; killed after, it is done.
3. The SMS outbox (``bot/sms/outbox.py``) then owns delivery: its rows are claimed with
   leases too, and a row's status decides whether it is posted again. Its one documented gap:
   a process killed after Twilio accepted a message and before the row was marked sends that
   message a second time.

Nothing here reads or writes message text, and phone numbers exist only in memory on their
way into ``sms_contacts`` (encrypted); logs carry references, tier ids and staff ids.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import socket
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Optional

from sqlalchemy import bindparam, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from bot.store.models.sms import OUT_PENDING, SmsContact, SmsOutbox
from bot.sms.pseudonym import encrypt_number, pseudonym
from bot.sms.segments import split_message
from bot.escalation import audit, engine, flood
from bot.escalation import rota as rota_module
from bot.escalation.rota_store import RotaSource  # noqa: F401  re-exported: the rota's readers use it
from bot.store.models.handoff import (
    JOB_CANCELLED,
    JOB_CLAIMED,
    JOB_DONE,
    JOB_PENDING,
    KIND_EXHAUSTED,
    KIND_REALERT,
    KIND_TELL_ACCEPTED,
    KIND_TELL_DECLINED,
    KIND_TIER,
    PURPOSE_EXHAUSTED,
    PURPOSE_REALERT,
    PURPOSE_TIER,
    AlertJob,
    AlertSms,
)
from bot.settings import settings
from bot.store.db import transaction
from bot.store.loop import AT_ONCE, BackgroundLoop
from bot.store.models import Escalation, utcnow
from bot.store.queue import LeasedQueue

logger = logging.getLogger(__name__)

ALERT_KIND = "alert"  # sms_outbox.kind of a staff alert
PERSON_KIND = "to_person"  # sms_outbox.kind of a message from the line to the person
# Said to the person when every tier was alerted and nobody acknowledged. Honest (no human yet),
# and the three routes that are always open. Fits one SMS.
NO_HUMAN_TEXT = (
    "I'm sorry, I haven't been able to reach someone from our team yet. If you are in danger "
    "now, call 999. You can call NHS 111 and choose option 2, or Samaritans free on 116 123, "
    "any time. I'm still here."
)


def accepted_text(house: str) -> str:
    return (f"{house} can offer you a place tonight. Someone from the team will tell you how to "
            f"get there. If things get worse before then, call 999.")


def declined_text(house: str) -> str:
    return (f"Sorry, {house} can't offer a place tonight. Someone from the team is still with "
            f"you and will look at other options.")


def mask_number(number: str) -> str:
    """A phone number fit for a log line: country code and last two digits only."""
    return (number[:3] + "…" + number[-2:]) if number and len(number) > 6 else "…"


def _waited(created_at: dt.datetime, now: dt.datetime) -> str:
    if created_at.tzinfo is None:  # SQLite hands back naive UTC
        created_at = created_at.replace(tzinfo=dt.timezone.utc)
    seconds = max(0, int((now - created_at).total_seconds()))
    if seconds < 60:
        return f"{seconds}s"
    return f"{seconds // 60} min"


def alert_text(esc: Escalation, now: dt.datetime, step: int, public_url: str) -> str:
    """Level, reference, time waited and the console link: never what the person wrote."""
    lead = "STILL UNACKNOWLEDGED: " if step > 0 else ""
    return (
        f"{lead}{esc.level.upper()} escalation {esc.ref}: a person has waited "
        f"{_waited(esc.created_at, now)}. Reply ACK {esc.ref} or open "
        f"{public_url}/duty/e/{esc.ref}"
    )


def exhausted_text(esc: Escalation, now: dt.datetime, public_url: str, repeat: int = 0) -> str:
    lead = f"REMINDER {repeat}: STILL " if repeat else ""
    return (
        f"{lead}NOBODY ACKNOWLEDGED {esc.level.upper()} escalation {esc.ref} (waited "
        f"{_waited(esc.created_at, now)}); the person has been given 999/111/Samaritans. "
        f"Reply ACK {esc.ref} or open {public_url}/duty/e/{esc.ref}"
    )


# --- blocking database work (run in a thread) ------------------------------------------------


# The alert jobs as a leased queue (``bot/store/queue.py``); each claim counts as an attempt.
QUEUE = LeasedQueue(AlertJob, ready=JOB_PENDING, claimed=JOB_CLAIMED)
# Due jobs, and jobs whose claimer's lease ran out (it died): those are taken at once, not
# after a separate reclaim. Soonest due first.
_CLAIM = QUEUE.claimer(
    where=(AlertJob.due_at <= bindparam("now"),),
    order_by=(AlertJob.due_at, AlertJob.id),
    scan_limit=None,
    include_expired=True,
)


def claim_jobs(owner: str, lease: dt.timedelta, limit: int = 16) -> list[int]:
    """Claim due jobs (and jobs whose claimer's lease ran out) for ``owner``."""
    return [row.id for row in _CLAIM(owner, limit=limit, lease=lease)]


def release_job(job_id: int, owner: str) -> None:
    """Give a job back after a failed attempt, so it is retried at once rather than after
    its lease (an alert must not wait 30 s because of one deadlocked transaction)."""
    QUEUE.release(owner, [job_id])


def register_contact(session: Session, number: str) -> str:
    """The pseudonym under which the outbox addresses ``number`` (encrypted contact row)."""
    pid = pseudonym(number)
    now = utcnow()
    values = dict(pseudonym=pid, number_enc=encrypt_number(number), opted_out=False,
                  created_at=now, last_seen_at=now)
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    # Two dispatchers alerting the same person at once must not collide on the key.
    session.execute(insert(SmsContact).values(**values).on_conflict_do_nothing())
    return pid


def _enqueue(session: Session, pid: str, text: str, kind: str) -> list[int]:
    """Outbox rows written inside the caller's transaction (``outbox.enqueue`` opens its own)."""
    now = utcnow()
    parts = split_message(text, max_segments=3)
    ids = []
    for n, part in enumerate(parts, start=1):
        row = SmsOutbox(
            pseudonym=pid, inbox_id=None, kind=kind, body=part.text, part=n, parts=len(parts),
            encoding=part.encoding, segments=part.segments, status=OUT_PENDING, attempts=0,
            next_attempt_at=now, created_at=now, updated_at=now,
        )
        session.add(row)
        session.flush()
        ids.append(row.id)
    return ids


def alert_staff(session: Session, esc: Escalation, member: rota_module.StaffMember, text: str,
                purpose: str, job_id: Optional[int] = None) -> list[int]:
    """Queue ``text`` to one member of staff and remember which escalation it was for
    (``escalation_alert_sms``), in the caller's transaction: if Twilio refuses the number
    for good, ``alert_undeliverable`` finds the escalation from the outbox row."""
    ids = _enqueue(session, register_contact(session, member.phone), text, ALERT_KIND)
    now = utcnow()
    for outbox_id in ids:
        session.add(AlertSms(outbox_id=outbox_id, escalation_id=esc.id, job_id=job_id,
                             purpose=purpose, staff_id=member.id, created_at=now))
    session.flush()
    return ids


@dataclass
class Outcome:
    job_id: int
    ref: str = ""
    action: str = "none"  # alerted, skipped, exhausted, stopped, lost_lease
    outbox_ids: list[int] = field(default_factory=list)
    staff: list[str] = field(default_factory=list)
    # For a conversation not on SMS: what the person must be told, and where. The caller
    # delivers it (the Rasa server's relay endpoint); it is recorded in the trail either way.
    notify_conversation: Optional[str] = None
    notify_channel: Optional[str] = None
    notify_text: Optional[str] = None


def _tell_person(session: Session, esc: Escalation, text: str, out: Outcome) -> dict[str, Any]:
    """SMS: an outbox row in this transaction. Other channels: handed to the caller, who posts
    it to the Rasa server's relay after the commit. What was done goes in the trail."""
    told: dict[str, Any] = {"channel": esc.channel}
    if esc.channel == "sms" and session.get(SmsContact, esc.conversation_id) is not None:
        told["outbox_ids"] = _enqueue(session, esc.conversation_id, text, PERSON_KIND)
        told["delivered_by"] = "sms_outbox"
        out.outbox_ids += told["outbox_ids"]
    else:
        told["delivered_by"] = "relay"
        out.notify_conversation = esc.conversation_id
        out.notify_channel = esc.channel
        out.notify_text = text
    return told


def _duty_managers(r: rota_module.Rota, now: dt.datetime) -> list[rota_module.StaffMember]:
    found: dict[str, rota_module.StaffMember] = {}
    for tier in r.tiers.values():
        for member in r.on_call(tier, now):
            if member.role == "duty_manager":
                found.setdefault(member.id, member)
    return list(found.values())


def reminder_recipients(r: rota_module.Rota, level: str,
                        now: dt.datetime) -> tuple[list[rota_module.StaffMember], str]:
    """Who hears "NOBODY ACKNOWLEDGED" now, and who they are (for the trail).

    The duty managers on call; with none on call (office hours, a gap in the rota), whoever
    is on call now in the escalation's ladder, last tier first; with nobody there either,
    anyone on call in any tier. So a ladder never ends on nobody while anyone is on call at
    all, and the rota is read at each reminder, so the next person to come on shift is told.
    """
    managers = _duty_managers(r, now)
    if managers:
        return managers, "duty manager"
    for tiers, who in ((list(reversed(r.ladder(level))), "on call in the ladder"),
                       (list(r.tiers.values()), "on call")):
        found: dict[str, rota_module.StaffMember] = {}
        for tier in tiers:
            for member in r.on_call(tier, now):
                found.setdefault(member.id, member)
        if found:
            return list(found.values()), who
    return [], "nobody"


def process_job(job_id: int, owner: str, r: rota_module.Rota,
                timeout_override: Optional[int] = None) -> Outcome:
    """Do one claimed job, in one transaction (see the module docstring)."""
    cfg = settings()
    now = utcnow()
    out = Outcome(job_id)
    with transaction() as s:
        job = s.execute(select(AlertJob).where(AlertJob.id == job_id).with_for_update()).scalar_one()
        if job.status != JOB_CLAIMED or job.lease_owner != owner:
            out.action = "lost_lease"  # our lease ran out and another dispatcher has it
            return out
        esc = engine.load(s, job.escalation_id)
        out.ref = esc.ref
        job.status, job.done_at, job.lease_owner, job.lease_until = JOB_DONE, now, None, None
        if job.kind in (KIND_TELL_ACCEPTED, KIND_TELL_DECLINED):
            # Telling the person a house's answer: due whatever the status is now.
            house_id = (engine.referred_house(s, esc.id) or {}).get("house", "")
            house = r.sanctuaries.get(house_id)
            name = house.name if house else "The sanctuary house"
            accepted = job.kind == KIND_TELL_ACCEPTED
            text = accepted_text(name) if accepted else declined_text(name)
            told = _tell_person(s, esc, text, out)
            out.action = "told"
            audit.append(s, esc, "person_told", "system:dispatcher",
                         reason=f"told the house's answer ({'accepted' if accepted else 'declined'})",
                         data={**told, "house": house_id})
            return out
        if esc.status not in engine.ALERTABLE or job.level != esc.level:
            # Acknowledged (or raised to another ladder) since the job was written.
            job.status = JOB_CANCELLED
            out.action = "stopped"
            return out
        ladder = r.ladder(job.level)
        timeout = engine.ack_timeout_s(job.level, timeout_override)

        if job.kind == KIND_TIER:
            tier = ladder[job.step]
            people = r.on_call(tier, now)
            if people:
                text = (flood.alert_lead_in(s, esc, cfg.duty_public_url)
                        + alert_text(esc, now, job.step, cfg.duty_public_url))
                for member in people:
                    out.outbox_ids += alert_staff(s, esc, member, text, PURPOSE_TIER, job.id)
                out.staff = [m.id for m in people]
                out.action = "alerted"
                engine._mark_alerted(
                    s, esc, "system:dispatcher",
                    f"{tier.name} alerted by SMS (step {job.step + 1} of {len(ladder)})",
                    {"tier": tier.id, "step": job.step, "staff": out.staff,
                     "outbox_ids": out.outbox_ids, "ack_timeout_s": timeout},
                )
                next_due = now + dt.timedelta(seconds=timeout)
            else:
                out.action = "skipped"
                audit.append(s, esc, "tier_skipped", "system:dispatcher",
                             reason=f"nobody on call for {tier.name}",
                             data={"tier": tier.id, "step": job.step})
                next_due = now  # straight on to the next tier
            if job.step + 1 < len(ladder):
                engine.schedule_alert(s, esc, job.level, job.step + 1, next_due)
            else:
                engine.schedule_alert(s, esc, job.level, len(ladder), next_due, KIND_EXHAUSTED)
            return out

        managers, who = reminder_recipients(r, job.level, now)
        interval = engine.realert_interval_s(job.level, timeout_override)
        manager_rows: list[int] = []
        if job.kind == KIND_REALERT:
            # Still nobody: the duty managers (or whoever is on call now) again, at a steady
            # interval, until someone acknowledges. The person is not messaged again (they
            # were told once, honestly, with the numbers; repeating it every few minutes
            # would only add to the noise).
            repeat = max(1, job.step - len(ladder))
            text = exhausted_text(esc, now, cfg.duty_public_url, repeat=repeat)
            for member in managers:
                manager_rows += alert_staff(s, esc, member, text, PURPOSE_REALERT, job.id)
            out.action = "realerted" if managers else "realert_skipped"
            out.outbox_ids += manager_rows
            out.staff = [m.id for m in managers]
            if managers:
                audit.append(s, esc, "re_alerted", "system:dispatcher",
                             reason=f"still unacknowledged; {who} alerted again "
                                    f"(reminder {repeat})",
                             data={"level": job.level, "repeat": repeat, "staff": out.staff,
                                   "outbox_ids": manager_rows, "next_in_s": interval})
            else:
                # The rota has nobody on call at all: tried again at the next reminder.
                logger.error("dispatcher: escalation %s unacknowledged and nobody on call "
                             "in the rota; trying again in %ss", esc.ref, int(interval))
                audit.append(s, esc, "re_alert_skipped", "system:dispatcher",
                             reason="still unacknowledged and nobody on call in the rota",
                             data={"level": job.level, "repeat": repeat, "next_in_s": interval})
            engine.schedule_alert(s, esc, job.level, job.step + 1,
                                  now + dt.timedelta(seconds=interval), KIND_REALERT)
            esc.updated_at = now
            return out

        # KIND_EXHAUSTED: every tier had its chance.
        out.action = "exhausted"
        told = _tell_person(s, esc, NO_HUMAN_TEXT, out)
        text = exhausted_text(esc, now, cfg.duty_public_url)
        for member in managers:
            manager_rows += alert_staff(s, esc, member, text, PURPOSE_EXHAUSTED, job.id)
        out.outbox_ids += manager_rows
        out.staff = [m.id for m in managers]
        audit.append(s, esc, "ladder_exhausted", "system:dispatcher",
                     reason=f"no tier acknowledged in time; {who} alerted",
                     data={"level": job.level, "staff": out.staff, "outbox_ids": manager_rows,
                           "realert_in_s": interval})
        audit.append(s, esc, "person_told", "system:dispatcher",
                     reason="told honestly that nobody is free yet; given 999, 111 option 2, "
                            "Samaritans 116 123", data=told)
        # Until someone acknowledges, whoever is on call then is reminded every ``interval``.
        engine.schedule_alert(s, esc, job.level, len(ladder) + 1,
                              now + dt.timedelta(seconds=interval), KIND_REALERT)
        esc.updated_at = now
        return out


# Outbox statuses that mean an SMS will never reach the phone.
UNDELIVERABLE = frozenset({"failed", "suppressed_opted_out"})


@dataclass
class Undeliverable:
    ref: str
    purpose: str
    staff: str
    brought_forward: bool  # the next tier's alert was made due now


def alert_undeliverable(outbox_id: int, error_code: Optional[str],
                        session: Optional[Session] = None) -> Optional[Undeliverable]:
    """A staff SMS will never arrive (Twilio refused the number, it opted out, no number).

    Returns None when ``outbox_id`` was not a staff alert (the caller treats it as a message
    to the person). Otherwise the refusal goes on the escalation's trail (once, however often
    it is reported) and, when it was a ladder alert and nobody else in that tier can now be
    reached, the next tier's job is made due at once instead of after the tier's timeout.
    """
    if session is None:
        with transaction() as own:
            return alert_undeliverable(outbox_id, error_code, session=own)
    link = session.get(AlertSms, outbox_id)
    if link is None:
        return None
    # The escalation's row lock first (as the dispatcher and acknowledge take it), then the
    # link: two refusals reported at once are handled one after the other.
    esc = engine.load(session, link.escalation_id)
    link = session.execute(
        select(AlertSms).where(AlertSms.outbox_id == outbox_id).with_for_update()
    ).scalar_one()
    result = Undeliverable(esc.ref, link.purpose, link.staff_id, False)
    if link.failed_at is not None:
        return result  # already handled (a status callback after the send error, say)
    now = utcnow()
    link.failed_at = now
    data: dict[str, Any] = {"outbox_id": outbox_id, "staff": link.staff_id,
                            "purpose": link.purpose, "error_code": error_code}
    audit.append(session, esc, "alert_undeliverable", "system:dispatcher",
                 reason=f"alert SMS to {link.staff_id} cannot be delivered "
                        f"(error {error_code or 'unknown'})", data=data)
    if link.purpose == PURPOSE_TIER and link.job_id is not None and esc.status in engine.ALERTABLE:
        job = session.get(AlertJob, link.job_id)
        siblings = session.execute(
            select(AlertSms.staff_id, AlertSms.failed_at).where(AlertSms.job_id == link.job_id)
        ).all()
        reachable = {staff for staff, failed in siblings} - {
            staff for staff, failed in siblings if failed is not None
        }
        if job is not None and job.level == esc.level and not reachable:
            nxt = session.execute(
                select(AlertJob).where(
                    AlertJob.escalation_id == esc.id, AlertJob.level == job.level,
                    AlertJob.step == job.step + 1, AlertJob.status == JOB_PENDING,
                    AlertJob.kind.in_((KIND_TIER, KIND_EXHAUSTED)),
                ).with_for_update()
            ).scalar_one_or_none()
            if nxt is not None:
                nxt.due_at = now
                # Reported in the Rasa server's sender as often as in the duty service's:
                # wake the dispatchers (on commit) rather than wait for their poll.
                engine.announce_due(session, nxt.id)
                result.brought_forward = True
                audit.append(session, esc, "ladder_advanced", "system:dispatcher",
                             reason="nobody in the tier can be reached by SMS; next step now, "
                                    "not after the timeout",
                             data={"from_step": job.step, "to_step": nxt.step,
                                   "kind": nxt.kind})
    esc.updated_at = now
    session.flush()
    return result


# --- the background task ---------------------------------------------------------------------


class Dispatcher:
    """Claims and processes due alert jobs; several may run against one database.

    Woken by ``wake()``: on PostgreSQL, by the duty service's listener
    (``bot/escalation/wakeup.py``) as soon as a due job is committed in any process; in this
    process, by the risk safety net. The poll (``poll_s``) is the safety net under those: it
    finds jobs on SQLite, jobs whose ladder timeout ran out, and anything announced while the
    listener was reconnecting.
    """

    def __init__(
        self,
        rota_path: Optional[str] = None,
        *,
        poll_s: float = 0.25,
        lease_s: float = 30.0,
        batch: int = 16,
        timeout_override: Optional[int] = None,
        run_db: Callable[..., Awaitable[Any]] = asyncio.to_thread,
        on_enqueued: Optional[Callable[[], None]] = None,
        notify: Optional[Callable[[str, str, str, str], Awaitable[None]]] = None,
    ) -> None:
        self.rota = RotaSource(rota_path or settings().rota_file)
        # Jobs claimed per pass. A full batch means more may be due: the next pass starts at once.
        self.batch = batch
        self.lease = dt.timedelta(seconds=lease_s)
        self.timeout_override = timeout_override
        self._db = run_db
        self.on_enqueued = on_enqueued
        # notify(conversation_id, channel, ref, text): tells a person off SMS (web chat)
        # through the Rasa server's relay.
        self.notify = notify
        self.owner = f"{socket.gethostname()[:30]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.loop = BackgroundLoop("alert-dispatcher", self._pass, poll_s=poll_s, log=logger,
                                   label="dispatcher")
        self._full_batch = False
        self.outcomes: list[Outcome] = []  # recent results, for tests and /health later

    async def start(self) -> None:
        await self._db(self.rota.get)  # fail at start-up on a broken rota, not at 3 am
        self.loop.start()

    async def stop(self) -> None:
        await self.loop.stop()

    def wake(self) -> None:
        self.loop.wake()

    @property
    def poll_s(self) -> float:
        return self.loop.poll_s

    async def run_once(self) -> list[Outcome]:
        ids = await self._db(claim_jobs, self.owner, self.lease, self.batch)
        results = []
        for job_id in ids:
            outcome = await self._process(job_id)
            if outcome is not None:
                results.append(outcome)
        # Not when every job failed: those were released and would be claimed again in a
        # tight loop; the poll's pause is the back-off then.
        self._full_batch = len(ids) >= self.batch and bool(results)
        return results

    async def _process(self, job_id: int) -> Optional[Outcome]:
        try:
            r = await self._db(self.rota.get)
            out = await self._db(process_job, job_id, self.owner, r, self.timeout_override)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001  the next pass retries; no data in the log
            logger.error("dispatcher: job %s failed (%s); released for retry",
                         job_id, type(exc).__name__)
            try:
                await self._db(release_job, job_id, self.owner)
            except Exception:  # noqa: BLE001  the lease runs out instead
                pass
            return None
        self.outcomes = (self.outcomes + [out])[-200:]
        if out.action in ("alerted", "exhausted", "skipped", "told", "realerted",
                          "realert_skipped"):
            logger.info("dispatcher: escalation %s job %s %s (staff %s)",
                        out.ref, job_id, out.action, ",".join(out.staff) or "-")
        if out.outbox_ids and self.on_enqueued is not None:
            self.on_enqueued()  # the SMS sender posts now rather than at its next poll
        if out.notify_conversation and self.notify is not None:
            try:
                await self.notify(out.notify_conversation, out.notify_channel or "", out.ref,
                                  out.notify_text or "")
            except Exception as exc:  # noqa: BLE001  recorded in the trail as undelivered
                logger.error("dispatcher: could not tell the person on %s (%s)",
                             out.ref, type(exc).__name__)
        return out

    async def _pass(self) -> Optional[float]:
        self._full_batch = False
        await self.run_once()
        # Fifty escalations at once are four batches: the rest must not wait a poll each (nor
        # rely on a notification arriving meanwhile). Otherwise until woken or the poll comes
        # round; a wake during the pass is kept, so a job announced while this pass was
        # claiming is picked up straight after it.
        return AT_ONCE if self._full_batch else None
