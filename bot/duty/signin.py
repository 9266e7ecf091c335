"""Signing in to the console after the password: a new password, then the second factor.

A right password does not open the console at once when the account still has something to
do. The sign-in goes on in a *pending* session (a ``staff_sessions`` row whose ``stage`` is
not "ok"): good for ``PENDING_MINUTES`` and only for its next step, never for a console page
(``staff.load_session`` refuses it). Each step done replaces the row with a new one under a
new token, so a token seen at one step is of no use at the next.

1. ``password``: the account holds a temporary password (made by a manager); the person
   chooses their own (the same strength rules as ``add-staff``).
2. ``totp``: the account has a second factor; a 6-digit code from the authenticator app, or
   one of the recovery codes (each good once). A code of a 30-second step already used is
   refused (replay). Wrong codes count in the sign-in limiter like wrong passwords.
3. ``enrol``: no second factor yet, and this account must have one (managers always;
   everyone with ``STAFF_2FA=all``): the page shows a new secret (an ``otpauth://`` URI and
   the secret as text); a code from the app proves it was added; ten recovery codes are then
   shown once.

Blocking functions, run in the database pool by ``signin_page.py``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Optional

from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import delete, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from bot.duty import account_admin, twofactor
from bot.duty import staff as staff_module
from bot.store.models import utcnow
from bot.store.models.duty import Staff, StaffRecoveryCode, StaffSession

PENDING_MINUTES = 10


def second_factor_required(role: str, policy: str) -> bool:
    """``policy``: the STAFF_2FA setting ("managers" or "all")."""
    return policy == "all" or role in account_admin.MANAGER_ROLES


@dataclass(frozen=True)
class Pending:
    """A sign-in half done, as its step's handler sees it."""

    staff_id: int
    username: str
    display_name: str
    role: str
    stage: str
    csrf_token: str
    pending_secret: Optional[str]  # sealed; "enrol" only


def _stage_for(account: Staff, policy: str) -> str:
    if account.must_change_password:
        return "password"
    if account.totp_secret is not None:
        return "totp"
    if second_factor_required(account.role, policy):
        return "enrol"
    return "ok"


def begin(engine: Engine, staff_id: int, policy: str, hours: int, key: str) -> tuple[str, str]:
    """After a right password (or a step done): a session token and its stage ("ok": signed in)."""
    with Session(engine, future=True) as session:
        account = session.get(Staff, staff_id)
        stage = _stage_for(account, policy) if account is not None else "ok"
    if stage == "ok":
        return staff_module.open_session(engine, staff_id, hours), stage
    sealed = twofactor.seal(twofactor.new_secret(), key) if stage == "enrol" else None
    token = staff_module.open_session(engine, staff_id, PENDING_MINUTES / 60, stage=stage,
                                      pending_secret=sealed)
    return token, stage


def load_pending(engine: Engine, token: str, now: Optional[dt.datetime] = None) -> Optional[Pending]:
    now = now or utcnow()
    with Session(engine, future=True) as session:
        row = session.execute(
            select(StaffSession, Staff).join(Staff, Staff.id == StaffSession.staff_id)
            .where(StaffSession.token_hash == staff_module.token_hash(token))
        ).one_or_none()
        if row is None:
            return None
        sess, account = row
        if (sess.stage == "ok" or not account.active
                or staff_module._aware(sess.expires_at) <= now):
            return None
        return Pending(account.id, account.username, account.display_name, account.role,
                       sess.stage, sess.csrf_token, sess.pending_secret)


def end(engine: Engine, token: str) -> None:
    staff_module.close_session(engine, token)


def change_password(engine: Engine, pending: Pending, new: str, again: str) -> None:
    """The ``password`` step: raises ``staff.AccountError`` (a sentence) when refused."""
    if new != again:
        raise staff_module.AccountError("the two passwords are not the same")
    problem = staff_module.password_problem(new, pending.username, pending.display_name)
    if problem:
        raise staff_module.AccountError(problem)
    encoded = staff_module.hasher.hash(new)
    with Session(engine, future=True) as session, session.begin():
        account = session.get(Staff, pending.staff_id, with_for_update=True)
        try:
            same = staff_module.hasher.verify(account.password_hash, new)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            same = False
        if same:
            raise staff_module.AccountError("choose a password of your own, not the temporary one")
        account.password_hash = encoded
        account.must_change_password = False
        account.password_changed_at = utcnow()
        account_admin.append(session, f"staff:{account.username}", "password_changed",
                             account.username)


def check_code(engine: Engine, staff_id: int, code: str, key: str,
               at: Optional[float] = None) -> Optional[str]:
    """The ``totp`` step: "totp" or "recovery" when ``code`` signs the account in, else None.

    The account's row is locked while the code is checked, so one code cannot be used twice
    by two requests at once.
    """
    with Session(engine, future=True) as session, session.begin():
        account = session.execute(
            select(Staff).where(Staff.id == staff_id).with_for_update()
        ).scalar_one_or_none()
        if account is None or account.totp_secret is None:
            return None
        if twofactor.looks_like_recovery(code):
            found = session.execute(
                select(StaffRecoveryCode).where(
                    StaffRecoveryCode.staff_id == staff_id,
                    StaffRecoveryCode.code_hash == twofactor.recovery_hash(code),
                    StaffRecoveryCode.used_at.is_(None),
                )
            ).scalars().first()
            if found is None:
                return None
            found.used_at = utcnow()
            session.flush()
            left = len(session.execute(
                select(StaffRecoveryCode.id).where(StaffRecoveryCode.staff_id == staff_id,
                                                   StaffRecoveryCode.used_at.is_(None))
            ).all())
            account_admin.append(session, f"staff:{account.username}", "recovery_code_used",
                                 account.username, {"left": left})
            return "recovery"
        secret = twofactor.unseal(account.totp_secret, key)
        if secret is None:
            return None
        step = twofactor.verify(secret, code, account.totp_last_step, at)
        if step is None:
            return None
        account.totp_last_step = step
        return "totp"


def confirm_enrolment(engine: Engine, pending: Pending, code: str, key: str,
                      at: Optional[float] = None) -> Optional[list[str]]:
    """The ``enrol`` step: when ``code`` is right for the secret shown, the account keeps it
    and gets new recovery codes (returned, the only time they exist in clear); else None."""
    secret = twofactor.unseal(pending.pending_secret or "", key)
    if secret is None:
        return None
    step = twofactor.verify(secret, code, None, at)
    if step is None:
        return None
    codes = twofactor.new_recovery_codes()
    with Session(engine, future=True) as session, session.begin():
        account = session.get(Staff, pending.staff_id, with_for_update=True)
        account.totp_secret = pending.pending_secret
        account.totp_enrolled_at = utcnow()
        account.totp_last_step = step
        session.execute(delete(StaffRecoveryCode).where(StaffRecoveryCode.staff_id == account.id))
        session.add_all(StaffRecoveryCode(staff_id=account.id, code_hash=twofactor.recovery_hash(c))
                        for c in codes)
        account_admin.append(session, f"staff:{account.username}", "2fa_enrolled",
                             account.username, {"recovery_codes": len(codes)})
    return codes
