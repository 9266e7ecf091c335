"""The cached custom-action response check accepts and refuses exactly what Rasa's own does."""

from __future__ import annotations

import pytest
from jsonschema import ValidationError, validate
from rasa.core.actions.action import RemoteAction

from bot import rasa_runtime
from bot.rasa_runtime.speedups import install

rasa_runtime.install()  # the speed-ups, as python -m bot.rasa_server installs them

RESPONSES = [
    {"events": [], "responses": []},
    {"events": [{"event": "slot", "name": "place", "value": "Taunton"}],
     "responses": [{"text": "Here is what is open tonight."}]},
    {},
    {"events": "not a list"},
    {"events": [{"no_event_key": 1}]},
    {"responses": [{"text": 3}]},
]


# What our actions send back, event by event, as Rasa SDK writes them.
SDK_EVENTS = [
    {"event": "slot", "timestamp": None, "name": "place", "value": "Taunton"},
    {"event": "slot", "timestamp": 1700000000.5, "name": "consent", "value": None},
    {"event": "action", "timestamp": None, "name": "action_listen", "policy": None,
     "confidence": None, "action_text": None, "hide_rule_turn": False},
    {"event": "bot", "timestamp": None, "text": "Samaritans are open now.", "data": {},
     "metadata": {"utter_action": "utter_open_now"}},
    {"event": "active_loop", "timestamp": None, "name": "place_form"},
    {"event": "active_loop", "name": None},
    {"event": "followup", "name": "action_listen"},
    {"event": "reset_slots"},
    {"event": "restart"},
    {"event": "session_started", "metadata": None},
    {"event": "user", "text": "I feel low", "parse_data": {"intent": {"name": "mood_low",
     "confidence": 0.9}, "entities": [], "text": "I feel low"}, "input_channel": "sms"},
    {"event": "reminder", "name": "check_in", "intent": "EXTERNAL_check",
     "date_time": "2026-12-03T22:00:00", "kill_on_user_msg": True},
]
# Each breaks the schema in one place; each is a response our check must refuse as Rasa does.
BROKEN_EVENTS = [
    {"event": "slot", "value": "Taunton"},  # a slot without its name
    {"event": "slot", "name": 3, "value": "x"},
    {"event": "no_such_event"},
    {"event": 7},
    {"event": None},
    {"event": "bot", "timestamp": "yesterday"},
    {"event": "bot", "metadata": "not an object"},
    {"event": "user", "text": 5},
    {"event": "user", "parse_data": {"intent": {"name": 3}}},
    {"event": "entities"},  # without its entities
    "not an object",
    ["event", "slot"],
]


def rasas_verdict(response) -> bool:
    try:
        validate(response, RemoteAction.action_response_format_spec())
        return True
    except ValidationError:
        return False


def our_verdict(response) -> bool:
    install()  # idempotent
    action = RemoteAction("action_find_services", None)
    try:
        assert action._validate_action_result(response) is True
        return True
    except ValidationError as e:
        assert "Failed to validate Action server response" in e.message
        return False


@pytest.mark.parametrize("response", RESPONSES + [
    {"events": SDK_EVENTS, "responses": [{"text": "Here is what is open tonight."}]},
    *({"events": SDK_EVENTS[:3] + [broken], "responses": []} for broken in BROKEN_EVENTS),
    {"events": SDK_EVENTS, "responses": "not a list"},
    {"events": SDK_EVENTS, "responses": ["not an object"]},
    {"events": SDK_EVENTS, "responses": None},
    {"events": None},
    {"events": SDK_EVENTS, "extra": "allowed by the schema"},
    "not an object",
    None,
])
def test_same_verdict_as_rasas_own_check(response):
    assert our_verdict(response) is rasas_verdict(response)


def test_the_broken_events_are_refused_and_the_good_ones_taken_on_the_quick_path():
    """The quick check is in use with this Rasa (so it saves what it was built to), says yes
    to our actions' events, and hands every broken one to the full check."""
    from jsonschema.validators import validator_for

    from bot.rasa_runtime import speedups as rasa_speedups

    spec = RemoteAction.action_response_format_spec()
    quick = rasa_speedups._quick_response_check(validator_for(spec), spec)
    assert quick is not None
    assert quick({"events": SDK_EVENTS, "responses": [{"text": "hi"}]}) is True
    for broken in BROKEN_EVENTS:
        assert not rasas_verdict({"events": [broken]})
        assert quick({"events": [broken]}) is False
    # Another shape of schema (not one shape per event name): no quick path at all.
    two_slots = {**spec, "properties": {**spec["properties"], "events": {
        **spec["properties"]["events"], "items": {
            **spec["properties"]["events"]["items"],
            "oneOf": [{"properties": {"event": {"const": "slot"}}}] * 2}}}}
    assert rasa_speedups._quick_response_check(validator_for(spec), two_slots) is None


