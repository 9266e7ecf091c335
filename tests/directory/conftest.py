"""Fixtures for the directory tests: the shipped data, small YAML directories, a loaded DB."""

from __future__ import annotations

import datetime as dt
import textwrap
from pathlib import Path
from typing import Callable
from zoneinfo import ZoneInfo

import pytest

from bot.directory import loader
from bot.store.db import transaction

LONDON = ZoneInfo("Europe/London")


def london(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=LONDON)


@pytest.fixture
def write_yaml(tmp_path: Path) -> Callable[[str, str], Path]:
    """Write a YAML file (dedented) into a fresh folder and return its path."""
    folder = tmp_path / "services"
    folder.mkdir()

    def write(name: str, text: str) -> Path:
        path = folder / name
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return path

    return write


@pytest.fixture
def loaded(db_url: str) -> str:
    """A migrated database (SQLite and PostgreSQL) with the shipped directory imported."""
    with transaction() as session:
        loader.import_directory(loader.DEFAULT_PATH, session)
    return db_url


@pytest.fixture
def loaded_sqlite(sqlite_url: str) -> str:
    with transaction() as session:
        loader.import_directory(loader.DEFAULT_PATH, session)
    return sqlite_url
