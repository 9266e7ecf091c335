"""The duty service and the migrations load neither Rasa nor TensorFlow (issue 25).

Before bot/rasa_runtime, importing anything under bot.channels patched Rasa and loaded
TensorFlow, and the duty service and `python -m bot.store upgrade` imported it: 563 MB resident
and a ~10 s cold start for an aiohttp app (bench/README.md, "The duty service's footprint").
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import sys
from bot.store import migrate
migrate.upgrade(sys.argv[1])              # python -m bot.store upgrade: Alembic's env.py too
import bot.duty.__main__, bot.duty.app, bot.duty.handoff
from bot.duty.app import create_app
from bot import settings
create_app(settings.settings())
heavy = sorted(m for m in ("tensorflow", "rasa", "rasa_sdk", "spacy") if m in sys.modules)
print("HEAVY", ",".join(heavy))
"""


def test_migrations_and_the_duty_app_import_no_rasa_or_tensorflow(tmp_path):
    url = f"sqlite:///{tmp_path}/line.db"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DATABASE_URL": url}
    result = subprocess.run([sys.executable, "-c", PROBE, url], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "HEAVY \n" in result.stdout, result.stdout
