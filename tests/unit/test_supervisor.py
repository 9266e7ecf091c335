"""The supervisor behind `make run` restarts a dead process, and never gives up on one."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from bot import run


def test_restarts_are_spaced_out_not_abandoned():
    assert [run.restart_delay(n) for n in range(5)] == [0.0] * 5
    delays = [run.restart_delay(n) for n in range(5, 12)]
    assert delays == sorted(delays) and delays[0] > 0
    assert max(delays) == run.MAX_RESTART_DELAY_S  # capped, and still a restart


def test_a_child_that_keeps_dying_is_restarted_again_and_again(tmp_path, monkeypatch):
    # A stand-in for the three processes: each run of it appends a line, then exits at once.
    marker = tmp_path / "starts.txt"
    child = [sys.executable, "-c", f"open({str(marker)!r}, 'a').write('x\\n')"]
    script = tmp_path / "supervise.py"
    script.write_text(
        "import sys\n"
        "from bot import run\n"
        "run.MAX_RESTART_DELAY_S = 0.2\n"
        "run.restart_delay = lambda n: 0.0 if n < 2 else 0.2\n"
        f"run.commands = lambda s, model: {{'flaky': {child!r}}}\n"
        "run.prepare = lambda s: None\n"
        "run._demo_account = lambda: None\n"
        "class _Model:\n"
        "    def exists(self): return True\n"
        "import bot.train\n"
        "bot.train.model_path = lambda: _Model()\n"
        "sys.exit(run.main())\n"
    )
    env = dict(os.environ, PYTHONPATH=str(run.ROOT), DATABASE_URL=f"sqlite:///{tmp_path}/x.db")
    proc = subprocess.Popen([sys.executable, str(script)], cwd=run.ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        # Far more than MAX_RESTARTS_IN_WINDOW starts within the window: it never gave up.
        while time.monotonic() < deadline:
            if marker.exists() and len(marker.read_text().splitlines()) >= 10:
                break
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            time.sleep(0.2)
        assert len(marker.read_text().splitlines()) >= 10
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=20)
