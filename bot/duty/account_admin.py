"""Managing console accounts (``/duty/staff``), and the trail of every change to one.

Duty managers and admins (``auth.PERMISSIONS["accounts"]``) add accounts, disable and
re-enable them, reset a password and reset a second factor. Each change and its trail entry
are written in one transaction (no change without an entry, no entry without a change), and
every change that takes access away also deletes the account's sessions in that transaction:
a disabled account's open console stops at its next request (``staff.load_session`` checks
the account on every request as well).

- **Add**: the account gets a one-time temporary password, shown once to the manager; the
  new member of staff chooses their own at first sign-in (``signin.py``).
- **Reset password**: the same, a temporary password that must be changed at the next
  sign-in. The second factor stays as it was (a forgotten password is not a lost phone).
- **Reset second factor** (a lost phone, no recovery codes left): the secret and recovery
  codes are deleted; the person sets up a new one at their next sign-in (managers must;
  others when ``STAFF_2FA=all``).
- **Disable / enable**: a disabled account cannot sign in and its sessions end at once. The
  last enabled manager (duty manager or admin) cannot be disabled: someone must be left who
  can turn accounts back on.

The trail is ``bot/duty/account_trail.py``.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Optional

from sqlalchemy import delete, func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from bot.duty import staff as staff_module
from bot.duty.account_trail import append, recent_changes, verify  # noqa: F401  re-exported
from bot.store.models import utcnow
from bot.store.models.duty import Staff, StaffRecoveryCode, StaffSession

# Roles that manage accounts, and must use a second factor whatever STAFF_2FA says.
MANAGER_ROLES = ("duty_manager", "admin")


class Refused(Exception):
    """A change that was not made; the message says why, for the manager."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass(frozen=True)
class Account:
    id: int
    username: str
    display_name: str
    role: str
    house: Optional[str]
    active: bool
    two_factor: bool
    must_change_password: bool
    recovery_left: int


# --- what the page shows -------------------------------------------------------------------------


def accounts(engine: Engine) -> list[Account]:
    with Session(engine, future=True) as session:
        left = dict(session.execute(
            select(StaffRecoveryCode.staff_id, func.count())
            .where(StaffRecoveryCode.used_at.is_(None))
            .group_by(StaffRecoveryCode.staff_id)
        ).all())
        rows = session.execute(select(Staff).order_by(Staff.username)).scalars().all()
        return [Account(s.id, s.username, s.display_name, s.role, s.house, bool(s.active),
                        s.totp_secret is not None, bool(s.must_change_password), left.get(s.id, 0))
                for s in rows]


# --- changes -----------------------------------------------------------------------------------


def temporary_password() -> str:
    # 4 random words' worth of entropy (about 96 bits) in a form that is easy to read aloud
    # on the phone; zxcvbn scores it 4.
    return "-".join(secrets.token_hex(3) for _ in range(4))


def _account(session: Session, username: str) -> Staff:
    found = session.execute(
        select(Staff).where(Staff.username == staff_module.normalise_username(username))
        .with_for_update()
    ).scalar_one_or_none()
    if found is None:
        raise Refused("There is no account with that username.", status=404)
    return found


def _end_sessions(session: Session, staff_id: int) -> None:
    session.execute(delete(StaffSession).where(StaffSession.staff_id == staff_id))


def add_account(engine: Engine, actor: str, username: str, role: str, display_name: str,
                house: Optional[str] = None) -> str:
    """Create an account with a temporary password; returns that password (shown once)."""
    password = temporary_password()
    username = staff_module.normalise_username(username)
    display_name = display_name.strip()
    try:
        staff_module.validate_new_account(username, password, role, house or None, display_name)
    except staff_module.AccountError as exc:
        message = str(exc)
        raise Refused(message[:1].upper() + message[1:] + ".") from None
    encoded = staff_module.hasher.hash(password)
    with Session(engine, future=True) as session, session.begin():
        if session.execute(select(Staff.id).where(Staff.username == username)).first():
            raise Refused(f"An account named {username} already exists.", status=409)
        session.add(Staff(username=username, display_name=display_name, password_hash=encoded,
                          role=role, house=house or None, active=True, must_change_password=True))
        session.flush()
        append(session, actor, "added", username, {"role": role, "house": house or None})
    return password


def set_active(engine: Engine, actor: str, username: str, active: bool) -> None:
    """Disable (ending every session of the account) or re-enable an account."""
    with Session(engine, future=True) as session, session.begin():
        target = _account(session, username)
        if bool(target.active) == active:
            raise Refused(f"{target.username} is already {'enabled' if active else 'disabled'}.",
                          status=409)
        if not active and target.role in MANAGER_ROLES:
            # Lock every enabled manager's row: two managers disabling each other at once
            # cannot both pass this check.
            managers = session.execute(
                select(Staff.id).where(Staff.active.is_(True), Staff.role.in_(MANAGER_ROLES))
                .with_for_update()
            ).scalars().all()
            if len([m for m in managers if m != target.id]) == 0:
                raise Refused("This is the last enabled manager account: enable or add another "
                              "duty manager or admin first, so that someone can still manage "
                              "accounts.", status=409)
        target.active = active
        if not active:
            _end_sessions(session, target.id)
        append(session, actor, "enabled" if active else "disabled", target.username)


def reset_password(engine: Engine, actor: str, username: str) -> str:
    """Give the account a temporary password it must change at next sign-in; returns it."""
    password = temporary_password()
    encoded = staff_module.hasher.hash(password)
    with Session(engine, future=True) as session, session.begin():
        target = _account(session, username)
        target.password_hash = encoded
        target.must_change_password = True
        target.password_changed_at = utcnow()
        _end_sessions(session, target.id)
        append(session, actor, "password_reset", target.username)
    return password


def reset_second_factor(engine: Engine, actor: str, username: str) -> None:
    """Forget the account's TOTP secret and recovery codes; it sets up a new one at next sign-in."""
    with Session(engine, future=True) as session, session.begin():
        target = _account(session, username)
        if target.totp_secret is None:
            raise Refused(f"{target.username} has no second factor to reset.", status=409)
        target.totp_secret = None
        target.totp_enrolled_at = None
        target.totp_last_step = None
        session.execute(delete(StaffRecoveryCode).where(StaffRecoveryCode.staff_id == target.id))
        _end_sessions(session, target.id)
        append(session, actor, "2fa_reset", target.username)
