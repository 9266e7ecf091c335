"""Every environment variable the line reads, in one place.

Nothing else in the project calls ``os.environ`` for configuration: read a value from
``settings()`` so that tests can override it and the README can list all of them.
All values are optional in development; production sets at least ``DATABASE_URL``,
``RASA_AUTH_TOKEN``, ``DUTY_API_TOKEN``, ``PUBLIC_BASE_URL``, ``PSEUDONYM_KEY`` and the Twilio ones.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Optional

ROOT = Path(__file__).resolve().parent.parent
VAR_DIR = ROOT / "var"
DEFAULT_SQLITE_PATH = VAR_DIR / "line.db"

logger = logging.getLogger(__name__)

# Public defaults, for development only: production refuses to start with them (``check``).
DEV_PSEUDONYM_KEY = "development-only-pseudonym-key"
DEV_ACTIONS_TOKEN = "development-only-actions-token"
# A pseudonym is an HMAC of a phone number: with a guessable key every one reverses by brute
# force over UK mobile numbers (10^9, about an hour of one core), and every stored number
# decrypts. 32 characters of a random key is far beyond that; a token is a password.
MIN_KEY_CHARS = 32
MIN_TOKEN_CHARS = 16


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ValueError(f"{name} must be a whole number, got {raw!r}") from exc


def _on_off(value: Optional[str], name: str) -> str:
    word = (value or "on").strip().lower()
    if word in ("on", "1", "true", "yes"):
        return "on"
    if word in ("off", "0", "false", "no"):
        return "off"
    raise ValueError(f"{name} must be on or off, got {value!r}")


def _sms_sender(value: Optional[str], database_url: str) -> str:
    """``SMS_SENDER``: auto (default) is the duty service on PostgreSQL, where a NOTIFY wakes
    it, and the Rasa server elsewhere (SQLite has no NOTIFY: the duty service would poll)."""
    choice = (value or "auto").strip().lower()
    if choice == "auto":
        return "duty" if database_url.startswith("postgresql") else "server"
    if choice not in ("duty", "server"):
        raise ValueError(f"SMS_SENDER must be auto, duty or server, got {value!r}")
    return choice


def _opt(env: Mapping[str, str], name: str) -> Optional[str]:
    raw = env.get(name, "").strip()
    return raw or None


def _origin(url: str) -> str:
    """``scheme://host[:port]`` of a URL: what a browser sends as ``Origin``."""
    scheme, _, rest = url.partition("://")
    return f"{scheme.lower()}://{rest.split('/', 1)[0].lower()}"


def _origins(raw: Optional[str], default: tuple) -> tuple:
    # Comma-separated; order kept, duplicates dropped (the default lists the public URL and
    # the two loopback spellings, which are often the same).
    values = [_origin(v.strip()) for v in raw.split(",") if v.strip()] if raw else list(default)
    return tuple(dict.fromkeys(values))


def _networks(env: Mapping[str, str], name: str) -> tuple:
    """Comma-separated addresses or networks (``127.0.0.1``, ``10.0.0.0/8``), checked here so
    that a typo stops the service at start-up rather than silently trusting nobody."""
    import ipaddress

    values = [v.strip() for v in env.get(name, "").split(",") if v.strip()]
    try:
        return tuple(str(ipaddress.ip_network(v, strict=False)) for v in values)
    except ValueError as exc:
        raise ValueError(f"{name} must be IP addresses or networks, comma-separated ({exc})") from exc