def test_the_heap_is_frozen_once_per_process():
    import gc

    from bot.rasa_runtime import speedups as rasa_speedups

    rasa_speedups.freeze_heap()  # the first call in this process froze it, or this one does
    frozen = gc.get_freeze_count()
    assert frozen > 0  # the objects alive at start-up are out of the collector's way
    assert rasa_speedups.freeze_heap() is False  # later calls change nothing
    assert gc.get_freeze_count() == frozen


# -- the sequential graph runner ------------------------------------------------------------


class _Node:
    """A graph node as the runner sees one: called with its inputs' (name, output) pairs."""

    def __init__(self, name: str, calls: list, fail: BaseException | None = None) -> None:
        self.name, self.calls, self.fail = name, calls, fail

    def __call__(self, *inputs):
        self.calls.append(self.name)
        if self.fail is not None:
            raise self.fail
        return self.name, f"{self.name}({', '.join(f'{k}={v}' for k, v in inputs)})"


def _runner(needs: dict[str, dict[str, str]], targets: list[str], fail: dict | None = None):
    from rasa.engine.graph import GraphSchema, SchemaNode
    from rasa.engine.runner.dask import DaskGraphRunner

    calls: list[str] = []
    runner = object.__new__(DaskGraphRunner)
    runner._graph_schema = GraphSchema({
        name: SchemaNode(needs=node_needs, uses=object, constructor_name="create", fn="run",
                         config={}, is_target=name in targets)
        for name, node_needs in needs.items()
    })
    runner._instantiated_nodes = {
        name: _Node(name, calls, (fail or {}).get(name)) for name in needs
    }
    runner._execution_context = None
    return runner, calls


# A small model graph: a message input, two featurizers sharing a tokenizer, a classifier
# that needs both, and a node no target needs (it must not run).
GRAPH = {
    "tokenizer": {"messages": "__message__"},
    "words": {"messages": "tokenizer"},
    "chars": {"messages": "tokenizer"},
    "classifier": {"words": "words", "chars": "chars"},
    "unused": {"messages": "__message__"},
}


@pytest.mark.parametrize("targets", [["classifier"], ["words", "classifier"], ["tokenizer"]])
def test_the_sequential_runner_gives_what_dask_gives(targets):
    from bot.rasa_runtime.speedups import _run_graph, rasa_graph_run

    dask_runner, dask_calls = _runner(GRAPH, targets)
    ours, our_calls = _runner(GRAPH, targets)
    inputs = {"__message__": "hi"}
    expected = rasa_graph_run(dask_runner, inputs=inputs, targets=targets)
    assert _run_graph(ours, inputs=inputs, targets=targets) == expected
    # Each node needed ran exactly once, after what it needs; nothing else ran.
    assert sorted(our_calls) == sorted(dask_calls)
    assert "unused" not in our_calls
    assert our_calls.index("tokenizer") == 0


def test_a_failing_node_fails_the_run_as_it_did_under_dask():
    from rasa.engine.exceptions import GraphRunError

    from bot.rasa_runtime.speedups import _run_graph, rasa_graph_run

    for run in (rasa_graph_run, _run_graph):
        runner, _ = _runner(GRAPH, ["classifier"], fail={"chars": RuntimeError("boom")})
        with pytest.raises(GraphRunError):
            run(runner, inputs={"__message__": "hi"}, targets=["classifier"])
        runner, _ = _runner(GRAPH, ["classifier"], fail={"chars": ValueError("bad input")})
        with pytest.raises(ValueError, match="bad input"):
            run(runner, inputs={"__message__": "hi"}, targets=["classifier"])



# -- the rule policy's matching --------------------------------------------------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_NOT_SET = "should_not_be_set"
_values = st.one_of(
    st.sampled_from(["greet", "affirm", "utter_ask_place", "services_form", _NOT_SET, ""]),
    st.lists(st.sampled_from(["place", "time"]), max_size=2).map(tuple),
    st.sampled_from([0.0, 1.0]),
)
_sub_state = st.dictionaries(st.sampled_from(["intent", "action_name", "name", "place"]),
                             _values, max_size=2)
