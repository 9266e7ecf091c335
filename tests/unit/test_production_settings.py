"""Production refuses the public development keys and a missing Rasa token; development warns.

With the development ``PSEUDONYM_KEY`` every stored number decrypts and a pseudonym in a log
line reverses to a mobile number by brute force; without ``RASA_AUTH_TOKEN`` the Rasa API, the
REST channel and the action server are open; with the development ``AUDIT_KEY`` anyone who can
write the database can rebuild the escalation audit trail. Each process the line runs stops at start in
production mode (Twilio configured, or an https public address) and names the setting.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys

import pytest

from bot import settings as settings_module
from bot.settings import ROOT, UnsafeSettings, check, load

GOOD_KEY = "k" * 40
PLAN = {"PLAN_KEY": "p" * 40}
GOOD_TOKEN = "t" * 24
TWILIO = {"TWILIO_ACCOUNT_SID": "AC" + "3" * 32, "TWILIO_AUTH_TOKEN": "secret",
          "TWILIO_NUMBER": "+447700900000"}
# Every setting that could make the environment of the test run production, removed.
_MODE = ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_NUMBER", "PUBLIC_BASE_URL",
         "DUTY_PUBLIC_URL", "PSEUDONYM_KEY", "PLAN_KEY", "RASA_AUTH_TOKEN", "ACTIONS_TOKEN",
         "LINE_SUPERVISED", "AUDIT_KEY", "STAFF_2FA_KEY")
OTHER_KEY = "s" * 40


@pytest.mark.parametrize("mode", [
    TWILIO,
    {"PUBLIC_BASE_URL": "https://line.example.org"},
    {"DUTY_PUBLIC_URL": "https://duty.example.org"},
])
def test_production_refuses_the_development_key_and_no_rasa_token(mode):
    with pytest.raises(UnsafeSettings) as refused:
        check(load(mode), "duty service")
    message = str(refused.value)
    assert "PSEUDONYM_KEY" in message and "RASA_AUTH_TOKEN" in message
    assert "PLAN_KEY is the public development key" in message
    assert "AUDIT_KEY is the public development key" in message


@pytest.mark.parametrize("env, named", [
    ({"PSEUDONYM_KEY": "short-secret", "RASA_AUTH_TOKEN": GOOD_TOKEN}, "PSEUDONYM_KEY"),
    ({"PSEUDONYM_KEY": GOOD_KEY}, "RASA_AUTH_TOKEN"),
    ({"PSEUDONYM_KEY": GOOD_KEY, "RASA_AUTH_TOKEN": "abc"}, "RASA_AUTH_TOKEN"),
    ({"PSEUDONYM_KEY": GOOD_KEY, "RASA_AUTH_TOKEN": GOOD_TOKEN, "ACTIONS_TOKEN": "abc"},
     "ACTIONS_TOKEN"),
    ({"PSEUDONYM_KEY": GOOD_KEY, "RASA_AUTH_TOKEN": GOOD_TOKEN,
      "ACTIONS_TOKEN": settings_module.DEV_ACTIONS_TOKEN}, "ACTIONS_TOKEN"),
    ({"PSEUDONYM_KEY": GOOD_KEY, "RASA_AUTH_TOKEN": GOOD_TOKEN}, "AUDIT_KEY is the public"),
    ({"PSEUDONYM_KEY": GOOD_KEY, "RASA_AUTH_TOKEN": GOOD_TOKEN, "AUDIT_KEY": "short-secret"},
     "AUDIT_KEY is shorter than 32"),
])
def test_each_unsafe_setting_is_named(env, named):
    with pytest.raises(UnsafeSettings, match=named):
        check(load({**TWILIO, **PLAN, **env}), "Rasa server")


@pytest.mark.parametrize("plan_key, says", [
    (None, "PLAN_KEY is the public development key"),
    ("short-plan-secret", "PLAN_KEY is shorter than 32 characters"),
    (GOOD_KEY, "PLAN_KEY is the same as PSEUDONYM_KEY"),
])
def test_production_refuses_a_missing_short_or_shared_plan_key(plan_key, says):
    env = {**TWILIO, "PSEUDONYM_KEY": GOOD_KEY, "RASA_AUTH_TOKEN": GOOD_TOKEN}
    if plan_key is not None:
        env["PLAN_KEY"] = plan_key
    with pytest.raises(UnsafeSettings) as refused:
        check(load(env), "Rasa server")
    assert says in str(refused.value) and "refusing to start" in str(refused.value)


def test_production_with_its_own_secrets_starts():
    check(load({**TWILIO, **PLAN, "PSEUDONYM_KEY": GOOD_KEY, "RASA_AUTH_TOKEN": GOOD_TOKEN,
                "AUDIT_KEY": "a" * 40, "STAFF_2FA_KEY": OTHER_KEY}), "x")


def test_development_uses_the_development_plan_key_with_a_warning(caplog, monkeypatch):
    monkeypatch.setattr(settings_module, "_warned", [])
    caplog.set_level(logging.WARNING, logger="bot.settings")
    s = load({"PSEUDONYM_KEY": GOOD_KEY, "RASA_AUTH_TOKEN": GOOD_TOKEN})
    check(s, "Rasa server")
    assert s.plan_key == settings_module.DEV_PLAN_KEY
    [warning] = [r.getMessage() for r in caplog.records]
    assert "development mode" in warning and "PLAN_KEY is the public development key" in warning


def test_staff_2fa_is_managers_or_all():
    assert load({}).staff_2fa == "managers"
    assert load({"STAFF_2FA": "ALL"}).staff_2fa == "all"
    with pytest.raises(ValueError, match="STAFF_2FA must be managers or all"):
        load({"STAFF_2FA": "off"})


def test_development_warns_once_and_carries_on(caplog, monkeypatch):
    monkeypatch.setattr(settings_module, "_warned", [])
    caplog.set_level(logging.WARNING, logger="bot.settings")
    check(load({}), "Rasa server")
    check(load({}), "Rasa server")
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1
    assert "PSEUDONYM_KEY" in warnings[0] and "RASA_AUTH_TOKEN" in warnings[0]
    assert "AUDIT_KEY" in warnings[0]


def _production_env(tmp_path) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in _MODE}
    env.update(TWILIO, PYTHONPATH=str(ROOT), DATABASE_URL=f"sqlite:///{tmp_path / 'line.db'}",
               RASA_AUTH_TOKEN=GOOD_TOKEN, DUTY_PORT="1", ACTIONS_PORT="1")
    return env


@pytest.mark.parametrize("module", ["bot.run", "bot.duty", "bot.action_server"])
def test_each_process_refuses_to_start_naming_the_setting(tmp_path, module):
    # Were the check missing, the process would start serving (port 1: root may bind it),
    # or fail later for another reason; neither names the setting.
    done = subprocess.run([sys.executable, "-m", module], cwd=ROOT, env=_production_env(tmp_path),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert "PSEUDONYM_KEY" in done.stderr and "refusing to start" in done.stderr
    assert "PLAN_KEY" in done.stderr
    assert "Traceback" not in done.stderr


def test_the_rasa_server_refuses_as_it_loads_the_channels(monkeypatch):
    from bot.channels.rest import RestInput
    from bot.channels.sms import SmsInput

    for name in _MODE:
        monkeypatch.delenv(name, raising=False)
    for name, value in {**TWILIO, "RASA_AUTH_TOKEN": GOOD_TOKEN}.items():
        monkeypatch.setenv(name, value)
    settings_module.reset()
    try:
        for channel in (RestInput, SmsInput):
            with pytest.raises(SystemExit, match="PSEUDONYM_KEY"):
                channel.from_credentials({})
    finally:
        settings_module.reset()
