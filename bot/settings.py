"""Every environment variable the line reads, in one place.

Nothing else in the project calls ``os.environ`` for configuration: read a value from
``settings()`` so that tests can override it and the README can list all of them.
``Settings`` is a pydantic model: one line per setting names its attribute, its variable and
its default; the model types each value and keeps it read-only.
All values are optional in development; production sets at least ``DATABASE_URL``,
``RASA_AUTH_TOKEN``, ``DUTY_API_TOKEN``, ``PUBLIC_BASE_URL``, ``PSEUDONYM_KEY``, ``PLAN_KEY``,
``AUDIT_KEY``, ``STAFF_2FA_KEY`` and the Twilio ones.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

from pydantic import BaseModel, Extra, Field, ValidationError, root_validator

ROOT = Path(__file__).resolve().parent.parent
VAR_DIR = ROOT / "var"
DEFAULT_SQLITE_PATH = VAR_DIR / "line.db"

logger = logging.getLogger(__name__)

# Public defaults, for development only: production refuses to start with them (``check``).
DEV_PSEUDONYM_KEY = "development-only-pseudonym-key"
DEV_ACTIONS_TOKEN = "development-only-actions-token"
DEV_PLAN_KEY = "development-only-crisis-plan-key"
DEV_AUDIT_KEY = "development-only-audit-key"
DEV_STAFF_2FA_KEY = "development-only-staff-2fa-key"
# A pseudonym is an HMAC of a phone number: with a guessable key every one reverses by brute
# force over UK mobile numbers (10^9, about an hour of one core), and every stored number
# decrypts. 32 characters of a random key is far beyond that; a token is a password.
MIN_KEY_CHARS = 32
MIN_TOKEN_CHARS = 16


def setting(env: Optional[str], default: Any = None, *, fallback: Optional[str] = None,
            at_least: Optional[int] = None, then: Optional[Callable[[Any, dict], Any]] = None) -> Any:
    """One setting, read from the environment variable ``env``.

    Unset or blank, it is ``default`` (text may name settings declared above it:
    ``"http://localhost:{rasa_port}"``), or first the value of the setting ``fallback``.
    A whole number below ``at_least`` is raised to it; ``then(value, settings_so_far)``
    finishes the value (checks, normalising) and may raise ``ValueError`` naming ``env``.
    """
    return Field(None, env=env, default_value=default, fallback=fallback, at_least=at_least,
                 then=then)


def _on_off(value: str, values: dict) -> str:
    """``RASA_PATCHES``: on (also 1, true, yes) or off (also 0, false, no)."""
    word = value.strip().lower()
    if word in ("on", "1", "true", "yes"):
        return "on"
    if word in ("off", "0", "false", "no"):
        return "off"
    raise ValueError(f"RASA_PATCHES must be on or off, got {value!r}")


def _sms_sender(value: str, values: dict) -> str:
    """``SMS_SENDER``: auto (default) is the duty service on PostgreSQL, where a NOTIFY wakes
    it, and the Rasa server elsewhere (SQLite has no NOTIFY: the duty service would poll)."""
    choice = value.strip().lower()
    if choice == "auto":
        return "duty" if values["database_url"].startswith("postgresql") else "server"
    if choice not in ("duty", "server"):
        raise ValueError(f"SMS_SENDER must be auto, duty or server, got {value!r}")
    return choice


def _two_factor(value: str, values: dict) -> str:
    """``STAFF_2FA``: managers (default: duty managers and admins must use a second factor,
    others may) or all (every console account must)."""
    choice = value.strip().lower()
    if choice not in ("managers", "all"):
        raise ValueError(f"STAFF_2FA must be managers or all, got {value!r}")
    return choice


def _no_slash(value: str, values: dict) -> str:
    return value.rstrip("/")


def _origin(url: str) -> str:
    """``scheme://host[:port]`` of a URL: what a browser sends as ``Origin``."""
    scheme, _, rest = url.partition("://")
    return f"{scheme.lower()}://{rest.split('/', 1)[0].lower()}"


def _origins(raw: Optional[str], values: dict) -> tuple:
    # Comma-separated; order kept, duplicates dropped (the default lists the public URL and
    # the two loopback spellings, which are often the same).
    if raw:
        found = [_origin(v.strip()) for v in raw.split(",") if v.strip()]
    else:
        port = values["duty_port"]
        found = [_origin(values["duty_public_url"]), f"http://localhost:{port}",
                 f"http://127.0.0.1:{port}"]
    return tuple(dict.fromkeys(found))