_state = st.dictionaries(st.sampled_from(["user", "prev_action", "active_loop", "slots"]),
                         _sub_state, max_size=3)


def _rule_key(states: list) -> str:
    import json

    # As Rasa stores a rule: its states as JSON, where tuples become lists.
    return json.dumps(states)


def _policy():
    from rasa.core.policies.rule_policy import RulePolicy

    return object.__new__(RulePolicy)  # matching needs no trained state


@settings(max_examples=300, deadline=None)
@given(rules=st.lists(st.lists(_state, min_size=1, max_size=4), max_size=12),
       conversation=st.lists(_state, max_size=6))
def test_rule_matching_finds_the_rules_rasas_own_finds(rules, conversation):
    from bot.rasa_runtime.speedups import _get_possible_keys, rasa_get_possible_keys

    install()
    lookup = {_rule_key(rule): "utter_x" for rule in rules}
    policy = _policy()
    assert _get_possible_keys(policy, lookup, conversation) == rasa_get_possible_keys(
        policy, lookup, conversation)


def test_rule_matching_on_rules_that_must_and_must_not_match():
    from bot.rasa_runtime.speedups import _get_possible_keys

    install()
    asked = {"prev_action": {"action_name": "utter_ask_safe"}, "user": {"intent": "deny"}}
    rule_unsafe = _rule_key([{}, {"prev_action": {"action_name": "action_listen"}},
                             {"prev_action": {"action_name": "utter_ask_safe"},
                              "user": {"intent": "deny"}}])
    rule_no_form = _rule_key([{"prev_action": {"action_name": "utter_ask_safe"},
                               "user": {"intent": "deny"},
                               "active_loop": {"name": _NOT_SET}}])
    rule_affirm = _rule_key([{"prev_action": {"action_name": "utter_ask_safe"},
                              "user": {"intent": "affirm"}}])
    lookup = {rule_unsafe: "action_urgent", rule_no_form: "action_urgent",
              rule_affirm: "utter_glad"}
    in_form = dict(asked, active_loop={"name": "services_form"})
    earlier = [{}, {"prev_action": {"action_name": "action_listen"}}]
    assert _get_possible_keys(_policy(), lookup, earlier + [asked]) == {rule_unsafe,
                                                                        rule_no_form}
    # In a form, the rule that says "no form active" does not apply; the others stay as they are.
    assert _get_possible_keys(_policy(), lookup, earlier + [in_form]) == {rule_unsafe}
    assert _get_possible_keys(_policy(), lookup, []) == set(lookup)


# -- event classes by name --------------------------------------------------------------------

def test_events_read_back_from_dicts_are_the_events_rasas_own_lookup_gives():
    from rasa.shared.core.events import (
        ActionExecuted, BotUttered, Event, SessionStarted, SlotSet, UserUttered,
    )
    from rasa.shared.core.trackers import DialogueStateTracker

    from bot.rasa_runtime import speedups as fast

    install()
    assert Event.resolve_by_type("user") is UserUttered  # and now remembered
    assert Event.resolve_by_type is fast._resolve_event_type
    events = [SessionStarted(), ActionExecuted("action_listen"),
              UserUttered("I can't cope tonight", intent={"name": "feeling_distressed",
                                                         "confidence": 0.9}),
              SlotSet("place", "Taunton"), ActionExecuted("utter_listen"),
              BotUttered("I'm here to listen."), ActionExecuted("action_listen")]
    dicts = [e.as_dict() for e in events]
    ours = DialogueStateTracker.from_dict("p1", dicts, [])
    for event in events:
        assert fast.rasa_resolve_event_type(event.type_name) is type(event)
    assert list(ours.events) == events
    # Twice: the remembered classes give the same conversation again.
    assert list(DialogueStateTracker.from_dict("p1", dicts, []).events) == events


def test_an_unknown_event_name_is_answered_as_rasa_answers_it_every_time():
    from rasa.shared.core.events import Event, UserUttered

    install()
    for _ in range(2):
        with pytest.raises(ValueError, match="Unknown event name 'no_such_event'"):
            Event.resolve_by_type("no_such_event")
        assert Event.resolve_by_type("no_such_event", UserUttered) is UserUttered
        assert Event.resolve_by_type("topic") is None  # Rasa's old TopicSet events
