"""What the Rasa runtime adds to the SMS channel's server, registered by it, never imported here.

The channels are loaded by Rasa and must not reach inside it; ``bot.rasa_runtime`` does (the
NLU process, the frozen heap), and when ``python -m bot.rasa_server`` installs it, it registers
its start and stop steps here. Without it (``RASA_PATCHES=off``, or a Rasa other than the one
tested) nothing is registered and the channel runs on Rasa as shipped.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

# Called with the Rasa agent's processor (or None) once the server has loaded the model.
after_start: list[Callable[[Any], None]] = []
# Called in a worker thread while the server stops.
before_stop: list[Callable[[], None]] = []


def _stock_nlu_state() -> str:
    return "rasa"  # Rasa's own parse, in the turn's event loop


# Where this server parses messages, for the channel's health answer: "rasa" unless the
# runtime says otherwise ("thread", "starting", "process": bot/rasa_runtime/nluproc.py).
nlu_state: list[Callable[[], str]] = [_stock_nlu_state]
