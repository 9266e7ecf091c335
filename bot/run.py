"""Start the whole line on one machine: Rasa server, action server and duty service.

``make run`` calls this after set-up. It brings the database up to date, loads the service
directory, then starts the three processes with the settings from ``bot/settings.py`` passed
down as environment variables. A process that dies is restarted (a crisis line should not stay
down because one part fell over); Ctrl-C stops everything.
"""

from __future__ import annotations

import logging
import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Dict, List, Optional

from bot import settings as settings_module
from bot.settings import ROOT, Settings

logger = logging.getLogger("bot.run")

RESTART_WINDOW_S = 60
# More restarts than this within the window (a database outage, say) are spaced out, never
# abandoned: a crisis line that gave up would be down until someone noticed.
MAX_RESTARTS_IN_WINDOW = 5
MAX_RESTART_DELAY_S = 30.0


def restart_delay(recent_restarts: int) -> float:
    """Seconds to wait before the next restart, given restarts in the last window."""
    if recent_restarts < MAX_RESTARTS_IN_WINDOW:
        return 0.0
    return min(MAX_RESTART_DELAY_S, 2.0 ** (recent_restarts - MAX_RESTARTS_IN_WINDOW + 1))


def child_env(s: Settings, base: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    """The environment for the three processes: every setting resolved to a value."""
    env = dict(os.environ if base is None else base)
    env.update(
        {
            "DATABASE_URL": s.database_url,
            "RASA_PORT": str(s.rasa_port),
            "ACTIONS_PORT": str(s.actions_port),
            "DUTY_PORT": str(s.duty_port),
            "PUBLIC_BASE_URL": s.public_base_url,
            "TZ_LINE": s.tz_line,
            "PYTHONPATH": str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else ""),
            "TF_CPP_MIN_LOG_LEVEL": env.get("TF_CPP_MIN_LOG_LEVEL", "2"),
            "RASA_TELEMETRY_ENABLED": "false",
            "SQLALCHEMY_SILENCE_UBER_WARNING": "1",
        }
    )
    # Resolved here because endpoints.yml reads them (Rasa refuses an unset ${VAR}): the
    # address of the action server and the token the Rasa server sends it.
    env["ACTIONS_URL"], env["ACTIONS_TOKEN"] = s.actions_url, s.actions_token
    env["RASA_HOST"], env["ACTIONS_HOST"] = s.rasa_host, s.actions_host
    # This process has said what production would refuse; its children need not say it again.
    env["LINE_SUPERVISED"] = "1"
    # The staff relay needs a shared token between the duty service and the Rasa server; in
    # development, when none is configured, make one for this run only.
    if not s.relay_token:
        env["RELAY_TOKEN"] = secrets.token_urlsafe(24)
    # Rasa's DEBUG log carries message text; the line's processes never run below INFO.
    if env.get("LOG_LEVEL", "INFO").upper() == "DEBUG":
        env["LOG_LEVEL"] = "INFO"
    return env


# One TensorFlow thread per op in the Rasa server (Rasa reads these at start): the intent
# classifier's call on one message is too small to split, and with the other core busy,
# TensorFlow's default of one thread per core made it wait for the second (bench/tf_threads.py:
# 3.0 -> 2.4 ms a call). Only there: any `rasa` command that finds them set imports TensorFlow
# to apply them, which cost the action server 360 MB of memory for nothing.
TF_THREADS = ("TF_INTRA_OP_PARALLELISM_THREADS", "TF_INTER_OP_PARALLELISM_THREADS")
# The Rasa server parses in an NLU process of its own, the NLU thread its fallback
# (bot/rasa_runtime/nluproc.py); LINE_NLU_PROCESS=0 keeps it all in the thread.
RASA_ONLY = {**{var: "1" for var in TF_THREADS}, "LINE_NLU_PROCESS": "1"}


def process_env(name: str, env: Dict[str, str]) -> Dict[str, str]:
    """``env`` as the child ``name`` gets it."""
    if name == "rasa":
        return {**RASA_ONLY, **env}
    return {k: v for k, v in env.items() if k not in RASA_ONLY}


