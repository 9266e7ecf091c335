"""Measured fixes to the Rasa server's hot path, installed by our channels.

1. ``install``: the cached custom-action response validator (below) and the sequential graph
   runner (``_run_graph``).
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
    _install_graph_runner()
    _installed = True
    logger.debug("rasa speedups installed: cached custom-action response validator, "
                 "sequential graph runner")


# Rasa's own ``DaskGraphRunner.run``, kept for comparison (tests, bench/graph_runner.py).
rasa_graph_run: Any = None


def _install_graph_runner() -> None:
    global rasa_graph_run
    try:
        from rasa.engine.runner.dask import DaskGraphRunner
    except ImportError:
        return
    if DaskGraphRunner.run is not _run_graph:
        rasa_graph_run = DaskGraphRunner.run
        DaskGraphRunner.run = _run_graph


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
