"""Texts from staff phones: ``ACK <ref>`` acknowledges an escalation and stops its ladder.

The SMS webhook asks ``is_staff_number`` before anything else: a staff member's text goes to
``handle_staff_sms``, never to the inbox or the assistant (it is not a conversation, and a
staff member texting "ACK" must not be answered by the bot or counted as a person).

Staff numbers come from the rota (the database's current version). Numbers are compared in E.164 and never
logged: a log line names the staff id, or a masked number for an unknown sender.
"""

from __future__ import annotations

import logging
import re
from typing import Optional

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError

from bot.sms import outbox
from bot.store.models.sms import INBOX_DONE, SmsInbox
from bot.sms.pseudonym import normalise_uk_number, pseudonym
from bot.escalation import engine
from bot.escalation import rota_store
from bot.escalation.dispatch import mask_number, register_contact
from bot.escalation.rota import Rota, StaffMember
from bot.settings import settings
from bot.store.db import transaction
from bot.store.models import utcnow

logger = logging.getLogger(__name__)

REPLY_KIND = "staff_reply"  # sms_outbox.kind of our answer to a staff text
STAFF_KIND = "staff"  # sms_inbox.kind of a handled staff text (its MessageSid, never its words)
# Roles that are alerted by the ladder and so may acknowledge; a sanctuary volunteer's phone
# is known too (referrals) but an ACK from it would stop the ladder without a clinician.
ACK_ROLES = ("peer_worker", "duty_manager", "crisis_team")
_COMMAND = re.compile(
    r"^\s*(ack|accept|decline|discharge)\s*[:#-]?\s*([a-z0-9]{4,12})\s*[.!]?\s*$", re.IGNORECASE
)
HELP = "Not understood. To acknowledge an alert, reply ACK and its reference, e.g. ACK E7K2Q."
VOLUNTEER_HELP = ("Not understood. Reply ACCEPT or DECLINE and the referral's reference, or "
                  "DISCHARGE and it when the person has left.")

def _rota() -> Rota:
    # The database's current rota (ROTA_FILE only seeds an empty database), one source per
    # database in this process; each read checks the latest version number.
    cfg = settings()
    return rota_store.source_for(cfg.rota_file, cfg.database_url).get()


def _e164(number: str) -> Optional[str]:
    return normalise_uk_number(number or "")


def staff_member(number: str) -> Optional[StaffMember]:
    """The rota's staff member with this phone number, or None."""
    e164 = _e164(number)
    if e164 is None:
        return None
    for member in _rota().staff.values():
        if member.phone == e164:
            return member
    return None


def is_staff_number(number: str) -> bool:
    try:
        return staff_member(number) is not None
    except Exception as exc:  # noqa: BLE001  a broken rota must not take the line down
        # Failing closed here would send staff texts to the bot; failing open would send a
        # person's text to the staff handler. The person matters more: treat as not staff.
        logger.error("staff sms: rota unavailable (%s)", type(exc).__name__)
        return False


def handle_staff_sms(number: str, body: str) -> str:
    """Act on one text from a staff phone; the reply to send back (never empty)."""
    member = staff_member(number)
    if member is None:
        logger.warning("staff sms: %s is not a staff number", mask_number(number))
        return "This number is not on the rota."
    match = _COMMAND.match(body or "")
    volunteer = member.role == "sanctuary_volunteer"
    if match is None:
        logger.info("staff sms: unrecognised command from staff %s", member.id)
        return VOLUNTEER_HELP if volunteer else HELP
    command, ref = match.group(1).lower(), match.group(2).upper()
    if command in ("accept", "decline"):
        return _referral_answer(member, ref, command == "accept")
    if command == "discharge":
        return _discharge(member, ref)
    if member.role not in ACK_ROLES:
        return f"Only on-call staff can acknowledge escalations; {ref} was not acknowledged."
    try:
        rec = engine.acknowledge(ref, f"staff:{member.id}", reason="ACK by SMS")
    except engine.NotFound:
        return f"No escalation {ref}. Check the reference in the alert."
    except engine.TransitionError as exc:
        logger.info("staff sms: ACK %s from staff %s refused", ref, member.id)
        return str(exc)  # e.g. "Cannot acknowledge E7K2Q: it is acknowledged."
    logger.info("staff sms: %s acknowledged by staff %s", rec.ref, member.id)
    link = f"{settings().duty_public_url}/duty/e/{rec.ref}"
    return f"Acknowledged {rec.ref}. Nobody else will be alerted. Open {link}"


