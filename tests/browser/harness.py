"""The whole line on free ports, as ``make run`` starts it, and Debian's Chromium to drive it.

Used by the browser tests (``tests/browser/conftest.py``) and by ``scripts/screenshots.py``.
The processes, their command lines and their environment come from ``bot/run.py`` itself
(``commands``, ``child_env``, ``Child``), so the tests start exactly what ``make run`` starts:
the Rasa server with the trained model, the action server and the duty service (with its
dispatcher and takeover engine). Differences, all for isolation: a SQLite database, a copy of
the rota and the logs in a temporary folder, and free ports.

Chromium is Debian's (``/usr/bin/chromium``, installed by ``scripts/ensure-chromium``), never
a browser downloaded by Playwright: this machine and CI reach only the package registries.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Optional

import requests

from bot import settings as settings_module
from bot.run import Child, child_env, commands
from bot.settings import ROOT
from bot.train import model_path

# The console's managers must use a second factor (bot/duty/signin.py); the browser tests'
# manager has this authenticator secret.
MANAGER_ROLES = ("duty_manager", "admin")
TOTP_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
# Settings that would point the line under test at real services or change what it does.
_STRIP = ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_NUMBER", "TWILIO_API_URL",
          "RASA_AUTH_TOKEN", "RELAY_TOKEN", "DUTY_API_TOKEN", "REDIS_URL", "RASA_URL",
          "ACTIONS_URL", "WEBCHAT_ALLOWED_ORIGINS", "ESCALATION_ACK_TIMEOUT_S", "LOG_LEVEL")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ensure_chromium() -> Optional[str]:
    """Install Chromium when it is missing; None when it is there, else why it is not."""
    if os.access(CHROMIUM, os.X_OK):
        return None
    script = ROOT / "scripts" / "ensure-chromium"
    result = subprocess.run(["bash", str(script)], capture_output=True, text=True, timeout=900)
    if os.access(CHROMIUM, os.X_OK):
        return None
    tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
    return f"{script.name} exited {result.returncode}: {' / '.join(tail) or 'no output'}"


def launch_chromium(playwright: Any):
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)


class Line:
    """The three processes on free ports, a temporary SQLite database and a copy of the rota."""

    def __init__(self, tmp: Path, rota: Path = ROOT / "data" / "rota" / "rota.yml") -> None:
        self.tmp = tmp
        self.db_url = f"sqlite:///{tmp / 'line.db'}"
        self.rota_file = tmp / "rota" / "rota.yml"
        self.rota_file.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(rota, self.rota_file)
        rasa_port, actions_port, duty_port = free_port(), free_port(), free_port()
        self.duty_url = f"http://127.0.0.1:{duty_port}"
        self.rasa_url = f"http://127.0.0.1:{rasa_port}"
        base = {k: v for k, v in os.environ.items() if k not in _STRIP}
        base.update(
            DATABASE_URL=self.db_url,
            RASA_PORT=str(rasa_port),
            ACTIONS_PORT=str(actions_port),
            DUTY_PORT=str(duty_port),
            DUTY_PUBLIC_URL=self.duty_url,
            # The page is opened at 127.0.0.1, so the browser reaches Rasa there too
            # (localhost may resolve to ::1, where Rasa may not listen).
            WEBCHAT_SOCKET_URL=self.rasa_url,
            ROTA_FILE=str(self.rota_file),
            # Every page of the session comes from one address (this machine): the new-chat
            # limit per address is for strangers, and has its own tests (tests/webchat).
            WEBCHAT_NEW_SESSION_BURST="1000",
        )
        self.settings = settings_module.load(base)
        self.env = child_env(self.settings, base)
        self.model = model_path()
        self.children = [Child(name, argv) for name, argv in commands(self.settings, self.model).items()]
        self.logs: dict[str, Path] = {c.name: tmp / f"{c.name}.log" for c in self.children}

    def start(self, timeout: float = 300.0) -> None:
        if not self.model.exists():
            raise RuntimeError("no trained model for the current inputs: run `make train`")
        from bot.store import migrate

        migrate.upgrade(self.db_url)
        subprocess.run([sys.executable, "-m", "bot.directory", "import"], cwd=ROOT, env=self.env,
                       check=True, capture_output=True, timeout=300)
        for child in self.children:
            with open(self.logs[child.name], "ab") as log:
                child.start(self.env, log)
        self.wait_ready(timeout)

    def wait_ready(self, timeout: float) -> None:
        """Until the duty service's /health says all three answer and Rasa has its model."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for child in self.children:
                if child.proc is not None and child.proc.poll() is not None:
                    raise RuntimeError(f"{child.name} exited: {self.log_tail(child.name)}")
            try:
                health = requests.get(f"{self.duty_url}/health", timeout=3).json()
                status = requests.get(f"{self.rasa_url}/status", timeout=3)
                if health.get("status") == "ok" and status.ok and status.json().get("model_id"):
                    return
            except (requests.RequestException, ValueError):
                pass
            time.sleep(1)
        raise TimeoutError(f"the line was not ready after {timeout:.0f} s")

    def log_tail(self, name: str, chars: int = 3000) -> str:
        path = self.logs[name]
        return path.read_text(errors="replace")[-chars:] if path.exists() else "(no log)"

    def add_staff(self, username: str, password: str, role: str, display_name: str,
                  house: Optional[str] = None) -> None:
        from bot.duty import staff
        from bot.store import db

        staff.create_staff(db.get_engine(self.db_url), username, password, role, house=house,
                           display_name=display_name)
        if role in MANAGER_ROLES:
            # Managers must sign in with a second factor: as if set up already, with a
            # secret ``sign_in`` computes the codes from.
            from sqlalchemy import update

            from bot.duty import twofactor
            from bot.store.models.duty import Staff

            with db.transaction(self.db_url) as s:
                s.execute(update(Staff).where(Staff.username == username).values(
                    totp_secret=twofactor.seal(TOTP_SECRET, self.settings.staff_2fa_key)))

    def sign_in(self, page: Any, username: str, password: str) -> None:
        """On the sign-in page: the password, then (for a manager) the code step; waits for
        the queue."""
        from sqlalchemy import update

        from bot.duty import twofactor
        from bot.store import db
        from bot.store.models.duty import Staff

        page.fill("#username", username)
        page.fill("#password", password)
        page.click("button[type=submit]")
        page.wait_for_url(lambda url: url.endswith(("/duty", "/login/next")))
        if page.url.endswith("/login/next"):
            with db.transaction(self.db_url) as s:  # a second sign-in within one 30 s step
                s.execute(update(Staff).where(Staff.username == username)
                          .values(totp_last_step=None))
            page.fill("#code", twofactor.code_at(TOTP_SECRET, time.time()))
            page.click("button[type=submit]")
        page.wait_for_url(f"{self.duty_url}/duty")

    def add_comment(self, conversation_id: str, words: str, channel: str = "socketio",
                    audience: Optional[str] = None) -> None:
        """A feedback survey answered to the end, ``words`` its free text (as the channels'
        survey turn stores it), for the console's comments page."""
        from sqlalchemy.orm import Session

        from bot.feedback import questions, store
        from bot.store import db

        q = questions.load()
        with Session(db.get_engine(self.db_url), future=True) as s, s.begin():
            store.offer(conversation_id, channel, "goodbye", q, audience=audience, session=s)
            asked = q.for_audience(audience)[1]
            for text in ["yes"] + ["skip"] * (len(asked) - 1) + [words]:
                store.handle(conversation_id, text, "none", q, session=s)

    def stop(self) -> None:
        for child in reversed(self.children):
            child.stop()
