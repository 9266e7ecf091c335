"""Settings: one pydantic model, every variable named in what it says, read-only once read."""

from __future__ import annotations

import pytest

from bot.settings import ROOT, Settings, load

# Set by bot.run for the processes it starts, never by a person.
INTERNAL = {"LINE_SUPERVISED"}


def test_every_bad_value_is_named_at_once():
    # Before, only the first was reported: fix it, restart, and meet the next one.
    with pytest.raises(ValueError) as err:
        load({"RASA_PORT": "abc", "SMS_SENDER": "both", "TRUSTED_PROXIES": "10.0.0.300"})
    message = str(err.value)
    assert "RASA_PORT must be a whole number, got 'abc'" in message
    assert "SMS_SENDER must be auto, duty or server, got 'both'" in message
    assert "TRUSTED_PROXIES must be IP addresses or networks" in message
    assert "validation error" not in message and "__root__" not in message


def test_defaults_follow_the_ports_and_blank_is_unset():
    s = load({"RASA_PORT": "6000", "DUTY_PORT": "9000", "PUBLIC_BASE_URL": "  ", "TURN_SLOTS": ""})
    assert s.public_base_url == "http://localhost:6000" == s.rasa_url == s.webchat_socket_url
    assert s.duty_public_url == "http://localhost:9000"
    assert s.webchat_allowed_origins == ("http://localhost:9000", "http://127.0.0.1:9000")
    assert not s.webchat_origins_configured
    assert s.turn_slots == 3 and s.database_url.startswith("sqlite:///")


def test_tokens_fall_back_to_the_rasa_token():
    s = load({"RASA_AUTH_TOKEN": "t" * 24})
    assert s.relay_token == s.actions_token == "t" * 24
    assert load({}).relay_token is None


def test_settings_cannot_be_changed_once_read():
    s = load({})
    with pytest.raises(TypeError):
        s.rasa_port = 1
    assert s.rasa_port == 5005


def test_every_setting_is_in_the_readme_and_the_example_env():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    example = (ROOT / ".env.example").read_text(encoding="utf-8")
    variables = {f.field_info.extra["env"] for f in Settings.__fields__.values()} - {None}
    assert len(variables) >= 39
    for variable in variables - INTERNAL:
        assert f"`{variable}`" in readme, variable
        assert variable in example, variable