@dataclass(frozen=True)
class Settings:
    database_url: str
    redis_url: Optional[str]
    rasa_port: int
    actions_port: int
    duty_port: int
    rasa_auth_token: Optional[str]
    duty_api_token: Optional[str]
    public_base_url: str
    twilio_account_sid: Optional[str]
    twilio_auth_token: Optional[str]
    twilio_number: Optional[str]
    twilio_api_url: str
    tz_line: str
    pseudonym_key: str
    holiday_nation: str
    escalation_ack_timeout_s: Optional[int]
    rasa_url: str = field(default="")
    actions_url: str = field(default="")
    duty_host: str = field(default="127.0.0.1")
    # Development only: accept SMS webhooks without a Twilio signature when no auth token is set.
    sms_allow_unsigned: bool = field(default=False)
    # Seconds an SMS turn may take before the person gets the fail-safe reply.
    sms_turn_timeout_s: int = field(default=8)
    # Bot turns the Rasa server runs at once; the rest queue, risk first (bot/channels/gate.py).
    turn_slots: int = field(default=3)
    # The Rasa server parses in an NLU process of its own, the NLU thread its fallback
    # (bot/rasa_runtime/nluproc.py). Off by default; bot.run (make run) turns it on for the server.
    nlu_process: bool = field(default=False)
    # "on": python -m bot.rasa_server installs the speed-ups of bot/rasa_runtime (on the Rasa
    # version they were tested against); "off": Rasa runs as shipped, but for the conversation
    # memory of risk, which is safety behaviour and always installed.
    rasa_patches: str = field(default="on")
    # Days a finished SMS inbox/outbox row is kept before the purge deletes it.
    sms_retention_days: int = field(default=30)
    # Which process posts the SMS replies the Rasa server writes: "duty" (the duty service,
    # woken by PostgreSQL's NOTIFY) or "server" (the Rasa server itself). Either one takes
    # the other's parts once they are 3 s late (docs/sms.md, "Two senders").
    sms_sender: str = field(default="server")
    # The address staff and carers use for the duty service (console links, cookie security,
    # the web chat's allowed origin). https:// here makes session cookies Secure.
    duty_public_url: str = field(default="http://localhost:8080")
    # Where the web chat page's browser connects to the Rasa server's socket.io channel.
    webchat_socket_url: str = field(default="http://localhost:5005")
    # Origins the Rasa socket.io channel accepts (CORS and the socket.io Origin check).
    webchat_allowed_origins: tuple = field(default=())
    # True when WEBCHAT_ALLOWED_ORIGINS is set: then only those origins, no loopback pages.
    webchat_origins_configured: bool = field(default=False)
    # New web chat conversations one client address may open at once, then per minute.
    webchat_new_session_burst: int = field(default=5)
    webchat_new_sessions_per_min: int = field(default=1)
    # Absolute lifetime of a staff console session.
    duty_session_hours: int = field(default=8)
    # Proxies (addresses or networks) whose X-Forwarded-For names the client, for the console's
    # sign-in limit (bot/duty/ratelimit.py). Empty: the header is ignored.
    trusted_proxies: tuple = field(default=())
    # The rota (tiers, ladders, staff numbers, sanctuary houses) the dispatcher reads.
    rota_file: str = field(default="")
    # Bearer token of the Rasa server's staff-relay endpoint (bot/channels/relay.py); unset,
    # RASA_AUTH_TOKEN is used, and with neither the endpoint refuses every request.
    relay_token: Optional[str] = field(default=None)
    # Addresses the Rasa server and the action server listen on: loopback unless a deployment
    # puts them on other hosts (then behind a firewall, and the action server's token).
    rasa_host: str = field(default="127.0.0.1")
    actions_host: str = field(default="127.0.0.1")
    # Bearer token the Rasa server sends with every action call and the action server
    # requires (bot/action_server.py); default RASA_AUTH_TOKEN, and in development with
    # neither set, a public development token (production refuses to run without
    # RASA_AUTH_TOKEN, so never there).
    actions_token: str = field(default=DEV_ACTIONS_TOKEN)
    # Request bodies the Rasa server accepts at most (sanic's REQUEST_MAX_SIZE; its default,
    # 100 MB, let one unsigned upload hold the server for seconds). The SMS webhook has its own,
    # smaller cap (bot/channels/sms.py).
    rasa_max_body_bytes: int = field(default=1_000_000)
    # Set by bot.run for the processes it starts: it has already said what production would
    # refuse, so they do not say it again.
    supervised: bool = field(default=False)

    @property
    def production(self) -> bool:
        """Production mode: Twilio configured, or an https address people reach the line at."""
        return (self.twilio_configured or self.public_base_url.startswith("https://")
                or self.duty_public_url.startswith("https://"))

    @property
    def twilio_configured(self) -> bool:
        """Outbound SMS are really sent only when a Twilio account is configured."""
        return bool(self.twilio_account_sid and self.twilio_auth_token and self.twilio_number)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