def _referral_answer(member: StaffMember, ref: str, accepted: bool) -> str:
    houses = [h.id for h in _rota().sanctuaries.values() if member.id in h.volunteers]
    if not houses:
        return "Only sanctuary house volunteers can answer referrals."
    # Errors are caught outside the transaction, so that a refusal rolls back whatever the
    # answer had written (a bed taken for a referral that turns out to be accepted already).
    try:
        with transaction() as s:
            esc = engine.load(s, ref)
            house = (engine.referred_house(s, esc.id) or {}).get("house")
            if house not in houses:
                return f"{ref} is not referred to your house."
            engine.referral_response(esc.id, f"staff:{member.id}", house, accepted, session=s)
    except engine.NotFound:
        return f"No referral {ref}. Check the reference in the alert."
    except engine.TransitionError as exc:
        return str(exc)
    logger.info("staff sms: referral %s %s by staff %s", ref,
                "accepted" if accepted else "declined", member.id)
    if accepted:
        return f"Accepted {ref}. The person is being told; the duty team will arrange arrival."
    return f"Declined {ref}. The person is being told; the duty team will look at other options."


def _discharge(member: StaffMember, ref: str) -> str:
    houses = [h.id for h in _rota().sanctuaries.values() if member.id in h.volunteers]
    if not houses:
        return "Only sanctuary house volunteers can discharge."
    try:
        with transaction() as s:
            esc = engine.load(s, ref)
            held = engine.held_bed(s, esc.id)
            if held is None or held["house"] not in houses:
                return f"{ref} holds no bed at your house."
            engine.discharge(esc.id, f"staff:{member.id}", held["house"], session=s)
    except engine.NotFound:
        return f"No referral {ref}. Check the reference in the alert."
    except engine.TransitionError as exc:
        return str(exc)
    logger.info("staff sms: referral %s discharged by staff %s", ref, member.id)
    return f"Discharged {ref}. The bed is free again tonight."


def handle_and_reply(number: str, body: str) -> str:
    """``handle_staff_sms`` and queue its answer to the staff phone (blocking; for the webhook)."""
    reply = handle_staff_sms(number, body)
    member = staff_member(number)
    if member is not None:
        # The contact row addresses the reply; staff texts never go through the inbox, which
        # is where a person's contact is written.
        with transaction() as s:
            pid = register_contact(s, member.phone)
        outbox.enqueue(pid, reply, REPLY_KIND, None, 3, False, settings().sms_sender == "duty")
    return reply


def _claim(message_sid: str, number: str) -> bool:
    """Record ``message_sid`` as a handled staff text; False when it was recorded already.

    The row sits in the SMS inbox beside people's messages, so one unique MessageSid covers
    both: Twilio retrying a staff text's webhook (or two deliveries at once, on any process)
    finds it and is not handled again. It is written finished and without the text: no worker
    claims it, and the retention purge deletes it with the others.
    """
    now = utcnow()
    try:
        with transaction() as s:
            s.add(SmsInbox(message_sid=message_sid, pseudonym=pseudonym(number), body=None,
                           num_media=0, kind=STAFF_KIND, status=INBOX_DONE, attempts=1,
                           received_at=now, started_at=now, done_at=now))
    except IntegrityError:
        return False
    return True


def _unclaim(message_sid: str) -> None:
    """Forget a claim whose handling failed, so that Twilio's retry is handled after all."""
    with transaction() as s:
        s.execute(delete(SmsInbox).where(SmsInbox.message_sid == message_sid,
                                         SmsInbox.kind == STAFF_KIND))


def handle_if_staff(number: str, body: str, message_sid: Optional[str] = None) -> bool:
    """For the SMS webhook, before the inbox: True when ``number`` is a staff phone and the
    text was handled here (and answered); False sends it on to the inbox and the assistant.

    With ``message_sid``, a text already handled (Twilio's retry of the same webhook) is
    acknowledged without being handled or answered again, as the inbox does for people."""
    if not is_staff_number(number):
        return False
    if message_sid is not None:
        if not _claim(message_sid, number):
            logger.info("staff sms: %s repeated; not handled again", message_sid)
            return True
        try:
            handle_and_reply(number, body)
        except BaseException:
            _unclaim(message_sid)
            raise
        return True
    handle_and_reply(number, body)
    return True
