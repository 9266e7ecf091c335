"""bot.rasa_runtime: installed only by its entry point, refused on an untested Rasa, with a switch
off; the conversation memory of risk is installed whatever the switch says."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bot import rasa_runtime
from bot.channels import server_hooks
from bot.rasa_runtime import memory_guard, nluthread, speedups, tracker_store

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def fresh(monkeypatch):
    """A process in which nothing was installed yet; records what install puts in place."""
    calls: list[str] = []
    monkeypatch.setattr(rasa_runtime, "_active", None)
    monkeypatch.setattr(memory_guard, "install", lambda: calls.append("memory_guard"))
    monkeypatch.setattr(speedups, "install", lambda: calls.append("speedups"))
    monkeypatch.setattr(nluthread, "install", lambda: calls.append("nlu_thread"))
    monkeypatch.setattr(tracker_store.LineTrackerStore, "stock", False)
    monkeypatch.setattr(server_hooks, "after_start", [])
    monkeypatch.setattr(server_hooks, "before_stop", [])
    monkeypatch.setattr(server_hooks, "nlu_state", list(server_hooks.nlu_state[:1]))
    return calls


def test_on_the_tested_rasa_everything_is_installed(fresh, caplog):
    caplog.set_level("INFO", logger="bot.rasa_runtime")
    active = rasa_runtime.install("on")
    assert fresh == ["memory_guard", "speedups", "nlu_thread"]
    assert active[:3] == ["memory_guard", "speedups", "nlu_thread"]
    assert server_hooks.after_start and server_hooks.before_stop
    assert "active: memory_guard, speedups" in caplog.text
    assert tracker_store.LineTrackerStore.stock is False


def test_off_keeps_only_the_memory_of_risk(fresh, caplog):
    caplog.set_level("INFO", logger="bot.rasa_runtime")
    assert rasa_runtime.install("off") == ["memory_guard"]
    assert fresh == ["memory_guard"]
    assert server_hooks.after_start == [] and server_hooks.nlu_state[-1]() == "rasa"
    assert "RASA_PATCHES=off" in caplog.text
    assert tracker_store.LineTrackerStore.stock is True


def test_an_untested_rasa_gets_no_speed_ups(fresh, monkeypatch, caplog):
    monkeypatch.setattr(rasa_runtime, "rasa_version", lambda: "3.7.0")
    assert rasa_runtime.install("on") == ["memory_guard"]
    assert fresh == ["memory_guard"]
    assert "tested on Rasa 3.6.21, this is 3.7.0: none installed" in caplog.text


def test_the_setting_is_on_or_off(monkeypatch):
    from bot.settings import load

    assert load({}).rasa_patches == "on"
    assert load({"RASA_PATCHES": "off"}).rasa_patches == "off"
    with pytest.raises(ValueError, match="RASA_PATCHES"):
        load({"RASA_PATCHES": "maybe"})


def test_importing_the_channels_patches_nothing():
    code = (
        "from rasa.core.processor import MessageProcessor as P\n"
        "own = (P.parse_message, P._run_prediction_loop)\n"
        "import bot.channels, bot.channels.sms, bot.channels.webchat\n"
        "assert (P.parse_message, P._run_prediction_loop) == own, 'patched at import'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                            text=True, timeout=300, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr[-2000:]


def test_the_line_starts_rasa_through_the_entry_point(tmp_path):
    from bot.run import commands
    from bot.settings import load

    argv = commands(load({}), tmp_path / "model.tar.gz")["rasa"]
    assert argv[:5] == [sys.executable, "-m", "bot.rasa_server", "run", "--enable-api"]
    makefile = (ROOT / "Makefile").read_text()
    assert "-m bot.rasa_server shell" in makefile
