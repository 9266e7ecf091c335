"""``python -m bot.duty [serve]``: migrate the database, then serve on DUTY_HOST:DUTY_PORT."""

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
    try:
        # The schema must be current before any handler runs a query against it.
        migrate.upgrade(settings.database_url)
    except sa_exc.OperationalError as exc:
        cause = getattr(exc, "orig", None) or exc
        log.error("cannot migrate the database (%s); is DATABASE_URL right?", type(cause).__name__)
        return 1
    if not settings.duty_api_token:
        log.warning("DUTY_API_TOKEN is not set: /api refuses every token-based request")
    web.run_app(
        create_app(settings),
        host=settings.duty_host,
        port=settings.duty_port,
        access_log_format=ACCESS_LOG_FORMAT,
        print=lambda message: log.info("%s", message),
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bot.duty", description="The duty service: API, health, (later) console."
    )
    parser.add_argument(
        "command", nargs="?", default="serve", choices=["serve"], help="serve (the default)"
    )
    parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    return serve()


if __name__ == "__main__":
    sys.exit(main())
