"""``python -m bot.action_server``: the action server, as ``bot.run`` starts it.

rasa-sdk's own server (``rasa run actions``) listens on every interface, answers anyone, allows
every origin (CORS ``*``), and returns the exception and the whole request body of a failed
call. Anyone who could reach it could post a made-up tracker to ``/webhook`` and so record a
"no" to sharing on a real escalation, or open an imminent escalation for a sender who does not
exist, which alerts the crisis team. This entry point serves rasa-sdk's own app
(``rasa_sdk.endpoint.create_app``, the same routes and executor) with:

- the address ``ACTIONS_HOST`` (loopback by default) and port ``ACTIONS_PORT``;
- every route but ``/health`` refusing, with 401, a request without
  ``Authorization: Bearer $ACTIONS_TOKEN`` (default ``RASA_AUTH_TOKEN``); the Rasa server sends
  it from ``endpoints.yml``;
- no CORS headers (no browser page has any business here), and a failed call answered with
  its error type only, never the tracker it was sent (message text);
- request bodies over ``MAX_BODY_BYTES`` (4 MB) refused with 413 before they are read
  (sanic's default allows 100 MB).

Production settings are checked first (``bot.settings.check``).
"""

from __future__ import annotations

import argparse
import hmac
import logging
import sys
from collections.abc import Sequence

from sanic import Sanic, response
from sanic.exceptions import SanicException
from sanic.request import Request
from sanic.response import HTTPResponse

from bot import settings as settings_module
from bot.settings import Settings

logger = logging.getLogger("bot.action_server")

OPEN_PATHS = frozenset({"/health"})  # the duty service's /health probes it without a token

# The largest action call accepted (sanic's REQUEST_MAX_SIZE; its default, 100 MB, lets one
# request hold the server while it is read and parsed). A call carries the domain (10 KB) and
# the current session's tracker: measured on the line, 100 turns of web chat made a 372 KB
# call, about 3.7 KB a turn, so 4 MB is some 1,100 turns in one session (a session ends
# after 60 minutes of quiet), ten times a long conversation. Refused before it is read.
MAX_BODY_BYTES = 4 * 1024 * 1024


def authorised(request: Request, token: str) -> bool:
    given = request.headers.get("Authorization", "")
    return hmac.compare_digest(given.encode(), f"Bearer {token}".encode())


def create_app(s: Settings, actions: str = "actions") -> Sanic:
    """rasa-sdk's app for the ``actions`` package, with the token check."""
    from rasa_sdk.endpoint import create_app as sdk_app

    app = sdk_app(actions, cors_origins=None)
    app.config.REQUEST_MAX_SIZE = MAX_BODY_BYTES
    token = s.actions_token

    @app.on_request
    async def require_token(request: Request) -> HTTPResponse | None:
        if request.path in OPEN_PATHS or authorised(request, token):
            return None
        return response.json({"error": "unauthorized"}, status=401,
                             headers={"WWW-Authenticate": "Bearer"})

    # Replaces rasa-sdk's handler, which logs the request and answers with the tracker.
    @app.exception(Exception)
    async def failed(request: Request, exc: Exception) -> HTTPResponse:
        if isinstance(exc, SanicException) and exc.status_code < 500:
            # The request's own fault (413 too large, 404, 405): its status, not a 500.
            return response.json({"error": type(exc).__name__}, status=exc.status_code)
        logger.error("action call failed (%s)", type(exc).__name__)
        return response.json({"error": type(exc).__name__}, status=500)

    return app


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot.action_server",
                                     description="The action server (actions/), with its token.")
    parser.add_argument("--actions", default="actions", help="the actions package (default actions)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    s = settings_module.settings()
    settings_module.check(s, "action server")
    # The feedback questions, read now so that a malformed file is named at start-up (the
    # survey is then off; the line runs). docs/feedback.md.
    from bot.feedback.questions import configured

    if configured() is None:
        logger.warning("feedback survey: off (FEEDBACK_FILE)")
    # The rota, read now: the estimate in the first reply after asking for a person has 0.5 s,
    # and parsing the rota on the first request took more than that (docs/handoff.md).
    from bot.escalation import wait

    try:
        wait.shared_rota().get()
    except Exception as exc:  # noqa: BLE001  the reply then goes without an estimate
        logger.error("rota: cannot read it at start-up (%s)", type(exc).__name__)
    app = create_app(s, args.actions)
    logger.info("action server on %s:%s", s.actions_host, s.actions_port)
    app.run(host=s.actions_host, port=s.actions_port, workers=1, access_log=False,
            motd=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