def _networks(raw: Optional[str], values: dict) -> tuple:
    """Comma-separated addresses or networks (``127.0.0.1``, ``10.0.0.0/8``), checked here so
    that a typo stops the service at start-up rather than silently trusting nobody."""
    import ipaddress

    found = [v.strip() for v in (raw or "").split(",") if v.strip()]
    try:
        return tuple(str(ipaddress.ip_network(v, strict=False)) for v in found)
    except ValueError as exc:
        raise ValueError(
            f"TRUSTED_PROXIES must be IP addresses or networks, comma-separated ({exc})"
        ) from exc


# A flag is on when its variable is one of these (any case); anything else is off.
ON = ("1", "true", "yes", "on")


class Settings(BaseModel):
    """Every setting: its attribute, the environment variable it is read from, its default.

    Adding a setting is one line here (and one in the README's table and ``.env.example``).
    Settings are read in the order written, so a default may use the settings above it.
    """

    class Config:
        frozen = True  # read once, never changed; hashable
        extra = Extra.forbid

    database_url: str = setting("DATABASE_URL", f"sqlite:///{DEFAULT_SQLITE_PATH}")
    redis_url: Optional[str] = setting("REDIS_URL")
    rasa_port: int = setting("RASA_PORT", 5005)
    actions_port: int = setting("ACTIONS_PORT", 5055)
    duty_port: int = setting("DUTY_PORT", 8080)
    rasa_auth_token: Optional[str] = setting("RASA_AUTH_TOKEN")
    duty_api_token: Optional[str] = setting("DUTY_API_TOKEN")
    public_base_url: str = setting("PUBLIC_BASE_URL", "http://localhost:{rasa_port}", then=_no_slash)
    twilio_account_sid: Optional[str] = setting("TWILIO_ACCOUNT_SID")
    twilio_auth_token: Optional[str] = setting("TWILIO_AUTH_TOKEN")
    twilio_number: Optional[str] = setting("TWILIO_NUMBER")
    twilio_api_url: str = setting("TWILIO_API_URL", "https://api.twilio.com", then=_no_slash)
    tz_line: str = setting("TZ_LINE", "Europe/London")
    # Key for pseudonymous identifiers (keyed hash of a phone number). The development
    # default is public; production must set its own secret.
    pseudonym_key: str = setting("PSEUDONYM_KEY", DEV_PSEUDONYM_KEY)
    # Key of the people's own crisis plans, encrypted at rest (bot/plan/crypto.py): kept out
    # of the database like PSEUDONYM_KEY, and a different secret from it.
    plan_key: str = setting("PLAN_KEY", DEV_PLAN_KEY)
    # Key of the escalation audit trail's HMAC chain and of its signed checkpoints and exports
    # (docs/audit.md). Kept out of the database: whoever can write the database but lacks the
    # key cannot rewrite the trail unnoticed. Public in development; production sets its own.
    audit_key: str = setting("AUDIT_KEY", DEV_AUDIT_KEY)
    holiday_nation: str = setting("HOLIDAY_NATION", "ENG")
    # 0 or unset: the ladder's own timings.
    escalation_ack_timeout_s: Optional[int] = setting("ESCALATION_ACK_TIMEOUT_S", 0,
                                                      then=lambda v, _: v or None)
    rasa_url: str = setting("RASA_URL", "http://localhost:{rasa_port}", then=_no_slash)
    actions_url: str = setting("ACTIONS_URL", "http://localhost:{actions_port}", then=_no_slash)
    # Loopback by default: the duty service sits behind a TLS proxy; a deployment sets
    # DUTY_HOST=0.0.0.0 only where that proxy runs on another host.
    duty_host: str = setting("DUTY_HOST", "127.0.0.1")
    # Development only: accept SMS webhooks without a Twilio signature when no auth token is
    # set. Only honoured while TWILIO_AUTH_TOKEN is unset, so a production line with a token
    # can never be opened up by a stray development flag.
    sms_allow_unsigned: bool = setting("SMS_ALLOW_UNSIGNED", False)
    # Seconds an SMS turn may take before the person gets the fail-safe reply.
    sms_turn_timeout_s: int = setting("SMS_TURN_TIMEOUT_S", 8)
    # Bot turns the Rasa server runs at once; the rest queue, risk first (bot/channels/gate.py).
    turn_slots: int = setting("TURN_SLOTS", 3, at_least=1)
    # The Rasa server parses in an NLU process of its own, the NLU thread its fallback
    # (bot/rasa_runtime/nluproc.py). Off by default; bot.run (make run) turns it on for the server.
    nlu_process: bool = setting("LINE_NLU_PROCESS", False)
    # "on": python -m bot.rasa_server installs the speed-ups of bot/rasa_runtime (on the Rasa
    # version they were tested against); "off": Rasa runs as shipped, but for the conversation
    # memory of risk, which is safety behaviour and always installed.
    rasa_patches: str = setting("RASA_PATCHES", "on", then=_on_off)
    # Days a finished SMS inbox/outbox row is kept before the purge deletes it.
    sms_retention_days: int = setting("SMS_RETENTION_DAYS", 30, at_least=1)
    # Which process posts the SMS replies the Rasa server writes: "duty" (the duty service,
    # woken by PostgreSQL's NOTIFY) or "server" (the Rasa server itself). Either one takes
    # the other's parts once they are 3 s late (docs/sms.md, "Two senders").
    sms_sender: str = setting("SMS_SENDER", "auto", then=_sms_sender)
    # The address staff and carers use for the duty service (console links, cookie security,
    # the web chat's allowed origin). https:// here makes session cookies Secure.
    duty_public_url: str = setting("DUTY_PUBLIC_URL", "http://localhost:{duty_port}", then=_no_slash)
    # Where the web chat page's browser connects to the Rasa server's socket.io channel. The
    # browser, not the duty service, opens this socket: it must be an address the carer's
    # browser can reach (behind the same proxy as the page in production).
    webchat_socket_url: str = setting("WEBCHAT_SOCKET_URL", "http://localhost:{rasa_port}",
                                      then=_no_slash)
    # Origins the Rasa socket.io channel accepts (CORS and the socket.io Origin check).
    webchat_allowed_origins: Tuple[str, ...] = setting("WEBCHAT_ALLOWED_ORIGINS", then=_origins)
    # True when WEBCHAT_ALLOWED_ORIGINS is set: then only those origins, no loopback pages.
    webchat_origins_configured: bool = setting(None, False)
    # New web chat conversations one client address may open at once, then per minute.
    webchat_new_session_burst: int = setting("WEBCHAT_NEW_SESSION_BURST", 5, at_least=1)
    webchat_new_sessions_per_min: int = setting("WEBCHAT_NEW_SESSIONS_PER_MIN", 1, at_least=1)
    # Absolute lifetime of a staff console session.
    duty_session_hours: int = setting("DUTY_SESSION_HOURS", 8)
    # Who must sign in to the console with a second factor (TOTP, bot/duty/twofactor.py):
    # "managers" (duty managers and admins; others may choose to) or "all".
    staff_2fa: str = setting("STAFF_2FA", "managers", then=_two_factor)
    # Key the console's TOTP secrets are encrypted with, kept out of the database (a copy of
    # the database then cannot mint codes). Public in development; production sets its own.
    staff_2fa_key: str = setting("STAFF_2FA_KEY", DEV_STAFF_2FA_KEY)
    # On: /report shows the latest full month's report to anyone, without signing in, so
    # user groups see what commissioners see (issue 26). Off by default.
    report_public: bool = setting("REPORT_PUBLIC", False)
    # Proxies (addresses or networks) whose X-Forwarded-For names the client, for the console's
    # sign-in limit (bot/duty/ratelimit.py). Empty: the header is ignored.
    trusted_proxies: Tuple[str, ...] = setting("TRUSTED_PROXIES", then=_networks)
    # The rota (tiers, ladders, staff numbers, sanctuary houses) the dispatcher reads.
    rota_file: str = setting("ROTA_FILE", str(ROOT / "data" / "rota" / "rota.yml"))
    # The feedback questions (docs/feedback.md); a file that does not validate, or "off",
    # and the line runs without a survey.
    feedback_file: str = setting("FEEDBACK_FILE", str(ROOT / "data" / "feedback" / "questions.yml"))
    # Minutes without a message from the person after which a conversation that ended
    # without a goodbye is offered the survey (the duty service's quiet-period watcher).
    feedback_quiet_minutes: int = setting("FEEDBACK_QUIET_MINUTES", 30, at_least=1)
    # Fair use (bot/channels/contact_turn.py): after this many contacts (a message after 30
    # minutes of quiet) within FAIR_USE_WINDOW_HOURS, one gentle note, never on risk; 0: off.
    fair_use_contacts: int = setting("FAIR_USE_CONTACTS", 10, at_least=0)
    fair_use_window_hours: int = setting("FAIR_USE_WINDOW_HOURS", 24, at_least=1)
    # Seconds between the updates a person waiting for a human is sent (an estimate or "I don't
    # know yet", the numbers, CALM); 0 turns them off (bot/escalation/wait_watch.py).
    wait_update_seconds: int = setting("WAIT_UPDATE_SECONDS", 180, at_least=0)
    # Bearer token of the Rasa server's staff-relay endpoint (bot/channels/relay.py); unset,
    # RASA_AUTH_TOKEN is used, and with neither the endpoint refuses every request.
    relay_token: Optional[str] = setting("RELAY_TOKEN", fallback="rasa_auth_token")
    # Addresses the Rasa server and the action server listen on: loopback unless a deployment
    # puts them on other hosts (then behind a firewall, and the action server's token).
    rasa_host: str = setting("RASA_HOST", "127.0.0.1")
    actions_host: str = setting("ACTIONS_HOST", "127.0.0.1")
    # Bearer token the Rasa server sends with every action call and the action server
    # requires (bot/action_server.py); default RASA_AUTH_TOKEN, and in development with
    # neither set, a public development token (production refuses to run without
    # RASA_AUTH_TOKEN, so never there).
    actions_token: str = setting("ACTIONS_TOKEN", DEV_ACTIONS_TOKEN, fallback="rasa_auth_token")
    # Request bodies the Rasa server accepts at most (sanic's REQUEST_MAX_SIZE; its default,
    # 100 MB, let one unsigned upload hold the server for seconds). The SMS webhook has its own,
    # smaller cap (bot/channels/sms.py).
    rasa_max_body_bytes: int = setting("RASA_MAX_BODY_BYTES", 1_000_000, at_least=65_536)
    # Set by bot.run for the processes it starts: it has already said what production would
    # refuse, so they do not say it again.
    supervised: bool = setting("LINE_SUPERVISED", False)

    @root_validator(pre=True)
    def _read(cls, given: Dict[str, Any]) -> Dict[str, Any]:
        """Each setting in order: given (blank is unset), else its fallback, else its default;
        a number parsed, a flag read, ``then`` applied. Every problem is reported at once."""
        values: Dict[str, Any] = {}
        problems: List[str] = []
        for name, f in cls.__fields__.items():
            spec = f.field_info.extra
            value = given.get(name)
            if isinstance(value, str):
                value = value.strip() or None
            if value is None and spec["fallback"]:
                value = values.get(spec["fallback"])
            if value is None:
                value = spec["default_value"]
                if isinstance(value, str) and "{" in value:
                    value = value.format(**values)
            try:
                if isinstance(value, str) and f.type_ is int:
                    try:
                        value = int(value)
                    except ValueError:
                        raise ValueError(f"{spec['env']} must be a whole number, got {value!r}") from None
                elif isinstance(value, str) and f.type_ is bool:
                    value = value.lower() in ON
                if spec["at_least"] is not None:
                    value = max(spec["at_least"], value)
                if spec["then"] is not None:
                    value = spec["then"](value, values)
            except ValueError as exc:
                problems.append(str(exc))
                value = None
            values[name] = value
        if problems:
            raise ValueError("; ".join(problems))
        values["webchat_origins_configured"] = bool((given.get("webchat_allowed_origins") or "").strip())
        return values

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
    """Read the settings from ``env`` (default: the process environment).

    Raises ``ValueError`` naming every variable that cannot be read (``RASA_PORT must be a
    whole number, got 'abc'``)."""
    env = os.environ if env is None else env
    variables = {name: f.field_info.extra["env"] for name, f in Settings.__fields__.items()}
    given = {name: env[var] for name, var in variables.items() if var is not None and var in env}
    try:
        return Settings(**given)
    except ValidationError as exc:
        # pydantic's own wording ("1 validation error for Settings / __root__") says less
        # than our sentences, which name the variable: keep only those.
        raise ValueError("; ".join(e["msg"] for e in exc.errors())) from None


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
    if s.plan_key == DEV_PLAN_KEY:
        problems.append("PLAN_KEY is the public development key: set a random secret of "
                        f"at least {MIN_KEY_CHARS} characters (it encrypts people's crisis plans)")
    elif len(s.plan_key) < MIN_KEY_CHARS:
        problems.append(f"PLAN_KEY is shorter than {MIN_KEY_CHARS} characters")
    elif s.plan_key == s.pseudonym_key:
        problems.append("PLAN_KEY is the same as PSEUDONYM_KEY: give the plans a key of their own")
    if s.audit_key == DEV_AUDIT_KEY:
        problems.append("AUDIT_KEY is the public development key: anyone could rewrite the "
                        f"escalation audit trail; set a random secret of at least {MIN_KEY_CHARS} "
                        "characters")
    elif len(s.audit_key) < MIN_KEY_CHARS:
        problems.append(f"AUDIT_KEY is shorter than {MIN_KEY_CHARS} characters")
    if s.staff_2fa_key == DEV_STAFF_2FA_KEY:
        problems.append("STAFF_2FA_KEY is the public development key: anyone with a copy of the "
                        "database could make the console's second-factor codes; set a random "
                        f"secret of at least {MIN_KEY_CHARS} characters")
    elif len(s.staff_2fa_key) < MIN_KEY_CHARS:
        problems.append(f"STAFF_2FA_KEY is shorter than {MIN_KEY_CHARS} characters")
    elif s.staff_2fa_key == s.pseudonym_key:
        problems.append("STAFF_2FA_KEY is the same as PSEUDONYM_KEY: give it a key of its own")
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
