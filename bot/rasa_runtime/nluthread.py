"""The NLU pipeline runs in a thread of its own, so the turn loops go on while it works.

Why: Rasa parses a message by calling its model graph synchronously inside the turn's
coroutine, so the event loop running the turn (the SMS channel's turn thread, or the server's
loop for REST and web chat) stops for the whole parse. Most of that time is TensorFlow running
the intent classifier, which does not hold the GIL: py-spy (``--idle``) at 50 SMS
conversations had the turn thread spend 27% of its wall time in TensorFlow and 38% in the
classifier, time in which no other turn of that loop could run (its next action, its custom
action's answer, its tracker) although the interpreter was free. With the parse here, the loop
awaits it like any other I/O.

One thread, so the pipeline's components (spaCy, the featurizers, TensorFlow) are only ever
called from one thread at a time, as they were before. The policies (``select_prediction``)
still run in the turn's own loop: they share no node with the NLU but the read-only domain.

How: ``MessageProcessor.parse_message`` parses in this thread first, then runs Rasa's own
``parse_message`` with the result at hand, and ``_parse_message_with_graph`` hands that result
back instead of parsing again (a context variable carries it, so only the call it was made for
sees it). Rasa's own code still does everything else it did (the full retrieval intent, the
unseen-feature warnings, the HTTP interpreter when one is configured); an exception raised by
the pipeline reaches the caller as it did.

In the Rasa server ``make run`` starts, the parse goes to the NLU process (``nluproc.py``)
first, and to this thread whenever that process cannot answer.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Dict, Optional

from bot.rasa_runtime import nluproc

logger = logging.getLogger(__name__)

THREAD_NAME = "nlu"

# Rasa's own methods, kept for the fallback and for comparison in tests.
rasa_parse_message: Any = None
rasa_parse_with_graph: Any = None

_executor: Optional[ThreadPoolExecutor] = None
_executor_lock = threading.Lock()
# (message, only_output_properties, parse data) for the parse_message call under way.
_parsed: contextvars.ContextVar[Optional[tuple]] = contextvars.ContextVar(
    "line_nlu_parsed", default=None)


def executor() -> ThreadPoolExecutor:
    """The process's one NLU thread."""
    global _executor
    with _executor_lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=THREAD_NAME)
        return _executor


async def parse_message(self: Any, message: Any, tracker: Any = None,
                        only_output_properties: bool = True) -> Dict[str, Any]:
    """``MessageProcessor.parse_message`` with the model graph run in the NLU thread."""
    if self.http_interpreter is not None:
        return await rasa_parse_message(self, message, tracker, only_output_properties)
    if tracker is None:
        from rasa.shared.core.trackers import DialogueStateTracker

        tracker = DialogueStateTracker.from_events(message.sender_id, [])
    parsed = None
    worker = nluproc.for_processor(self)
    if worker is not None:
        parsed = await worker.parse(message, only_output_properties)
    if parsed is None:  # no NLU process (the default), or it could not answer
        parsed = await asyncio.get_running_loop().run_in_executor(
            executor(),
            functools.partial(rasa_parse_with_graph, self, message, tracker,
                              only_output_properties),
        )
    token = _parsed.set((message, only_output_properties, parsed))
    try:
        return await rasa_parse_message(self, message, tracker, only_output_properties)
    finally:
        _parsed.reset(token)


def _parse_message_with_graph(self: Any, message: Any, tracker: Any,
                              only_output_properties: bool = True) -> Dict[str, Any]:
    """Rasa's own, unless this very call's parse was done already in the NLU thread."""
    ready = _parsed.get()
    if ready is not None and ready[0] is message and ready[1] == only_output_properties:
        return ready[2]
    return rasa_parse_with_graph(self, message, tracker, only_output_properties)


def install() -> None:
    global rasa_parse_message, rasa_parse_with_graph
    try:
        from rasa.core.processor import MessageProcessor
    except ImportError:
        return
    if MessageProcessor.parse_message is parse_message:
        return
    rasa_parse_message = MessageProcessor.parse_message
    rasa_parse_with_graph = MessageProcessor._parse_message_with_graph
    MessageProcessor.parse_message = parse_message
    MessageProcessor._parse_message_with_graph = _parse_message_with_graph
    logger.debug("the NLU pipeline runs in its own thread")
