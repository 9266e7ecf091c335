"""Rasa's stock REST channel, with the rule that a failed turn still answers.

``POST /webhooks/rest/webhook`` with ``{"sender": ..., "message": ...}`` (and ``?stream=true``)
behaves exactly as Rasa's ``rest`` channel: same path, same JSON list of replies. The one
difference: a turn that raises, outlasts ``turn_timeout_s`` (default ``SMS_TURN_TIMEOUT_S``)
or sends nothing (the action server down) answers with the fail-safe reply (999, Samaritans
116 123, NHS 111 option 2) and is flagged to staff (``bot/channels/failsafe.py``). Where the
stock channel would log the message text of a failed turn, this one logs only the reason.

A timed-out turn keeps running, but its late replies have no HTTP response left to go in.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable, Dict, Optional, Text

from rasa.core.channels.channel import InputChannel, UserMessage
from rasa.core.channels.rest import RestInput as StockRestInput
from sanic import Blueprint

from bot import settings as settings_module
from bot.channels.failsafe import run_turn


class RestInput(StockRestInput):
    """``rest`` (the stock protocol) with the fail-safe on failed turns."""

    @classmethod
    def name(cls) -> Text:
        return "rest"  # /webhooks/rest/webhook, as the benchmarks and integrations expect

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> InputChannel:
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

        return super().blueprint(guarded)
