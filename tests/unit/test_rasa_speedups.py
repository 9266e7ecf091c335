"""The cached custom-action response check accepts and refuses exactly what Rasa's own does."""

from __future__ import annotations

import pytest
from jsonschema import ValidationError, validate
from rasa.core.actions.action import RemoteAction

import bot.channels  # noqa: F401  installs the speed-up, as the Rasa server does
from bot.rasa_speedups import install

RESPONSES = [
    {"events": [], "responses": []},
    {"events": [{"event": "slot", "name": "place", "value": "Taunton"}],
     "responses": [{"text": "Here is what is open tonight."}]},
    {},
    {"events": "not a list"},
    {"events": [{"no_event_key": 1}]},
    {"responses": [{"text": 3}]},
]


@pytest.mark.parametrize("response", RESPONSES)
def test_same_verdict_as_rasas_own_check(response):
    install()  # idempotent
    action = RemoteAction("action_find_services", None)
    spec = RemoteAction.action_response_format_spec()
    try:
        validate(response, spec)
        expected_ok = True
    except ValidationError:
        expected_ok = False
    if expected_ok:
        assert action._validate_action_result(response) is True
    else:
        with pytest.raises(ValidationError, match="Failed to validate Action server response"):
            action._validate_action_result(response)