def commands(s: Settings, model: Path) -> Dict[str, List[str]]:
    rasa = [
        # Rasa's own CLI, through the entry point that installs bot/rasa_runtime first.
        sys.executable, "-m", "bot.rasa_server", "run", "--enable-api",
        # Rasa listens on every interface unless told; the line's HTTP API, REST channel and
        # relay stay on the loopback behind the proxy (RASA_HOST to change it).
        "--interface", s.rasa_host,
        "--port", str(s.rasa_port),
        "--model", str(model),
        "--credentials", "credentials.yml",
        "--endpoints", "endpoints.yml",
    ]
    if s.rasa_auth_token:
        rasa += ["--auth-token", s.rasa_auth_token]
    procs = {
        "rasa": rasa,
        # rasa-sdk's server with the token check and ACTIONS_HOST (bot/action_server.py).
        "actions": [sys.executable, "-m", "bot.action_server", "--actions", "actions"],
    }
    if (ROOT / "bot" / "duty" / "__main__.py").exists():
        procs["duty"] = [sys.executable, "-m", "bot.duty"]
    return procs


@dataclass
class Child:
    name: str
    argv: List[str]
    proc: Optional[subprocess.Popen] = None
    restarts: List[float] = field(default_factory=list)
    restart_at: Optional[float] = None

    def start(self, env: Dict[str, str], log: Optional[IO[bytes]] = None) -> None:
        """Start the process; ``log``: a file for its output (tests), else ours."""
        # Own process group, so Ctrl-C reaches us first and we stop children in order.
        self.proc = subprocess.Popen(self.argv, cwd=ROOT, env=process_env(self.name, env),
                                     start_new_session=True,
                                     stdout=log, stderr=log)
        logger.info("started %s (pid %s)", self.name, self.proc.pid)

    def stop(self, timeout: float = 10.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=timeout)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def prepare(s: Settings) -> None:
    """Schema up to date, directory loaded: before any process takes a message."""
    from bot.store import migrate

    migrate.upgrade(s.database_url)
    try:
        from bot.directory.__main__ import main as directory_main
    except ImportError:
        return
    if directory_main(["import"]) != 0:
        logger.error("the service directory did not load; the national services still answer")


def _demo_account():
    """A staff account to try the console with (development only; None in production)."""
    try:
        from bot.duty.accounts import ensure_demo_account
    except ImportError:
        return None
    return ensure_demo_account()


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    s = settings_module.settings()
    # Before anything starts: production stops here naming each unsafe setting (a SystemExit
    # with the message), development says once what production would refuse.
    settings_module.check(s, "make run")
    from bot.train import model_path

    model = model_path()
    if not model.exists():
        print("No trained model for the current inputs: run `make run` (it trains first).", file=sys.stderr)
        return 1
    prepare(s)
    demo = _demo_account()
    env = child_env(s)
    children = [Child(name, argv) for name, argv in commands(s, model).items()]
    stopping = False

    def on_signal(signum, _frame):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    for child in children:
        child.start(env)
    if not s.twilio_configured:
        print("No Twilio account configured: outbound SMS are recorded, not sent.", file=sys.stderr)
    print(
        f"\nThe line is starting (the Rasa server takes ~20 s to load):\n"
        f"  Rasa server    http://localhost:{s.rasa_port}  (REST: POST /webhooks/rest/webhook)\n"
        f"  Action server  http://localhost:{s.actions_port}/health\n"
        f"  Web chat       http://localhost:{s.duty_port}/\n"
        f"  Duty console   http://localhost:{s.duty_port}/duty  (health: /health)\n"
        f"  Database       {s.database_url.split('@')[-1]}\n"
        f"Press Ctrl-C to stop everything.\n",
        file=sys.stderr,
    )
    if demo is not None:
        print(demo.message(), file=sys.stderr)
    try:
        while not stopping:
            time.sleep(0.5)
            for child in children:
                if stopping or child.proc is None or child.proc.poll() is None:
                    continue
                now = time.monotonic()
                if child.restart_at is None:
                    child.restarts = [t for t in child.restarts if now - t < RESTART_WINDOW_S]
                    delay = restart_delay(len(child.restarts))
                    child.restart_at = now + delay
                    if delay:
                        logger.error("%s keeps failing (exit %s); restarting in %.0f s",
                                     child.name, child.proc.returncode, delay)
                    else:
                        logger.warning("%s exited with %s; restarting", child.name,
                                       child.proc.returncode)
                if now < child.restart_at:
                    continue
                child.restart_at = None
                child.restarts.append(now)
                child.start(env)
    finally:
        for child in reversed(children):
            child.stop()
    print("Stopped.", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
