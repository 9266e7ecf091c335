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


def test_the_heap_is_frozen_once_per_process():
    import gc

    from bot import rasa_speedups

    rasa_speedups.freeze_heap()  # the first call in this process froze it, or this one does
    frozen = gc.get_freeze_count()
    assert frozen > 0  # the objects alive at start-up are out of the collector's way
    assert rasa_speedups.freeze_heap() is False  # later calls change nothing
    assert gc.get_freeze_count() == frozen
