"""Measured fixes to the Rasa server's hot path, installed by ``bot.rasa_runtime.install``.

1. ``install``: the cached custom-action response validator (below; with each event checked
   against its own event's shape, ``_quick_response_check``), the sequential graph
   runner (``_run_graph``), the rule policy's matching on rules parsed once
   (``_get_possible_keys``) and the intent classifier's TensorFlow call without the
   per-call signature matching (``_rasa_predict``), and the event classes looked up by name
   once (``_resolve_event_type``).
2. ``freeze_heap``: the garbage collector stops walking the loaded model (further below).

Each replaces one method of Rasa's with one that gives the same answer for less CPU, and each
has a test that compares it with Rasa's own (tests/unit/test_rasa_speedups.py);
``bench/graph_runner.py`` measures them together against Rasa as shipped.

``RemoteAction._validate_action_result`` calls ``jsonschema.validate(result, spec)`` on every
custom-action call, and ``jsonschema.validate`` checks the *schema* against its metaschema each
time before checking the response. py-spy under `make bench` at 50 conversations put 27-35% of
the Rasa server's busy time there (our turns call several custom actions). The schema is a
constant, so it is checked once here and the compiled validator reused; a response is validated
exactly as before and an invalid one raises the same ``ValidationError`` with Rasa's message.
"""

from __future__ import annotations

import gc
import json
import logging
import weakref
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
    quick = _quick_response_check(cls, spec)

    def _validate_action_result(self: RemoteAction, result: Dict[str, Any]) -> bool:
        if quick is not None and quick(result):
            return True
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
    _install_graph_runner()
    _install_rule_matching()
    _install_tf_predict()
    _install_event_lookup()
    _installed = True
    logger.debug("rasa speedups installed: cached custom-action response validator, "
                 "sequential graph runner, rule matching, TensorFlow predict call, "
                 "event lookup")


def _quick_response_check(cls: Any, spec: Dict[str, Any]) -> Any:
    """A check that says True only of a response the full schema accepts, for less CPU.

    Each event in the schema is ``oneOf`` some twenty shapes, one per event name (``"event":
    {"const": ...}``), and jsonschema tries every shape on every event to make sure exactly
    one fits, building (and deep-copying) an error for each that does not: with the schema
    check cached, that was still about 8% of the Rasa server's GIL time at 50 SMS
    conversations (py-spy ``--gil``). When every shape names its own event, an event can fit
    no shape but its name's, so checking it against that one shape is the same check. Anything
    this does not say True of (an unknown event name, a wrong type anywhere) goes to the full
    validator, which refuses it with its own error. ``None`` when Rasa's schema is not the shape
    this relies on (another Rasa): then every response gets the full check.
    """
    try:
        events = spec["properties"]["events"]
        item = events["items"]
        plain = ({"type": "array", "items": {"type": "object"}}
                 == spec["properties"]["responses"])
        if (set(spec) != {"type", "properties"} or spec["type"] != "object"
                or set(spec["properties"]) != {"events", "responses"} or not plain
                or set(events) != {"type", "items"} or events["type"] != "array"):
            return None
        base = {k: v for k, v in item.items() if k != "oneOf"}
        shapes: Dict[str, Any] = {}
        for shape in item["oneOf"]:
            name = shape["properties"]["event"]["const"]
            if not isinstance(name, str) or name in shapes:
                return None
            shapes[name] = cls({**base, "allOf": [shape]})
    except (KeyError, TypeError):
        return None

    def quick(result: Any) -> bool:
        if type(result) is not dict:
            return False
        responses = result.get("responses", [])
        if type(responses) is not list or any(type(r) is not dict for r in responses):
            return False
        events = result.get("events", [])
        if type(events) is not list:
            return False
        for event in events:
            name = event.get("event") if type(event) is dict else None
            shape = shapes.get(name) if type(name) is str else None
            if shape is None or not shape.is_valid(event):
                return False
        return True

    return quick


# Rasa's own ``DaskGraphRunner.run``, kept for comparison (tests, bench/graph_runner.py).
rasa_graph_run: Any = None


