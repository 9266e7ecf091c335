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
    from bot.rasa_speedups import _run_graph, rasa_graph_run

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

    from bot.rasa_speedups import _run_graph, rasa_graph_run

    for run in (rasa_graph_run, _run_graph):
        runner, _ = _runner(GRAPH, ["classifier"], fail={"chars": RuntimeError("boom")})
        with pytest.raises(GraphRunError):
            run(runner, inputs={"__message__": "hi"}, targets=["classifier"])
        runner, _ = _runner(GRAPH, ["classifier"], fail={"chars": ValueError("bad input")})
        with pytest.raises(ValueError, match="bad input"):
            run(runner, inputs={"__message__": "hi"}, targets=["classifier"])

