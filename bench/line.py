"""Start and stop the line for benchmarks and fault runs, as ``make run`` starts it.

``Line`` runs ``python -m bot.run`` (the supervisor that migrates the database, loads the
directory and starts the Rasa server, the action server and the duty service, restarting any
that dies) with its own free ports, a database of its own, a rota with someone on call round
the clock and Twilio pointed at a fake API. It never touches a ``make run`` someone else has
going: every port is a free one and the database is new.

``Baseline`` is the yardstick: a stock ``rasa init`` bot of the same Rasa version, trained once
in a temporary folder and cached under ``var/bench/`` by Rasa version, served with
``rasa run --enable-api`` the same way.

Both measure cold start (process start to Rasa's ``/status`` answering with the model loaded)
and the resident memory of each process, read from ``/proc`` (no extra dependency).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import requests

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
CACHE_DIR = ROOT / "var" / "bench"

# Invented credentials for the fake Twilio API; nothing here can reach the real one.
ACCOUNT_SID = "AC" + "be" * 16
AUTH_TOKEN = "bench-twilio-auth-token"
LINE_NUMBER = "+447700900000"
PUBLIC_BASE = "https://line.example.org"
RASA_TOKEN = "bench-rasa-token-not-secret"
DUTY_TOKEN = "bench-duty-token"
# Production mode (Twilio, https): the line refuses a key shorter than 32 characters.
PSEUDONYM_KEY = "bench-pseudonym-key-not-secret-0123456789"
PLAN_KEY = "bench-crisis-plan-key-not-secret-0123456789"
AUDIT_KEY = "bench-audit-key-not-secret-0123456789abcdef"
POSTGRES_ADMIN_URL = os.environ.get(
    "BENCH_POSTGRES_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
)

# On call round the clock, so alerts do not depend on the time of day the bench runs at. The
# numbers are in Ofcom's drama range; the fake Twilio API tells alerts from replies by them.
STAFF_NUMBERS = {
    "peer_worker": "+447700900601",
    "duty_manager": "+447700900602",
    "crisis_team": "+447700900603",
}
ROTA = """
timezone: Europe/London
staff:
  - {id: pat, name: Pat, role: peer_worker, phone: "07700 900601"}
  - {id: mo, name: Mo, role: duty_manager, phone: "07700 900602"}
  - {id: kit, name: Kit, role: crisis_team, phone: "07700 900603"}
tiers:
  - id: peer_workers
    name: Peer workers
    shifts: [{days: daily, from: "00:00", to: "00:00", staff: [pat]}]
  - id: duty_manager
    name: Duty manager
    shifts: [{days: daily, from: "00:00", to: "00:00", staff: [mo]}]
  - id: crisis_team
    name: Crisis team
    shifts: [{days: daily, from: "00:00", to: "00:00", staff: [kit]}]
ladders:
  support: [peer_workers, duty_manager]
  urgent: [peer_workers, duty_manager, crisis_team]
  imminent: [duty_manager, crisis_team]
sanctuaries: []
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- /proc ------------------------------------------------------------------------------------

def _stat_fields(pid: int) -> list[str]:
    raw = Path(f"/proc/{pid}/stat").read_text()
    # The command name is in parentheses and may hold spaces; the fields after it are plain.
    return raw[raw.rindex(")") + 2:].split()


def process_tree() -> dict[int, list[int]]:
    """Every process's direct children, from one scan of /proc (works without
    CONFIG_PROC_CHILDREN). One scan per memory sample: the sampler runs beside the load, and
    a scan per process (the line has four, the stock bot one) took the line's CPU, not the
    stock bot's."""
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int(_stat_fields(int(entry.name))[1])
        except (OSError, ValueError, IndexError):
            continue
        tree.setdefault(parent, []).append(int(entry.name))
    return tree


def children_of(pid: int, tree: Optional[dict[int, list[int]]] = None) -> list[int]:
    """Direct children of ``pid``."""
    return list((process_tree() if tree is None else tree).get(pid, ()))


