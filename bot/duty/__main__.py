"""``python -m bot.duty [serve]``: migrate the database, then serve on DUTY_HOST:DUTY_PORT.

``python -m bot.duty add-staff --username U --display-name NAME --password-stdin --role ROLE
[--house H]``
creates a console account (the password is read from the first line of standard input, so
it never appears in the process list or shell history).

``python -m bot.duty reset-2fa --username U`` forgets an account's second factor (a manager's
lost phone, when no other manager is left to reset it in the console); audited.

``python -m bot.duty verify-rota`` checks the hash chain of the rota edits made in the console
(``rota_changes``): exit 0 when intact, 1 naming the first changed entry, 2 when the database
cannot be reached. ``python -m bot.duty verify-comment-views`` does the same for the readings
of feedback comments in the console (``feedback_comment_views``), and
``python -m bot.duty verify-accounts`` for the changes to staff accounts
(``staff_account_changes``).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from aiohttp import web
from sqlalchemy import exc as sa_exc

from bot import settings as settings_module
from bot.duty.app import create_app
from bot.store import migrate

log = logging.getLogger("bot.duty")

# No client address or user agent: carers will use the web chat page served from here, and
# an IP address next to a time is personal data we have no need to keep.
ACCESS_LOG_FORMAT = '"%r" %s %b %Tf'


def serve() -> int:
    settings = settings_module.settings()
    settings_module.check(settings, "duty service")
    try:
        # The schema must be current before any handler runs a query against it.
        migrate.upgrade(settings.database_url)
    except sa_exc.OperationalError as exc:
        cause = getattr(exc, "orig", None) or exc
        log.error("cannot migrate the database (%s); is DATABASE_URL right?", type(cause).__name__)
        return 1
    if not settings.duty_api_token:
        log.warning("DUTY_API_TOKEN is not set: /api refuses every token-based request")
    if settings.duty_public_url.startswith("https://") and not settings.trusted_proxies:
        # Not a refusal: the limit still works, per username only (deploy/README.md step 2).
        log.warning("TRUSTED_PROXIES is not set: behind a proxy every client has the proxy's "
                    "address, so the console's sign-in limit cannot tell staff apart")
    from bot.duty.handoff import RelayTakeover

    web.run_app(
        # The dispatcher and the takeover engine run in every duty service: alert jobs and
        # SMS rows are claimed with leases, so running two services sends nothing twice.
        create_app(settings, takeover=RelayTakeover(settings), dispatch=True),
        host=settings.duty_host,
        port=settings.duty_port,
        access_log_format=ACCESS_LOG_FORMAT,
        print=lambda message: log.info("%s", message),
    )
    return 0


def add_staff(args: argparse.Namespace) -> int:
    from bot.duty import accounts

    if not args.password_stdin:
        print("error: pass --password-stdin and the password on standard input", file=sys.stderr)
        return 2
    try:
        migrate.upgrade(settings_module.settings().database_url)
    except sa_exc.OperationalError as exc:
        cause = getattr(exc, "orig", None) or exc
        print(f"error: cannot reach the database ({type(cause).__name__})", file=sys.stderr)
        return 1
    return accounts.add_staff(args.username, args.role, args.house, args.display_name)


def verify_rota() -> int:
    from bot.duty.rota_edit import verify_changes
    from bot.store import db

    try:
        broken = verify_changes(db.get_engine(settings_module.settings().database_url))
    except sa_exc.SQLAlchemyError as exc:
        cause = getattr(exc, "orig", None) or exc
        print(f"could not check the rota's trail: database error ({type(cause).__name__})", file=sys.stderr)
        return 2
    if broken is not None:
        print(f"rota trail BROKEN at entry seq {broken}")
        return 1
    print("rota trail intact")
    return 0


def reset_2fa(args: argparse.Namespace) -> int:
    from bot.duty import accounts

    try:
        migrate.upgrade(settings_module.settings().database_url)
    except sa_exc.OperationalError as exc:
        cause = getattr(exc, "orig", None) or exc
        print(f"error: cannot reach the database ({type(cause).__name__})", file=sys.stderr)
        return 1
    return accounts.reset_second_factor(args.username)


def _verify_trail(verify, what: str) -> int:
    """One hash-chained trail checked: 0 intact, 1 broken (the entry named), 2 no database."""
    from bot.store import db

    try:
        broken = verify(db.get_engine(settings_module.settings().database_url))
    except sa_exc.SQLAlchemyError as exc:
        cause = getattr(exc, "orig", None) or exc
        print(f"could not check the {what} trail: database error ({type(cause).__name__})",
              file=sys.stderr)
        return 2
    if broken is not None:
        print(f"{what} trail BROKEN at entry seq {broken}")
        return 1
    print(f"{what} trail intact")
    return 0


def verify_accounts() -> int:
    from bot.duty.account_trail import verify

    return _verify_trail(verify, "accounts")


def verify_comment_views() -> int:
    from bot.feedback.reading import verify

    return _verify_trail(verify, "comment readings")


def main(argv: Sequence[str] | None = None) -> int:
    from bot.store.models.duty import ROLES

    parser = argparse.ArgumentParser(
        prog="python -m bot.duty",
        description="The duty service: web chat page, console, API, health, metrics.",
    )
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("serve", help="serve (the default)")
    add = sub.add_parser("add-staff", help="create a console account")
    add.add_argument("--username", required=True)
    add.add_argument("--role", required=True, choices=ROLES)
    add.add_argument("--house", help="sanctuary volunteers: the rota's sanctuary house id")
    add.add_argument(
        "--display-name", required=True,
        help="what people are told when you join (a first name or a role; never the username)",
    )
    add.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    reset = sub.add_parser("reset-2fa", help="forget an account's second factor (lost phone)")
    reset.add_argument("--username", required=True)
    sub.add_parser("verify-rota", help="check the hash chain of the rota edits made in the console")
    sub.add_parser("verify-accounts", help="check the hash chain of the changes to staff accounts")
    sub.add_parser("verify-comment-views",
                   help="check the hash chain of the readings of feedback comments in the console")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    if args.command == "add-staff":
        return add_staff(args)
    if args.command == "reset-2fa":
        return reset_2fa(args)
    if args.command == "verify-accounts":
        return verify_accounts()
    if args.command == "verify-rota":
        return verify_rota()
    if args.command == "verify-comment-views":
        return verify_comment_views()
    return serve()


if __name__ == "__main__":
    sys.exit(main())
