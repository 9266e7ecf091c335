"""Rasa's stock REST channel, with the rule that a failed turn still answers.

``POST /webhooks/rest/webhook`` with ``{"sender": ..., "message": ...}`` (and ``?stream=true``)
behaves exactly as Rasa's ``rest`` channel: same path, same JSON list of replies. The one
difference: a turn that raises, outlasts ``turn_timeout_s`` (default ``SMS_TURN_TIMEOUT_S``)
or sends nothing (the action server down) answers with the fail-safe reply (999, Samaritans
116 123, NHS 111 option 2) and is flagged to staff (``bot/channels/failsafe.py``). Where the
stock channel would log the message text of a failed turn, this one logs only the reason.

A timed-out turn keeps running, but its late replies have no HTTP response left to go in.

Who may post (``refusal``): anyone could, and so could write into a texter's conversation as
``sender=sms-<pseudonym>`` (the console showed it as the person's own words) and read back
where they had said they were. Now:

- with ``RASA_AUTH_TOKEN`` set (always, in production) a request must carry it, as Rasa's own
  API takes it (``?token=``) or as ``Authorization: Bearer <token>``: 401 otherwise;
- the body must be declared JSON (``Content-Type: application/json``): 415 otherwise. A web
  page can post ``text/plain`` across origins without asking; JSON needs a CORS preflight,
  which the Rasa server does not grant;
- the sender id must not be another channel's (an SMS pseudonym ``sms-...``, a web chat
  session id): 403, in any mode.
"""

from __future__ import annotations

import hmac
import json
from typing import Any, Awaitable, Callable, Dict, Optional, Text

from rasa.core.channels.channel import InputChannel, UserMessage
from rasa.core.channels.rest import RestInput as StockRestInput
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from bot import settings as settings_module
from bot.channels.failsafe import run_turn
from bot.channels.webchat import valid_session_id

SMS_PREFIX = "sms-"  # bot.sms.pseudonym: an SMS conversation's id


def token_given(request: Request, token: str) -> bool:
    """``?token=`` (as Rasa's own HTTP API) or ``Authorization: Bearer``, compared in constant
    time."""
    given = request.args.get("token") or ""
    header = request.headers.get("Authorization", "")
    if header[:7].lower() == "bearer ":
        given = given or header[7:].strip()
    return bool(given) and hmac.compare_digest(given.encode(), token.encode())


async def token_from_header(request: Request) -> None:
    """App-wide request middleware: Rasa's own HTTP API (``/model/parse``, ``/status``,
    ``/conversations``...) reads its auth token only from ``?token=``, where access logs and
    proxies keep it; a request that carries it as ``Authorization: Bearer`` instead is given
    it as the argument Rasa checks. Any other header changes nothing."""
    token = settings_module.settings().rasa_auth_token
    if token and request.args.get("token") is None and token_given(request, token):
        request.args["token"] = [token]


def other_channels_id(sender: Any) -> bool:
    """A conversation id another channel owns: a REST caller must not write into it."""
    if not isinstance(sender, str):
        return False
    return sender.strip().lower().startswith(SMS_PREFIX) or valid_session_id(sender.strip())


def refusal(request: Request) -> Optional[HTTPResponse]:
    """Why this POST to the REST webhook is refused, as the response; None to serve it."""
    token = settings_module.settings().rasa_auth_token
    if token and not token_given(request, token):
        return response.json({"error": "unauthorized",
                              "message": "the Rasa auth token is required (?token= or "
                                         "Authorization: Bearer)"},
                             status=401, headers={"WWW-Authenticate": "Bearer"})
    content_type = (request.headers.get("Content-Type") or "").split(";")[0].strip().lower()
    if content_type != "application/json":
        return response.json({"error": "unsupported_media_type",
                              "message": "send the message as application/json"}, status=415)
    try:
        body = json.loads(request.body or b"null")
    except ValueError:
        return response.json({"error": "bad_request", "message": "the body is not JSON"},
                             status=400)
    if isinstance(body, dict) and other_channels_id(body.get("sender")):
        return response.json({"error": "forbidden",
                              "message": "that sender id belongs to another channel"},
                             status=403)
    return None


class RestInput(StockRestInput):
    """``rest`` (the stock protocol) with the fail-safe on failed turns."""

    @classmethod
    def name(cls) -> Text:
        return "rest"  # /webhooks/rest/webhook, as the benchmarks and integrations expect

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> InputChannel:
        # As the Rasa server starts: production stops on an unsafe setting (bot.settings.check).
        settings_module.check(settings_module.settings(), "Rasa server")
        return cls(turn_timeout_s=(credentials or {}).get("turn_timeout_s"))

    def __init__(self, turn_timeout_s: Optional[float] = None) -> None:
        # None: SMS_TURN_TIMEOUT_S, the same patience as the SMS line's.
        self.turn_timeout_s = (
            float(turn_timeout_s) if turn_timeout_s is not None
            else float(settings_module.settings().sms_turn_timeout_s)
        )

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        async def guarded(message: UserMessage) -> None:
            await run_turn(message, on_new_message, timeout_s=self.turn_timeout_s,
                           channel=self.name())

        bp = super().blueprint(guarded)

        @bp.listener("before_server_start")
        async def _accept_token_header(app: Any, _loop: Any) -> None:
            # Every route of the Rasa server, not only this blueprint's (sanic runs the app's
            # request middleware for each request, so registering it at start is in time).
            app.register_middleware(token_from_header, "request")

        @bp.on_request
        async def gate(request: Request) -> Optional[HTTPResponse]:
            if request.method == "POST" and request.path.rstrip("/").endswith("/webhook"):
                return refusal(request)
            return None

        return bp
