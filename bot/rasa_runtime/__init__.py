"""Everything of ours that reaches inside Rasa or TensorFlow, and the one place that installs it.

What is here (each module says why, with the measurement behind it):

- ``speedups``: measured replacements of Rasa methods on the hot path (the custom-action
  response validator, the graph runner, rule matching, the classifier's TensorFlow call, the
  event lookup) and the frozen heap after start-up;
- ``nluthread`` and ``nluproc``: the NLU pipeline in a thread of its own, and in a process of
  its own with the thread as its fallback;
- ``tracker_store``: Rasa's SQL tracker store with its work off the event loop and a memory
  of recent conversations (through two private methods of Rasa's store);
- ``memory_guard``: the conversation memory of risk around every turn's prediction loop. This
  one is safety behaviour, not a speed-up: it is installed whatever ``RASA_PATCHES`` says.

Nothing is installed at import. ``install`` is called by ``python -m bot.rasa_server`` (the
entry point ``make run``, ``make shell``, the benchmarks and the conversation tests all start
Rasa through), before Rasa's own command line runs. The speed-ups are installed only on the
Rasa version they were tested against (``TESTED_RASA``) and only with ``RASA_PATCHES=on`` (the
default); otherwise Rasa runs as shipped, but for the memory of risk. Which patches are active
is logged at start-up.
"""

from __future__ import annotations

import logging
from typing import Any, List, Optional

logger = logging.getLogger(__name__)

# The Rasa release the speed-ups were written and tested against; on any other they stay off.
TESTED_RASA = "3.6.21"

_active: Optional[List[str]] = None


def rasa_version() -> str:
    import rasa

    return getattr(rasa, "__version__", "unknown")


def _after_start(processor: Any) -> None:
    from bot.rasa_runtime import nluproc, speedups

    # The model is loaded: from here the garbage collector leaves it alone (speedups.py).
    speedups.freeze_heap()
    # The NLU process (when this server has one) loads while the first turns parse in the
    # thread (nluproc.py).
    if processor is not None:
        nluproc.for_processor(processor)


def install(patches: Optional[str] = None) -> List[str]:
    """Install the runtime, once per process; returns the names of what is active.

    ``patches`` is ``"on"`` or ``"off"`` (default: the ``RASA_PATCHES`` setting).
    """
    global _active
    if _active is not None:
        return list(_active)
    from bot.channels import server_hooks
    from bot.rasa_runtime import memory_guard
    from bot.settings import settings

    mode = patches if patches is not None else settings().rasa_patches
    version = rasa_version()
    active: List[str] = []
    # Safety first, and on any Rasa: memory_guard checks for the one method it wraps and says
    # so loudly when it cannot (the conversation memory of risk is then OFF).
    if version != TESTED_RASA:
        logger.warning("rasa runtime: Rasa %s, not %s: the conversation memory of risk is "
                       "installed untested on it", version, TESTED_RASA)
    if memory_guard.install() is None:
        active.append("memory_guard")
    from bot.rasa_runtime import tracker_store

    # endpoints.yml names our tracker store in every case; without the speed-ups it is Rasa's.
    tracker_store.LineTrackerStore.stock = True
    if mode == "off":
        logger.warning("rasa runtime: RASA_PATCHES=off: no speed-ups, Rasa runs as shipped")
    elif version != TESTED_RASA:
        logger.error("rasa runtime: the speed-ups were tested on Rasa %s, this is %s: none "
                     "installed (RASA_PATCHES=off says the same without this error)",
                     TESTED_RASA, version)
    else:
        from bot.rasa_runtime import nluproc, nluthread, speedups

        speedups.install()
        nluthread.install()
        tracker_store.LineTrackerStore.stock = False
        server_hooks.after_start.append(_after_start)
        server_hooks.before_stop.append(nluproc.stop)
        server_hooks.nlu_state.append(nluproc.state)
        active += ["speedups", "nlu_thread", "frozen_heap", "tracker_store"]
        if nluproc.enabled():
            active.append("nlu_process")
    logger.info("rasa runtime on Rasa %s: active: %s", version, ", ".join(active) or "none")
    _active = active
    return list(active)


def active() -> List[str]:
    """What ``install`` put in place in this process (empty before it ran)."""
    return list(_active or [])