def load(env: Optional[Mapping[str, str]] = None) -> Settings:
    """Read the settings from ``env`` (default: the process environment)."""
    env = os.environ if env is None else env
    rasa_port = _int(env, "RASA_PORT", 5005)
    actions_port = _int(env, "ACTIONS_PORT", 5055)
    duty_port = _int(env, "DUTY_PORT", 8080)
    duty_public_url = (_opt(env, "DUTY_PUBLIC_URL") or f"http://localhost:{duty_port}").rstrip("/")
    database_url = _opt(env, "DATABASE_URL") or f"sqlite:///{DEFAULT_SQLITE_PATH}"
    return Settings(
        database_url=database_url,
        redis_url=_opt(env, "REDIS_URL"),
        rasa_port=rasa_port,
        actions_port=actions_port,
        duty_port=duty_port,
        rasa_auth_token=_opt(env, "RASA_AUTH_TOKEN"),
        duty_api_token=_opt(env, "DUTY_API_TOKEN"),
        public_base_url=(_opt(env, "PUBLIC_BASE_URL") or f"http://localhost:{rasa_port}").rstrip("/"),
        twilio_account_sid=_opt(env, "TWILIO_ACCOUNT_SID"),
        twilio_auth_token=_opt(env, "TWILIO_AUTH_TOKEN"),
        twilio_number=_opt(env, "TWILIO_NUMBER"),
        twilio_api_url=(_opt(env, "TWILIO_API_URL") or "https://api.twilio.com").rstrip("/"),
        tz_line=_opt(env, "TZ_LINE") or "Europe/London",
        # Key for pseudonymous identifiers (keyed hash of a phone number). The development
        # default is public; production must set its own secret.
        pseudonym_key=_opt(env, "PSEUDONYM_KEY") or DEV_PSEUDONYM_KEY,
        holiday_nation=_opt(env, "HOLIDAY_NATION") or "ENG",
        escalation_ack_timeout_s=(
            _int(env, "ESCALATION_ACK_TIMEOUT_S", 0) or None
        ),
        rasa_url=(_opt(env, "RASA_URL") or f"http://localhost:{rasa_port}").rstrip("/"),
        actions_url=(_opt(env, "ACTIONS_URL") or f"http://localhost:{actions_port}").rstrip("/"),
        # Only honoured while TWILIO_AUTH_TOKEN is unset, so a production line with a token
        # can never be opened up by a stray development flag.
        sms_allow_unsigned=(_opt(env, "SMS_ALLOW_UNSIGNED") or "0") in ("1", "true", "yes"),
        sms_turn_timeout_s=_int(env, "SMS_TURN_TIMEOUT_S", 8),
        sms_retention_days=max(1, _int(env, "SMS_RETENTION_DAYS", 30)),
        sms_sender=_sms_sender(_opt(env, "SMS_SENDER"), database_url),
        turn_slots=max(1, _int(env, "TURN_SLOTS", 3)),
        nlu_process=(_opt(env, "LINE_NLU_PROCESS") or "0").lower() in ("1", "true", "yes", "on"),
        rasa_patches=_on_off(_opt(env, "RASA_PATCHES"), "RASA_PATCHES"),
        # Loopback by default: the duty service sits behind a TLS proxy; a deployment sets
        # DUTY_HOST=0.0.0.0 only where that proxy runs on another host.
        duty_host=_opt(env, "DUTY_HOST") or "127.0.0.1",
        duty_public_url=duty_public_url,
        # The browser, not the duty service, opens this socket: it must be an address the
        # carer's browser can reach (behind the same proxy as the page in production).
        webchat_socket_url=(
            _opt(env, "WEBCHAT_SOCKET_URL") or f"http://localhost:{rasa_port}"
        ).rstrip("/"),
        webchat_allowed_origins=_origins(
            _opt(env, "WEBCHAT_ALLOWED_ORIGINS"),
            default=(
                _origin(duty_public_url),
                f"http://localhost:{duty_port}",
                f"http://127.0.0.1:{duty_port}",
            ),
        ),
        webchat_origins_configured=bool(_opt(env, "WEBCHAT_ALLOWED_ORIGINS")),
        webchat_new_session_burst=max(1, _int(env, "WEBCHAT_NEW_SESSION_BURST", 5)),
        webchat_new_sessions_per_min=max(1, _int(env, "WEBCHAT_NEW_SESSIONS_PER_MIN", 1)),
        duty_session_hours=_int(env, "DUTY_SESSION_HOURS", 8),
        trusted_proxies=_networks(env, "TRUSTED_PROXIES"),
        rota_file=_opt(env, "ROTA_FILE") or str(ROOT / "data" / "rota" / "rota.yml"),
        relay_token=_opt(env, "RELAY_TOKEN") or _opt(env, "RASA_AUTH_TOKEN"),
        rasa_host=_opt(env, "RASA_HOST") or "127.0.0.1",
        actions_host=_opt(env, "ACTIONS_HOST") or "127.0.0.1",
        actions_token=(_opt(env, "ACTIONS_TOKEN") or _opt(env, "RASA_AUTH_TOKEN")
                       or DEV_ACTIONS_TOKEN),
        rasa_max_body_bytes=max(65_536, _int(env, "RASA_MAX_BODY_BYTES", 1_000_000)),
        supervised=(_opt(env, "LINE_SUPERVISED") or "0") == "1",
    )