def rss_mb(pid: int, with_children: bool = True,
           tree: Optional[dict[int, list[int]]] = None) -> Optional[float]:
    """Resident memory of a process (and its descendants) in MiB; None when it is gone."""
    total = 0
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
                break
    except OSError:
        return None
    if with_children:
        if tree is None:
            tree = process_tree()
        for child in tree.get(pid, ()):
            total += int((rss_mb(child, True, tree) or 0) * 1024)
    return total / 1024


def started_at(pid: int) -> Optional[float]:
    """When the process started, as a ``time.time()`` value (10 ms resolution)."""
    try:
        ticks = int(_stat_fields(pid)[19])
        boot = next(int(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines()
                    if line.startswith("btime "))
    except (OSError, ValueError, StopIteration, IndexError):
        return None
    return boot + ticks / os.sysconf("SC_CLK_TCK")


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def process_name(argv: str) -> Optional[str]:
    """Which of the line's processes a command line is (as bot.run starts them)."""
    if "bot.action_server" in argv or " run actions" in argv:
        return "actions"
    if " run --enable-api" in argv:
        return "rasa"
    if "bot.duty" in argv:
        return "duty"
    return None


# --- databases --------------------------------------------------------------------------------

def create_database(kind: str, tmp: Path, prefix: str) -> str:
    """A new, empty database: a SQLite file in ``tmp`` or a PostgreSQL database."""
    if kind == "sqlite":
        return f"sqlite:///{tmp / 'line.db'}"
    from sqlalchemy import create_engine, text

    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT", future=True)
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"


def drop_database(url: str) -> None:
    if not url.startswith("postgresql"):
        return
    from sqlalchemy import create_engine, text

    name = url.rsplit("/", 1)[1]
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT", future=True)
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


# --- the line ---------------------------------------------------------------------------------

@dataclass
class ColdStart:
    """Seconds from a process's start to its readiness (Rasa: /status with the model)."""

    launch_to_ready_s: float  # from our Popen of the supervisor (migrate, directory, children)
    process_to_ready_s: dict[str, float] = field(default_factory=dict)


def _get_ok(url: str, timeout: float = 2.0) -> Optional[requests.Response]:
    try:
        resp = requests.get(url, timeout=timeout)
    except requests.RequestException:
        return None
    return resp if resp.status_code == 200 else None


class Line:
    """The line under test: ``python -m bot.run`` with its three children."""

    def __init__(self, twilio_api_url: str, db_kind: str = "postgresql",
                 extra_env: Optional[dict[str, str]] = None, keep_logs: bool = False) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="bench-line-"))
        self.db_kind = db_kind
        self.db_url = ""
        self.rasa_port, self.actions_port, self.duty_port = free_port(), free_port(), free_port()
        self.twilio_api_url = twilio_api_url
        self.extra_env = extra_env or {}
        self.keep_logs = keep_logs
        self.log_path = self.tmp / "line.log"
        self.supervisor: Optional[subprocess.Popen] = None
        self.launched_at = 0.0

    @property
    def rasa_url(self) -> str:
        return f"http://127.0.0.1:{self.rasa_port}"

    @property
    def duty_url(self) -> str:
        return f"http://127.0.0.1:{self.duty_port}"

    @property
    def actions_url(self) -> str:
        return f"http://127.0.0.1:{self.actions_port}"

    def env(self) -> dict[str, str]:
        rota = self.tmp / "rota.yml"
        rota.write_text(ROTA)
        env = dict(os.environ)
        for name in ("REDIS_URL", "RELAY_TOKEN", "SMS_ALLOW_UNSIGNED", "LOG_LEVEL"):
            env.pop(name, None)
        env.update({
            "DATABASE_URL": self.db_url,
            "RASA_PORT": str(self.rasa_port),
            "ACTIONS_PORT": str(self.actions_port),
            "DUTY_PORT": str(self.duty_port),
            "RASA_AUTH_TOKEN": RASA_TOKEN,
            "DUTY_API_TOKEN": DUTY_TOKEN,
            "PUBLIC_BASE_URL": PUBLIC_BASE,
            "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
            "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
            "TWILIO_NUMBER": LINE_NUMBER,
            "TWILIO_API_URL": self.twilio_api_url,
            "PSEUDONYM_KEY": PSEUDONYM_KEY,
            "PLAN_KEY": PLAN_KEY,
            "AUDIT_KEY": AUDIT_KEY,
            "STAFF_2FA_KEY": "bench-staff-2fa-key-not-secret-0123456789",
            "ROTA_FILE": str(rota),
            # One tier per escalation during a run: the ladder's next tiers are due only after
            # an hour, so "alerts due" is exactly the first tier of every escalation.
            "ESCALATION_ACK_TIMEOUT_S": "3600",
            "DUTY_PUBLIC_URL": "https://duty.example.org",
            "PYTHONPATH": str(ROOT),
            "TF_CPP_MIN_LOG_LEVEL": "3",
            "RASA_TELEMETRY_ENABLED": "false",
            "SQLALCHEMY_SILENCE_UBER_WARNING": "1",
        })
        env.update(self.extra_env)
        return env

    def start(self, timeout: float = 300.0) -> ColdStart:
        """Create the database, launch the supervisor, wait for all three to be ready."""
        self.db_url = create_database(self.db_kind, self.tmp, "bench_line")
        log = open(self.log_path, "ab")
        self.launched_at = time.time()
        self.supervisor = subprocess.Popen(
            [sys.executable, "-m", "bot.run"], cwd=ROOT, env=self.env(), stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True,
        )
        log.close()
        ready = self.wait_ready(timeout)
        return ColdStart(
            launch_to_ready_s=max(ready.values()) - self.launched_at,
            process_to_ready_s=self._process_ready(ready),
        )

    def _process_ready(self, ready: dict[str, float]) -> dict[str, float]:
        out = {}
        for name, pid in self.pids().items():
            begun = started_at(pid)
            if begun is not None and name in ready:
                out[name] = round(ready[name] - begun, 2)
        return out

    def pids(self, tree: Optional[dict[int, list[int]]] = None) -> dict[str, int]:
        """The supervisor's children by name (rasa, actions, duty)."""
        if self.supervisor is None:
            return {}
        out = {}
        for pid in children_of(self.supervisor.pid, tree):
            name = process_name(cmdline(pid))
            if name:
                out[name] = pid
        return out

    def readiness(self) -> dict[str, bool]:
        status = _get_ok(f"{self.rasa_url}/status?token={RASA_TOKEN}")
        rasa_ok = bool(status is not None and status.json().get("model_id"))
        sms = _get_ok(f"{self.rasa_url}/webhooks/sms/") if rasa_ok else None
        return {
            "rasa": rasa_ok and sms is not None and sms.json().get("status") == "ok",
            "actions": _get_ok(f"{self.actions_url}/health") is not None,
            "duty": _get_ok(f"{self.duty_url}/health") is not None,
        }

    def wait_ready(self, timeout: float = 300.0,
                   names: tuple[str, ...] = ("rasa", "actions", "duty")) -> dict[str, float]:
        """Poll until each named process answers; returns when each first did."""
        deadline = time.monotonic() + timeout
        ready: dict[str, float] = {}
        while time.monotonic() < deadline:
            if self.supervisor is not None and self.supervisor.poll() is not None:
                raise RuntimeError(f"the line's supervisor exited; see {self.tail_log()}")
            state = self.readiness()
            for name in names:
                if state[name] and name not in ready:
                    ready[name] = time.time()
            if len(ready) == len(names):
                return ready
            time.sleep(0.1)
        raise TimeoutError(f"the line was not ready after {timeout:.0f} s: {self.tail_log()}")

    def wait_nlu(self, timeout: float = 180.0) -> Optional[float]:
        """Seconds from launch until the Rasa server's NLU process answered (None: it has
        none, or it did not come up; the NLU thread parses then)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            sms = _get_ok(f"{self.rasa_url}/webhooks/sms/")
            where = sms.json().get("nlu") if sms is not None else None
            if where == "process":
                return round(time.time() - self.launched_at, 2)
            if where != "starting":
                return None
            time.sleep(0.2)
        return None

    def tail_log(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return "(no log)"

    def rss(self) -> dict[str, float]:
        tree = process_tree()
        return {name: round(rss_mb(pid, True, tree) or 0.0, 1)
                for name, pid in self.pids(tree).items()}

    def kill(self, name: str) -> Optional[int]:
        """SIGKILL one child's process group; the supervisor restarts it. Returns its pid."""
        pid = self.pids().get(name)
        if pid is None:
            return None
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            return None
        return pid

    def stop(self) -> None:
        if self.supervisor is not None and self.supervisor.poll() is None:
            os.killpg(self.supervisor.pid, signal.SIGTERM)
            try:
                self.supervisor.wait(timeout=30)
            except subprocess.TimeoutExpired:
                for pid in self.pids().values():
                    try:
                        os.killpg(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                os.killpg(self.supervisor.pid, signal.SIGKILL)
                self.supervisor.wait(timeout=10)
        self.supervisor = None
        if self.db_url:
            drop_database(self.db_url)
        if not self.keep_logs:
            shutil.rmtree(self.tmp, ignore_errors=True)


# --- the stock bot ----------------------------------------------------------------------------

def rasa_version() -> str:
    from importlib.metadata import version

    return version("rasa")


def baseline_model(log: Optional[Path] = None) -> Path:
    """The stock ``rasa init`` model for this Rasa version, trained once and cached."""
    target = CACHE_DIR / f"baseline-rasa-{rasa_version()}" / "model.tar.gz"
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bench-baseline-") as tmp:
        out = open(log or os.devnull, "ab")
        env = dict(os.environ, RASA_TELEMETRY_ENABLED="false", TF_CPP_MIN_LOG_LEVEL="3")
        # --no-prompt creates the stock project and trains it, as a newcomer would.
        subprocess.run([str(BIN / "rasa"), "init", "--no-prompt", "--init-dir", tmp],
                       cwd=tmp, env=env, stdout=out, stderr=subprocess.STDOUT, check=True)
        out.close()
        models = sorted(Path(tmp, "models").glob("*.tar.gz"))
        if not models:
            raise RuntimeError("rasa init did not write a model")
        # The project files too, so the server runs with the stock credentials and endpoints.
        for name in ("credentials.yml", "endpoints.yml"):
            shutil.copy(Path(tmp, name), target.parent / name)
        shutil.copy(models[-1], target)
    return target


class Baseline:
    """The stock bot, served as ``rasa run --enable-api`` from its own folder."""

    def __init__(self, model: Path) -> None:
        self.model = model
        self.port = free_port()
        self.tmp = Path(tempfile.mkdtemp(prefix="bench-baseline-run-"))
        self.proc: Optional[subprocess.Popen] = None

    @property
    def rasa_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 300.0) -> ColdStart:
        env = dict(os.environ, RASA_TELEMETRY_ENABLED="false", TF_CPP_MIN_LOG_LEVEL="3")
        log = open(self.tmp / "rasa.log", "ab")
        launched = time.time()
        self.proc = subprocess.Popen(
            [str(BIN / "rasa"), "run", "--enable-api", "--port", str(self.port), "--model",
             str(self.model), "--auth-token", RASA_TOKEN,
             "--credentials", str(self.model.parent / "credentials.yml"),
             "--endpoints", str(self.model.parent / "endpoints.yml")],
            cwd=self.tmp, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("the stock bot exited: "
                                   + (self.tmp / "rasa.log").read_text(errors="replace")[-2000:])
            status = _get_ok(f"{self.rasa_url}/status?token={RASA_TOKEN}")
            if status is not None and status.json().get("model_id"):
                ready = time.time()
                return ColdStart(launch_to_ready_s=ready - launched,
                                 process_to_ready_s={"rasa": round(ready - launched, 2)})
            time.sleep(0.1)
        raise TimeoutError("the stock bot was not ready")

    def pids(self) -> dict[str, int]:
        return {"rasa": self.proc.pid} if self.proc and self.proc.poll() is None else {}

    def rss(self) -> dict[str, float]:
        return {name: round(rss_mb(pid) or 0.0, 1) for name, pid in self.pids().items()}

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self.proc = None
        shutil.rmtree(self.tmp, ignore_errors=True)
