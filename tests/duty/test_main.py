"""``python -m bot.duty`` migrates a fresh database, then serves /health on DUTY_HOST:DUTY_PORT."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_serves_health_on_a_fresh_database(tmp_path):
    port = _free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'fresh.db'}",
        "DUTY_PORT": str(port),
        "DUTY_HOST": "127.0.0.1",
        "DUTY_API_TOKEN": "t0ken",
        "RASA_URL": "http://127.0.0.1:1",
        "ACTIONS_URL": "http://127.0.0.1:1",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot.duty"], cwd=ROOT, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 20
        body = None
        while time.monotonic() < deadline and body is None:
            try:
                probe = urllib.request.Request(
                    f"http://127.0.0.1:{port}/health", headers={"Authorization": "Bearer t0ken"}
                )
                with urllib.request.urlopen(probe, timeout=2) as resp:
                    body = json.load(resp)
            except (urllib.error.URLError, ConnectionError):
                assert proc.poll() is None, proc.stdout.read().decode()
                time.sleep(0.2)
        assert body is not None, "the duty service did not answer /health"
        assert body["database"]["ok"] is True  # so the schema was migrated first
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/escalations", headers={"Authorization": "Bearer t0ken"}
        )
        with urllib.request.urlopen(request, timeout=2) as resp:
            assert json.load(resp) == []
    finally:
        proc.terminate()
        proc.wait(timeout=10)
