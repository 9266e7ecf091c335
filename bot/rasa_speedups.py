"""Measured fixes to the Rasa server's hot path, installed by our channels.

1. ``install``: the cached custom-action response validator (below).
2. ``freeze_heap``: the garbage collector stops walking the loaded model (further below).

``RemoteAction._validate_action_result`` calls ``jsonschema.validate(result, spec)`` on every
custom-action call, and ``jsonschema.validate`` checks the *schema* against its metaschema each
time before checking the response. py-spy under `make bench` at 50 conversations put 27-35% of
the Rasa server's busy time there (our turns call several custom actions). The schema is a
constant, so it is checked once here and the compiled validator reused; a response is validated
exactly as before and an invalid one raises the same ``ValidationError`` with Rasa's message.
"""

from __future__ import annotations

import gc
import logging
from typing import Any, Dict

logger = logging.getLogger(__name__)
_installed = False


def install() -> None:
    global _installed
    if _installed:
        return
    try:
        from jsonschema import ValidationError
        from jsonschema.validators import validator_for
        from rasa.core.actions.action import RemoteAction
        from rasa.shared.constants import DOCS_BASE_URL
    except ImportError:  # not in the Rasa server (or another Rasa): nothing to speed up
        return
    spec = RemoteAction.action_response_format_spec()
    cls = validator_for(spec)
    cls.check_schema(spec)
    validator = cls(spec)

    def _validate_action_result(self: RemoteAction, result: Dict[str, Any]) -> bool:
        try:
            validator.validate(result)
            return True
        except ValidationError as e:
            e.message += (
                f". Failed to validate Action server response from API, "
                f"make sure your response from the Action endpoint is valid. "
                f"For more information about the format visit "
                f"{DOCS_BASE_URL}/custom-actions"
            )
            raise e

    RemoteAction._validate_action_result = _validate_action_result
    _installed = True
    logger.debug("rasa speedups installed: cached custom-action response validator")


_frozen = False


def freeze_heap() -> bool:
    """Once per process, after the model has loaded: collect, then freeze what is left.

    A loaded Rasa server holds a few million long-lived Python objects (TensorFlow, spaCy,
    the model graph). CPython's full (generation 2) collection walks all of them, taking
    220-260 ms on this project's 2-core machine, and it runs every so often under load: ten
    times in a 10 s run of ``bench/sms_ack.py``, each one a pause in which no webhook is
    answered (that pause was the webhook's p99: 230-250 ms, against p95 15 ms). ``gc.freeze``
    moves every object alive now to a permanent generation the collector never walks, so
    later full collections see only what came after. Objects frozen are never collected:
    that is the point for the model, and the reason to do it once, after start-up.
    Returns True the time it froze.
    """
    global _frozen
    if _frozen:
        return False
    _frozen = True
    gc.collect()
    gc.freeze()
    logger.debug("rasa speedups: %d objects frozen after start-up", gc.get_freeze_count())
    return True
