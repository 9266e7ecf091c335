"""Staff accounts from the command line (``python -m bot.duty add-staff``, ``reset-2fa``) and the
development demo account.

The demo account is a duty manager, so like every manager it sets up a second factor at its
first sign-in (any authenticator app; the secret is kept in the development database, so
later runs only ask for a code). Its password is new on every run; its second factor is not.
"""

from __future__ import annotations

import secrets
import sys
from dataclasses import dataclass
from typing import Optional, TextIO

from bot import settings as settings_module
from bot.duty import staff
from bot.settings import Settings
from bot.store import db

DEMO_USERNAME = "demo.manager"


@dataclass(frozen=True)
class DemoAccount:
    username: str
    password: str
    url: str

    def message(self) -> str:
        return (
            f"  Duty console   {self.url}/duty  (development demo account: "
            f"{self.username} / {self.password}; new password each run; a second factor "
            "is set up at the first sign-in)"
        )


def is_development(s: Settings) -> bool:
    # A line with a public HTTPS address or a real Twilio account is a deployment, where a
    # well-known account with a printed password must never exist.
    return not s.duty_public_url.startswith("https://") and not s.twilio_configured


def ensure_demo_account(settings: Optional[Settings] = None) -> Optional[DemoAccount]:
    """Development only: create (or reset) a duty manager account and return how to sign in.

    Returns None, and does nothing, outside development (see ``is_development``). The
    password is random and set afresh on every call, so it is printed but never stored in
    clear. Call after the database is migrated.
    """
    s = settings or settings_module.settings()
    if not is_development(s):
        return None
    password = secrets.token_urlsafe(12)
    staff.create_staff(
        db.get_engine(s.database_url), DEMO_USERNAME, password, "duty_manager",
        display_name="Demo duty manager", replace_password=True, actor="development",
    )
    return DemoAccount(DEMO_USERNAME, password, s.duty_public_url)


def add_staff(
    username: str,
    role: str,
    house: Optional[str],
    display_name: str,
    password_stream: Optional[TextIO] = None,
    settings: Optional[Settings] = None,
) -> int:
    """The ``add-staff`` command; the password is the first line of ``password_stream``."""
    s = settings or settings_module.settings()
    password = (password_stream or sys.stdin).readline().rstrip("\r\n")
    if house and role == "sanctuary_volunteer":
        # Refuse a house the rota does not know: a typo would hide every referral from them.
        from bot.duty.console import house_names

        known = house_names(s.rota_file, s.database_url)
        if known and house not in known:
            print(f"error: no sanctuary house {house!r} in the rota; known: {', '.join(sorted(known))}",
                  file=sys.stderr)
            return 2
    try:
        staff.create_staff(
            db.get_engine(s.database_url), username, password, role, house=house,
            display_name=display_name,
        )
    except staff.AccountError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"created {staff.normalise_username(username)} ({role}{', ' + house if house else ''})")
    return 0


def reset_second_factor(username: str, settings: Optional[Settings] = None) -> int:
    """The ``reset-2fa`` command: for the last manager who lost their phone and codes (nobody
    is left to do it in the console). Audited as the command line's (actor ``cli``)."""
    from bot.duty import account_admin
    from bot.duty.account_trail import CLI_ACTOR

    s = settings or settings_module.settings()
    try:
        account_admin.reset_second_factor(db.get_engine(s.database_url), CLI_ACTOR, username)
    except account_admin.Refused as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2
    print(f"second factor reset for {staff.normalise_username(username)}: "
          "they set up a new one at their next sign-in")
    return 0