class UnsafeSettings(SystemExit):
    """Production mode with a setting that would put people at risk. A ``SystemExit``: the
    process stops with this message, never a traceback."""


def unsafe(s: Settings) -> list[str]:
    """What production refuses in ``s``, one sentence per setting, each naming it."""
    problems = []
    if s.pseudonym_key == DEV_PSEUDONYM_KEY:
        problems.append("PSEUDONYM_KEY is the public development key: set a random secret of "
                        f"at least {MIN_KEY_CHARS} characters")
    elif len(s.pseudonym_key) < MIN_KEY_CHARS:
        problems.append(f"PSEUDONYM_KEY is shorter than {MIN_KEY_CHARS} characters")
    if not s.rasa_auth_token:
        problems.append("RASA_AUTH_TOKEN is not set: the Rasa HTTP API, the REST channel and "
                        "the action server would be open to anyone who can reach them")
    elif len(s.rasa_auth_token) < MIN_TOKEN_CHARS:
        problems.append(f"RASA_AUTH_TOKEN is shorter than {MIN_TOKEN_CHARS} characters")
    if s.actions_token == DEV_ACTIONS_TOKEN:
        # Without RASA_AUTH_TOKEN this is the default, and refused above; with it, set so.
        if s.rasa_auth_token:
            problems.append("ACTIONS_TOKEN is the public development token")
    elif s.actions_token != s.rasa_auth_token and len(s.actions_token) < MIN_TOKEN_CHARS:
        problems.append(f"ACTIONS_TOKEN is shorter than {MIN_TOKEN_CHARS} characters")
    return problems


def check(s: Settings, process: str) -> None:
    """Called as each process starts. Production: stop, naming every unsafe setting.
    Development: say once what production would refuse, and carry on."""
    problems = unsafe(s)
    if not problems:
        return
    if s.production:
        raise UnsafeSettings(
            f"{process}: refusing to start in production mode (Twilio configured or an https "
            "PUBLIC_BASE_URL / DUTY_PUBLIC_URL):\n  - " + "\n  - ".join(problems)
        )
    if not s.supervised and not _warned:
        _warned.append(process)
        logger.warning("%s: development mode; production would refuse to start: %s",
                       process, "; ".join(problems))


_warned: list = []  # once per process (the Rasa server loads several of our channels)


_current: Optional[Settings] = None


def settings() -> Settings:
    """The process-wide settings, read once on first use."""
    global _current
    if _current is None:
        _current = load()
    return _current


def reset() -> None:
    """Forget the cached settings (tests change the environment and call this)."""
    global _current
    _current = None
