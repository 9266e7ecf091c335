"""What an SMS that cannot be delivered means for the people on the line.

The SMS transport (``bot.sms.outbox``) knows only that a part failed; this module decides who
hears of it, and is handed to the transport (``PROBLEMS``) so that it never imports upward. A
staff alert that can never arrive goes on its escalation's trail and may move the ladder on
(``dispatch.alert_undeliverable``); a reply to a person is shown to staff when the
conversation has a live escalation.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from bot.escalation.dispatch import alert_undeliverable
from bot.escalation.engine import flag_for_staff
from bot.sms import outbox
from bot.sms.outbox import DeliveryProblems, OutboxSender


def flag_delivery_problem(pid: str, outbox_id: int, error_code: str | None, reason: str) -> bool:
    """Tell staff, but only on a conversation with a live escalation (level=None).

    A staff alert that can never be delivered is the escalation's problem, not a
    conversation's: it goes on that escalation's trail and may move the ladder on at once
    (``dispatch.alert_undeliverable``).
    """
    if alert_undeliverable(outbox_id, error_code) is not None:
        return True
    record = flag_for_staff(
        pid, "delivery_failed", reason,
        {"outbox_id": outbox_id, "error_code": error_code}, level=None, channel="sms",
    )
    return record is not None


def failed_status(session: Session, outbox_id: int, pid: str, status: str,
                  error_code: str | None, twilio_sid: str) -> None:
    """A status callback said a part was not delivered (inside its transaction)."""
    if alert_undeliverable(outbox_id, error_code, session=session) is not None:
        return  # a staff alert: on its escalation's trail, not a person's
    flag_for_staff(
        pid, "delivery_failed",
        f"SMS to the person was {status} (Twilio error {error_code or 'none'})",
        {"outbox_id": outbox_id, "twilio_sid": twilio_sid, "error_code": error_code},
        level=None, channel="sms", session=session,
    )


PROBLEMS = DeliveryProblems(flag=flag_delivery_problem, failed=failed_status)


def apply_status(twilio_sid: str, status: str, error_code: str | None) -> str | None:
    """Record a Twilio status callback (``outbox.apply_status``), failures told to staff."""
    return outbox.apply_status(twilio_sid, status, error_code, failed_status)


def outbox_sender(**kwargs: Any) -> OutboxSender:
    """An outbox sender whose delivery problems reach staff and the escalation ladder."""
    return OutboxSender(problems=PROBLEMS, **kwargs)
