"""One measured fix to Rasa 3.6's hot path, installed in the Rasa server by our channels.

``RemoteAction._validate_action_result`` calls ``jsonschema.validate(result, spec)`` on every
custom-action call, and ``jsonschema.validate`` checks the *schema* against its metaschema each
time before checking the response. py-spy under `make bench` at 50 conversations put 27-35% of
the Rasa server's busy time there (our turns call several custom actions). The schema is a
constant, so it is checked once here and the compiled validator reused; a response is validated
exactly as before and an invalid one raises the same ``ValidationError`` with Rasa's message.
"""

from __future__ import annotations

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