def _swap(cls: Any, name: str, ours: Any, own: Any) -> Any:
    """Put ``ours`` in place of ``cls.<name>``; return Rasa's own (``own`` when already done)."""
    current = getattr(cls, name)
    if current is ours:
        return own
    setattr(cls, name, ours)
    return current


def _install_graph_runner() -> None:
    global rasa_graph_run
    try:
        from rasa.engine.runner.dask import DaskGraphRunner
    except ImportError:
        return
    rasa_graph_run = _swap(DaskGraphRunner, "run", _run_graph, rasa_graph_run)


def _graph_order(runner: Any, targets: tuple[str, ...]) -> list[tuple[str, Any, tuple]]:
    """The nodes ``targets`` need, dependencies first: (name, node, names of its inputs)."""
    cache = runner.__dict__.setdefault("_line_orders", {})
    order = cache.get(targets)
    if order is not None:
        return order
    nodes = runner._graph_schema.nodes
    order, seen = [], set()

    def visit(name: str) -> None:
        if name in seen:
            return
        seen.add(name)
        schema_node = nodes.get(name)
        if schema_node is None:
            return  # an input placeholder ("__message__"): its value comes with the call
        needs = tuple(schema_node.needs.values())
        for dependency in needs:
            visit(dependency)
        order.append((name, runner._instantiated_nodes[name], needs))

    for target in targets:
        visit(target)
    cache[targets] = order
    return order


def _run_graph(self: Any, inputs: Dict[str, Any] | None = None,
               targets: list | None = None) -> Dict[str, Any]:
    """``DaskGraphRunner.run`` without dask: the same nodes, called in dependency order.

    Rasa runs its model graph through ``dask.get`` (the synchronous scheduler) for every
    message parsed and every action predicted, several times a turn. For this one-thread,
    one-pass use, dask's bookkeeping (ordering the graph, a thread pool's futures and
    condition variables, the schema's dependency walk redone per call) cost as much as a
    small component, and ``run`` formatted every input into a debug line (the message text
    among them) whether or not debug was on. Here the order is worked out once per set of
    targets and the nodes are called in it. Each node gets exactly what dask gave it (its
    dependencies' ``(name, output)`` pairs, an input as ``(name, value)``) and a node's
    exception reaches the caller as dask let it: a ``RuntimeError`` wrapped in
    ``GraphRunError``, anything else as raised.
    """
    from rasa.engine.exceptions import GraphRunError

    run_targets = list(targets) if targets else list(self._graph_schema.target_names)
    order = _graph_order(self, tuple(run_targets))
    values: Dict[str, Any] = {}
    if inputs:
        for name, value in inputs.items():
            if isinstance(value, str) and any(value == n for n, _, _ in order):
                raise GraphRunError(
                    f"Input value '{value}' clashes with a node name. Make sure that none of "
                    f"the input names passed to the `run` method are the same as node names "
                    f"in the graph schema."
                )
            values[name] = (name, value)
    try:
        for name, node, needs in order:
            # An input of the same name as a node replaces it, as in the dask graph.
            if name not in values:
                values[name] = node(*(values.get(dep, dep) for dep in needs))
    except RuntimeError as exc:
        raise GraphRunError("Error running runner.") from exc
    return dict(values.get(target, target) for target in run_targets)


# -- the rule policy's matching ---------------------------------------------------------------

# Rasa's own ``RulePolicy._get_possible_keys``, kept for comparison (tests, bench).
rasa_get_possible_keys: Any = None
_SHOULD_NOT_BE_SET = "should_not_be_set"
_PREVIOUS_ACTION = "prev_action"
# Rule key (the rule's states as JSON text) -> per turn, newest first: (whether the rule's
# state has a previous action, its (state type, key, value) checks). A key's text is the rule
# itself, so an entry never goes stale; the cap only bounds memory.
_parsed_rules: Dict[str, tuple] = {}
_PARSED_RULES_CAP = 50_000


def _install_rule_matching() -> None:
    global rasa_get_possible_keys, _SHOULD_NOT_BE_SET, _PREVIOUS_ACTION
    try:
        from rasa.core.policies import rule_policy
        from rasa.shared.core.constants import PREVIOUS_ACTION
    except ImportError:
        return
    _SHOULD_NOT_BE_SET = rule_policy.SHOULD_NOT_BE_SET
    _PREVIOUS_ACTION = PREVIOUS_ACTION
    rasa_get_possible_keys = _swap(rule_policy.RulePolicy, "_get_possible_keys",
                                   _get_possible_keys, rasa_get_possible_keys)


