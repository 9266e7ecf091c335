"""Packaging (issue 25): bot/ and actions/ are an installed package, a deployment installs only
requirements.lock, the tests' and benchmarks' tools come from requirements-dev.lock, every file
both install is checked by hash, and the two locks never disagree on a version."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import tomli

ROOT = Path(__file__).resolve().parents[2]
DEPLOY_LOCK = ROOT / "requirements.lock"
DEV_LOCK = ROOT / "requirements-dev.lock"

# Tools for tests, lint and benchmarks: never on a server.
DEV_ONLY = {
    "pytest", "pytest-aiohttp", "pytest-asyncio", "hypothesis", "ruff", "import-linter",
    "schemathesis", "playwright", "py-spy", "pyinstrument",
}


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _lock(path: Path) -> dict[str, tuple[str, list[str]]]:
    """name -> (version, hashes) of a pip-compile lock with --generate-hashes."""
    entries: dict[str, tuple[str, list[str]]] = {}
    text = path.read_text().replace("\\\n", " ")
    for line in text.splitlines():
        line = line.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        match = re.fullmatch(r"([A-Za-z0-9_.\-]+)==(\S+)((?:\s+--hash=sha256:[0-9a-f]{64})+)", line)
        assert match, f"{path.name}: not pinned with hashes: {line[:80]}"
        name = _canonical(match.group(1))
        assert name not in entries, f"{path.name}: {name} twice"
        entries[name] = (match.group(2), re.findall(r"sha256:([0-9a-f]{64})", match.group(3)))
    return entries


def _top_level(path: Path) -> set[str]:
    names = set()
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", "-")):
            continue
        names.add(_canonical(re.match(r"[A-Za-z0-9_.\-]+", line).group(0)))
    return names


def test_every_requirement_in_both_locks_is_pinned_and_hashed():
    for path in (DEPLOY_LOCK, DEV_LOCK):
        entries = _lock(path)
        assert len(entries) > 100
        assert all(hashes for _, hashes in entries.values())


def test_the_locks_agree_and_the_test_lock_holds_everything_a_deployment_runs():
    deploy, dev = _lock(DEPLOY_LOCK), _lock(DEV_LOCK)
    for name, (version, hashes) in deploy.items():
        assert name in dev, f"{name} is in requirements.lock but not requirements-dev.lock"
        assert dev[name][0] == version, f"{name}: {version} for a deployment, {dev[name][0]} in tests"
        assert set(dev[name][1]) == set(hashes), f"{name}: the locks list different files"


def test_a_deployment_installs_no_test_lint_or_benchmark_tool():
    deploy, dev = _lock(DEPLOY_LOCK), _lock(DEV_LOCK)
    assert not DEV_ONLY & deploy.keys()
    assert DEV_ONLY <= dev.keys()


def test_each_top_level_requirement_is_in_its_lock_and_rasa_stays_where_it_was_tested():
    deploy, dev = _lock(DEPLOY_LOCK), _lock(DEV_LOCK)
    assert _top_level(ROOT / "requirements.in") <= deploy.keys()
    assert _top_level(ROOT / "requirements-dev.in") <= dev.keys()
    assert deploy["rasa"][0] == "3.6.21"
    assert deploy["rasa-sdk"][0] == "3.6.2"
    assert "phonenumbers" in deploy
    # The editable install builds with these, offline, so they are pinned too.
    assert {"setuptools", "wheel"} <= deploy.keys()


def test_pyproject_installs_bot_and_actions_with_the_deployment_requirements():
    project = tomli.loads((ROOT / "pyproject.toml").read_text())
    assert project["project"]["requires-python"] == ">=3.10,<3.11"
    assert project["tool"]["setuptools"]["dynamic"]["dependencies"] == {"file": ["requirements.in"]}
    assert set(project["tool"]["setuptools"]["packages"]["find"]["include"]) == {
        "bot", "bot.*", "actions", "actions.*",
    }
    # Tool settings stay in their own files, which take precedence over pyproject.toml.
    assert not {"pytest", "ruff", "importlinter"} & project["tool"].keys()


def test_bot_and_actions_import_from_anywhere_without_pythonpath(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    found = subprocess.run(
        [sys.executable, "-c", "import bot, actions; print(bot.__file__); print(actions.__file__)"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
    )
    assert found.returncode == 0, found.stderr[-500:]
    assert found.stdout.split() == [str(ROOT / "bot" / "__init__.py"), str(ROOT / "actions" / "__init__.py")]


@pytest.mark.parametrize("deploy, locks", [
    (False, ["requirements.lock", "requirements-dev.lock"]),
    (True, ["requirements.lock"]),
])
def test_make_setup_installs_both_locks_and_a_deployment_only_the_first(tmp_path, deploy, locks):
    args = ["make", "-n", "-B", "venv", f"VENV={tmp_path / 'venv'}"] + (["DEPLOY=1"] if deploy else [])
    plan = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=60, check=True).stdout
    install = next(line for line in plan.splitlines() if "--require-hashes" in line)
    assert re.findall(r"-r (\S+)", install) == locks
    assert "--no-deps --no-build-isolation -e ." in plan


def test_ci_runs_lint_and_the_tests():
    steps = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert "make lint" in steps and "make test" in steps
