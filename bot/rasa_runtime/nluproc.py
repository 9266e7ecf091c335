"""The NLU pipeline in a process of its own, with the NLU thread as its fallback.

Why: the Rasa server is one Python process, and under load its turns share one interpreter
lock. At 50 SMS conversations py-spy (``--gil``) gave the NLU thread (``nluthread.py``) 23%
of the server's GIL time, and the server used 0.88 of a core while the machine had a third
of a core spare: the line was bound by the one process, not by the machine. An experiment
with a second Rasa server answering ``/model/parse`` gave 5-13% more SMS turns a second
(bench/README.md). Here a child process holds only the model's NLU part and parses; the
server sends it the message over a pipe and awaits the answer like any other I/O.

Safety first: the process is an optimisation, never a dependency. A parse goes to the NLU
thread instead, exactly as before, whenever the process is not ready yet (it loads the model
for about as long as the server did), has died (it is started again after
``RESTART_AFTER_S``, or ever later if it died before it was ready), was built from another
model than the one now loaded, gave an error (the thread's parse then raises Rasa's own error
to the turn), has not answered within
``PARSE_TIMEOUT_S`` (killed and started again if it answered nothing meanwhile), or already
has ``MAX_IN_FLIGHT`` messages waiting on it. A message is never lost between the two: the
one waiting for a dead process is parsed in the thread.

Only the Rasa server started by ``bot.run`` (``make run``) uses it: ``LINE_NLU_PROCESS=1``
is set for that process alone, unless set otherwise (``0`` turns it off); tests and other
Rasa commands parse in the thread. The child is spawned (not forked: the server's
TensorFlow and threads do not survive a fork), loads the NLU nodes of the model's graph
(``minimal_graph_schema``, so no policy is loaded) with ``bot.rasa_runtime.speedups``, and exits
when the pipe to the server closes, so it does not outlive a server that was killed.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import multiprocessing
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, Optional

from bot.settings import settings

logger = logging.getLogger(__name__)

ENV_FLAG = "LINE_NLU_PROCESS"  # read by bot.settings
PARSE_TIMEOUT_S = 2.0
RESTART_AFTER_S = 5.0
# Parses waiting on the process at most; more go to the thread. Keeps the pipe's buffer from
# ever filling (a send into a full pipe would stop the caller's event loop), and shares a
# burst between the two.
MAX_IN_FLIGHT = 64


def enabled() -> bool:
    return settings().nlu_process


class NluProcess:
    """One child process parsing for this process; ``parse`` answers None to mean "use the
    thread"."""

    def __init__(self, model_path: Path, model_id: Optional[str], *,
                 parse_timeout_s: Optional[float] = None,
                 target: Optional[Callable[..., None]] = None) -> None:
        self.model_path = Path(model_path)
        self.model_id = model_id
        self.parse_timeout_s = PARSE_TIMEOUT_S if parse_timeout_s is None else parse_timeout_s
        self._target = target or serve
        self._ids = itertools.count(1)
        self._pending: Dict[int, tuple[asyncio.AbstractEventLoop, asyncio.Future]] = {}
        self._lock = threading.Lock()  # the pending table
        self._send_lock = threading.Lock()  # one message at a time into the pipe
        self._ready = threading.Event()
        self._conn: Any = None
        self._process: Any = None
        self._reader: Optional[threading.Thread] = None
        self.pid: Optional[int] = None
        self.died_at: Optional[float] = None
        self.stopped = False
        self._last_answer = 0.0  # time.monotonic() of its latest answer
        self.was_ready = False
        self.restart_counted = False

    # -- life --------------------------------------------------------------------------------

    def start(self) -> None:
        ctx = multiprocessing.get_context("spawn")
        ours, theirs = ctx.Pipe(duplex=True)
        self._process = ctx.Process(target=self._target, args=(theirs, str(self.model_path)),
                                    name="line-nlu", daemon=True)
        self._process.start()
        theirs.close()  # only the child holds its end: its exit is our EOF
        self._conn = ours
        self.pid = self._process.pid
        self._reader = threading.Thread(target=self._read, name="nlu-proc-reader", daemon=True)
        self._reader.start()

    @property
    def ready(self) -> bool:
        return self._ready.is_set() and self.died_at is None and not self.stopped

    @property
    def dead(self) -> bool:
        return self.died_at is not None

    def wait_ready(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.ready:
                return True
            if self.dead:
                return False
            self._ready.wait(0.05)
        return self.ready

    def kill(self) -> None:
        try:
            if self._process is not None and self._process.is_alive():
                self._process.kill()  # the reader sees the pipe close and settles the rest
        except (OSError, ValueError):
            pass

    def stop(self, timeout: float = 5.0) -> None:
        self.stopped = True
        if self._conn is not None:
            try:
                with self._send_lock:
                    self._conn.send(("stop",))
            except Exception:  # noqa: BLE001  already gone
                pass
        if self._process is not None:
            self._process.join(timeout)
            if self._process.is_alive():
                self._process.kill()
                self._process.join(timeout)
        if self._reader is not None and self._reader is not threading.current_thread():
            self._reader.join(timeout)  # it ends on the child's exit, and closes the pipe
        self._fail_pending()

    # -- parsing -----------------------------------------------------------------------------

    async def parse(self, message: Any, only_output_properties: bool) -> Optional[dict]:
        if not self.ready:
            return None
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        request_id = next(self._ids)
        payload = {
            "text": message.text,
            "sender_id": message.sender_id,
            "input_channel": message.input_channel,
            "message_id": message.message_id,
            "metadata": message.metadata,
        }
        with self._lock:
            if len(self._pending) >= MAX_IN_FLIGHT:
                return None
            self._pending[request_id] = (loop, future)
        sent = time.monotonic()
        try:
            with self._send_lock:
                self._conn.send(("parse", request_id, payload, only_output_properties))
        except Exception as exc:  # noqa: BLE001  a closed pipe, metadata that will not pickle
            with self._lock:
                self._pending.pop(request_id, None)
            logger.warning("nlu process: could not send a message (%s); parsing in the thread",
                           type(exc).__name__)
            return None
        try:
            return await asyncio.wait_for(future, self.parse_timeout_s)
        except asyncio.TimeoutError:
            if self._last_answer < sent:
                # Stuck: nothing at all since this was sent. It is killed, the messages
                # waiting on it are parsed in the thread, and a new one starts after
                # RESTART_AFTER_S. Merely slow (answering others), it is left to go on.
                logger.warning("nlu process: no answer within %.1f s; parsing in the "
                               "thread, and starting it again", self.parse_timeout_s)
                self.kill()
            else:
                logger.warning("nlu process: slow (over %.1f s); parsing in the thread",
                               self.parse_timeout_s)
            return None
        finally:
            with self._lock:
                self._pending.pop(request_id, None)

    def _read(self) -> None:
        conn = self._conn
        while True:
            try:
                message = conn.recv()
            except (EOFError, OSError):
                break
            except Exception as exc:  # noqa: BLE001  an answer that would not unpickle
                logger.warning("nlu process: unreadable answer (%s)", type(exc).__name__)
                continue
            kind = message[0]
            if kind == "ready":
                _, model_id, _pid = message
                if self.model_id is not None and model_id != self.model_id:
                    logger.warning("nlu process: built from another model; not used")
                    break
                logger.info("nlu process %s ready: parsing for the Rasa server", self.pid)
                self.was_ready = True
                self._ready.set()
            elif kind == "parsed":
                _, request_id, ok, result = message
                self._last_answer = time.monotonic()
                with self._lock:
                    waiting = self._pending.pop(request_id, None)
                if waiting is None:
                    continue  # its caller gave up (timed out) and parsed in the thread
                if not ok:
                    # Parsed again in the thread, whose error reaches the turn as Rasa's.
                    logger.warning("nlu process: the pipeline failed (%s)", result)
                    result = None
                _resolve(waiting, result)
            elif kind == "unusable":
                logger.warning("nlu process: %s; parsing in the thread", message[1])
                break
        if not self.stopped:
            logger.warning("nlu process %s ended; parsing in the thread until it is back",
                           self.pid)
        self.died_at = time.monotonic()
        self._ready.clear()
        self._fail_pending()
        try:
            conn.close()
        except OSError:
            pass
        if self._process is not None:
            self._process.join(1.0)

    def _fail_pending(self) -> None:
        with self._lock:
            waiting, self._pending = list(self._pending.values()), {}
        for item in waiting:
            _resolve(item, None)


def _resolve(waiting: tuple[asyncio.AbstractEventLoop, asyncio.Future], result: Any) -> None:
    loop, future = waiting

    def settle() -> None:
        if not future.done():
            future.set_result(result)

    try:
        loop.call_soon_threadsafe(settle)
    except RuntimeError:
        pass  # that loop has closed


# -- this process's one NLU process -------------------------------------------------------------

_current: Optional[NluProcess] = None
_child_target: Optional[Callable[..., None]] = None  # the child's code; tests give a stand-in
_current_lock = threading.Lock()
_never_ready = 0  # processes in a row that died before they were ready


def _restart_delay(dead: NluProcess) -> float:
    """RESTART_AFTER_S after a process that had been parsing; after one that never got
    ready (the model will not load there), twice as long each time, up to 64 times: a child
    that cannot start must not cost a model load's CPU every few seconds."""
    global _never_ready
    if not dead.restart_counted:
        dead.restart_counted = True
        _never_ready = 0 if dead.was_ready else _never_ready + 1
    return RESTART_AFTER_S * (2 ** min(_never_ready, 6))


def for_processor(processor: Any) -> Optional[NluProcess]:
    """The NLU process to parse with for ``processor``'s model, or None for the thread.

    Starts one (in the background) when there is none for this model, or when the last one
    died more than ``RESTART_AFTER_S`` ago.
    """
    global _current
    if not enabled():
        return None
    model_path = getattr(processor, "model_path", None)
    metadata = getattr(processor, "model_metadata", None)
    if model_path is None or metadata is None or not Path(model_path).is_file():
        return None
    model_id = getattr(metadata, "model_id", None)
    with _current_lock:
        current = _current
        if current is not None and (current.model_path != Path(model_path)
                                    or current.model_id != model_id):
            stale, current, _current = current, None, None
            threading.Thread(target=stale.stop, daemon=True).start()  # another model loaded
        if current is not None and current.dead:
            if time.monotonic() - (current.died_at or 0.0) < _restart_delay(current):
                return None
            current = _current = None
        if current is None:
            current = NluProcess(Path(model_path), model_id, target=_child_target)
            try:
                current.start()
            except Exception as exc:  # noqa: BLE001  no process: the thread does it all
                logger.warning("nlu process: could not start (%s)", type(exc).__name__)
                current.died_at = time.monotonic()
            _current = current
    return current if current.ready else None


def state() -> str:
    """Where this process parses: "thread" (no NLU process, or it is down), "starting" (it
    is loading the model; the thread parses meanwhile) or "process"."""
    current = _current
    if not enabled() or (current is not None and current.dead):
        return "thread"
    if current is None or not current.ready:
        return "starting"
    return "process"


def stop() -> None:
    global _current, _never_ready
    with _current_lock:
        current, _current = _current, None
        _never_ready = 0
    if current is not None:
        current.stop()


# -- the child ------------------------------------------------------------------------------


def serve(conn: Any, model_path: str) -> None:
    """The child: load the NLU part of the model, then parse what the server sends."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the server's; we end on EOF
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # Nothing below a warning, as in the server (whose DEBUG lines carry message text):
    # structlog unconfigured would print every level.
    logging.basicConfig(level=logging.WARNING)
    try:
        from rasa.utils.log_utils import configure_structlog

        configure_structlog(logging.WARNING)
    except Exception:  # noqa: BLE001  another Rasa: the standard logging above still holds
        pass
    try:
        parse = _load(model_path, conn)
    except Exception as exc:  # noqa: BLE001
        _send(conn, ("unusable", f"could not load the model ({type(exc).__name__})"))
        return
    if parse is None:
        return
    while True:
        try:
            request = conn.recv()
        except (EOFError, OSError):
            return  # the server has gone
        if request[0] == "stop":
            return
        _, request_id, payload, only_output_properties = request
        try:
            answer = ("parsed", request_id, True, parse(payload, only_output_properties))
        except Exception as exc:  # noqa: BLE001  the thread parses it again and raises
            answer = ("parsed", request_id, False, type(exc).__name__)
        if not _send(conn, answer):
            return


def _send(conn: Any, message: tuple) -> bool:
    try:
        conn.send(message)
        return True
    except (BrokenPipeError, EOFError, OSError):
        return False
    except Exception as exc:  # noqa: BLE001  an answer that will not pickle
        if message[0] == "parsed":
            return _send(conn, ("parsed", message[1], False, type(exc).__name__))
        return False


def _load(model_path: str, conn: Any) -> Optional[Callable[[dict, bool], dict]]:
    import tempfile
    from types import SimpleNamespace

    from rasa.core.channels.channel import UserMessage
    from rasa.core.processor import MessageProcessor
    from rasa.engine.constants import PLACEHOLDER_TRACKER
    from rasa.engine.graph import ExecutionContext
    from rasa.engine.runner.dask import DaskGraphRunner
    from rasa.engine.storage.local_model_storage import LocalModelStorage

    from bot.rasa_runtime import speedups as rasa_speedups

    rasa_speedups.install()
    own_parse = MessageProcessor._parse_message_with_graph
    with tempfile.TemporaryDirectory() as storage_dir:
        storage, metadata = LocalModelStorage.from_model_archive(Path(storage_dir),
                                                                 Path(model_path))
        schema = metadata.predict_schema.minimal_graph_schema([metadata.nlu_target])
        if any(PLACEHOLDER_TRACKER in node.needs.values() for node in schema.nodes.values()):
            # The parse would need the conversation, which only the server holds.
            _send(conn, ("unusable", "the NLU pipeline reads the conversation"))
            return None
        runner = DaskGraphRunner.create(
            graph_schema=schema, model_storage=storage,
            execution_context=ExecutionContext(graph_schema=schema,
                                               model_id=metadata.model_id),
        )
    rasa_speedups.freeze_heap()
    processor = SimpleNamespace(graph_runner=runner, model_metadata=metadata)

    def parse(payload: dict, only_output_properties: bool) -> dict:
        message = UserMessage(payload["text"], None, payload["sender_id"],
                              input_channel=payload["input_channel"],
                              message_id=payload["message_id"], metadata=payload["metadata"])
        return own_parse(processor, message, None, only_output_properties)

    if not _send(conn, ("ready", metadata.model_id, os.getpid())):
        return None
    return parse