def _parsed_rule(rule_key: str) -> tuple:
    parsed = _parsed_rules.get(rule_key)
    if parsed is None:
        turns = []
        for rule_state in reversed(json.loads(rule_key)):
            checks = []
            for state_type, sub_state in rule_state.items():
                for key, value in sub_state.items():
                    # JSON turned the tuples of a state into lists, as Rasa's check undoes.
                    checks.append((state_type, key,
                                   tuple(value) if isinstance(value, list) else value))
            turns.append((bool(rule_state.get(_PREVIOUS_ACTION)), tuple(checks)))
        parsed = tuple(turns)
        if len(_parsed_rules) >= _PARSED_RULES_CAP:
            _parsed_rules.clear()
        _parsed_rules[rule_key] = parsed
    return parsed


def _rule_applies(turns: tuple, index: int, state: Dict[str, Any],
                  has_previous_action: bool) -> bool:
    """``RulePolicy._is_rule_applicable`` and ``_does_rule_match_state`` on a parsed rule."""
    if index >= len(turns):
        return True  # the conversation reaches back further than the rule
    rule_has_previous_action, checks = turns[index]
    if not rule_has_previous_action and not has_previous_action:
        return True  # both are a conversation's start
    if not rule_has_previous_action or not has_previous_action:
        return False
    for state_type, key, expected in checks:
        found = state.get(state_type, {}).get(key)
        if (expected and expected != _SHOULD_NOT_BE_SET and found != expected) or (
            expected == _SHOULD_NOT_BE_SET and found and found != _SHOULD_NOT_BE_SET
        ):
            return False
    return True


def _get_possible_keys(self: Any, lookup: Dict[str, str], states: list) -> set:
    """``RulePolicy._get_possible_keys``: the rules of ``lookup`` that match ``states``.

    Rasa's version parses each rule's JSON key (from a cache of 1,000) and copies its states
    reversed, for every rule at every turn of the conversation, on each of the several
    predictions of every turn (py-spy: 9% of a turn's CPU). Here each rule is parsed once
    and the same checks run on the parsed form, turn by turn from the newest, as Rasa's do;
    once no rule is left, older turns cannot bring one back.
    """
    candidates = [(key, _parsed_rule(key)) for key in lookup]
    for index, state in enumerate(reversed(states)):
        if not candidates:
            break
        has_previous_action = bool(state.get(_PREVIOUS_ACTION))
        candidates = [c for c in candidates
                      if _rule_applies(c[1], index, state, has_previous_action)]
    return {key for key, _ in candidates}


# -- the intent classifier's TensorFlow call -------------------------------------------------

# Rasa's own ``RasaModel._rasa_predict``, kept for comparison (tests, bench).
rasa_predict: Any = None
# tf.function -> (its one concrete function, the flat input specs), or None when it cannot
# be called flat (then Rasa's own call is used).
_flat_calls: "weakref.WeakKeyDictionary[Any, Any]" = weakref.WeakKeyDictionary()


def _install_tf_predict() -> None:
    global rasa_predict
    try:
        from rasa.utils.tensorflow.models import RasaModel
    except ImportError:
        return
    rasa_predict = _swap(RasaModel, "_rasa_predict", _rasa_predict, rasa_predict)


def _flat_call(step: Any) -> Any:
    try:
        return _flat_calls[step]
    except KeyError:
        pass
    import tensorflow as tf

    found = None
    try:
        concrete = step.get_concrete_function()
        specs = tf.nest.flatten(concrete.structured_input_signature)
        if specs and all(isinstance(s, tf.TensorSpec) and s.shape.rank is not None
                         for s in specs):
            found = (concrete, tuple((s.dtype, tuple(s.shape.as_list())) for s in specs))
    except Exception as exc:  # noqa: BLE001  another TensorFlow: Rasa's own call then
        logger.debug("rasa speedups: predict step not callable flat (%s)", type(exc).__name__)
    _flat_calls[step] = found
    return found


def _rasa_predict(self: Any, batch_in: Any) -> Dict[str, Any]:
    """``RasaModel._rasa_predict`` calling the traced graph directly.

    Rasa builds the prediction step as a ``tf.function`` with an input signature of
    unknown-size dimensions, so it has exactly one concrete function; yet each call goes
    through TensorFlow's dispatch (the arguments canonicalised against the signature, cast,
    the function looked up: 2 ms of a 8 ms call on this project's 2-core machine). Here the
    inputs are converted to tensors of the signature's types and checked against its shapes
    (rank, and the sizes it fixes) and the concrete
    function is called with them, which is where the dispatch ends up. Anything unusual (no
    step traced yet, eager mode, an input that does not fit the signature) takes Rasa's own
    call, so its errors are Rasa's.
    """
    step = getattr(self, "_tf_predict_step", None)
    if step is None or self._run_eagerly or not self.prepared_for_prediction:
        return rasa_predict(self, batch_in)
    call = _flat_call(step)
    if call is None:
        return rasa_predict(self, batch_in)
    import tensorflow as tf
    from keras.utils import tf_utils
    from rasa.shared.constants import DIAGNOSTIC_DATA

    concrete, specs = call
    flat = tf.nest.flatten(batch_in)
    if len(flat) != len(specs):
        return rasa_predict(self, batch_in)
    try:
        tensors = [tf.convert_to_tensor(value, dtype=dtype)
                   for value, (dtype, _) in zip(flat, specs, strict=True)]
    except (TypeError, ValueError):
        return rasa_predict(self, batch_in)
    for tensor, (_, dims) in zip(tensors, specs, strict=True):
        shape = tensor.shape.as_list()
        if len(shape) != len(dims) or any(
                d is not None and d != n for d, n in zip(dims, shape, strict=True)):
            return rasa_predict(self, batch_in)  # Rasa's call says what does not fit
    if self._training is not False:
        # Keras tracks every attribute set on a model (py-spy: 1% of a turn's GIL time to
        # set the same False again on each message).
        self._training = False
    outputs = tf_utils.sync_to_numpy_or_python_type(
        concrete._call_flat(tensors, concrete.captured_inputs))
    if DIAGNOSTIC_DATA in outputs:
        outputs[DIAGNOSTIC_DATA] = self._empty_lists_to_none_in_dict(outputs[DIAGNOSTIC_DATA])
    return outputs


# -- event classes by name --------------------------------------------------------------------

# Rasa's own ``Event.resolve_by_type``, kept for comparison (tests, bench).
rasa_resolve_event_type: Any = None
# type name -> the class Rasa's own lookup found for it.
_event_types: Dict[str, Any] = {}


def _install_event_lookup() -> None:
    global rasa_resolve_event_type
    try:
        from rasa.shared.core.events import Event
    except ImportError:
        return
    own = Event.__dict__["resolve_by_type"]
    ours = staticmethod(_resolve_event_type)
    if isinstance(own, staticmethod) and own.__func__ is _resolve_event_type:
        return
    rasa_resolve_event_type = own.__func__ if isinstance(own, staticmethod) else own
    Event.resolve_by_type = ours


def _resolve_event_type(type_name: str, default: Any = None) -> Any:
    """``Event.resolve_by_type``: the event class of a name, looked up once per name.

    Rasa walks the whole tree of ``Event`` subclasses (``all_subclasses``, with an
    ``inspect.isabstract`` check on each of the 27) for every event it reads from a dict:
    49 us an event on this project's machine, nearly all of the 2 ms it took to rebuild a
    42-event conversation from the tracker store (py-spy at 50 SMS conversations: 7% of
    the Rasa server's GIL time). Here Rasa's own lookup runs the first time a name is seen
    and its class is remembered; a name it does not know is asked again each time, so its
    ``default`` or its ``ValueError`` are Rasa's. Event classes are defined at import, so a
    name's class does not change afterwards.
    """
    found = _event_types.get(type_name)
    if found is not None:
        return found
    found = rasa_resolve_event_type(type_name, default)
    if found is not None and getattr(found, "type_name", None) == type_name:
        _event_types[type_name] = found  # the name's own class, not the default
    return found


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
