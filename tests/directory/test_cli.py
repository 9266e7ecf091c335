"""``python -m bot.directory``: run in-process, output captured."""

import pytest
from sqlalchemy import select

from bot.directory import loader
from bot.directory.__main__ import main
from bot.store.models.directory import DirectoryService
from bot.store.db import transaction

BROKEN_TIME = """
services:
  - key: night-line
    name: Night Line
    kind: helpline
    areas: [national]
    needs: [talk]
    contact: {phone: "01632 960500"}
    hours:
      sat: "22:00-25:00"
"""


def test_validate_the_shipped_directory(capsys):
    assert main(["validate"]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("OK: 24 services, 14 places")
    assert "examples (example: true)" in err


def test_validate_broken_file_names_file_entry_and_field(write_yaml, capsys):
    path = write_yaml("night.yml", BROKEN_TIME)
    assert main(["validate", str(path)]) == 1
    _, err = capsys.readouterr()
    assert "night.yml: services entry 1 (night-line): hours.sat: '25:00' is not a time of day" in err


def test_import_broken_file_leaves_the_directory_unchanged(sqlite_url, write_yaml, capsys):
    assert main(["import"]) == 0
    assert "Imported 24 services and 14 places." in capsys.readouterr().out
    path = write_yaml("night.yml", BROKEN_TIME)
    assert main(["import", str(path)]) == 1
    err = capsys.readouterr().err
    assert "hours.sat" in err and "night.yml" in err
    assert "the directory already loaded is unchanged" in err
    with transaction() as s:
        keys = s.execute(select(DirectoryService.key)).scalars().all()
    assert "samaritans" in keys and "night-line" not in keys and len(keys) == 24


def test_open_now_saturday_night_lists_samaritans(loaded, capsys):
    assert main(["open-now", "--need", "crisis", "--at", "2026-11-28T23:30"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "crisis at Sat 28 Nov 2026 23:30 GMT"
    assert "  Samaritans: 116 123 (24 hours)" in out
    assert "  Shout: text SHOUT to 85258 (24 hours)" in out


def test_open_now_near_a_place(loaded_sqlite, capsys):
    assert main(["open-now", "--need", "sanctuary", "--place", "bridgewater",
                 "--at", "2026-11-28T23:30"]) == 0
    out = capsys.readouterr().out
    assert "near Bridgwater" in out.splitlines()[0]
    assert "  Bridgwater Sanctuary: 01632 960123 (until 02:00)  [example]" in out
    assert "Taunton Haven" not in out


def test_open_now_works_before_the_database_is_migrated(tmp_path, monkeypatch, capsys):
    from bot import settings as settings_module
    from bot.store import db

    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'empty.db'}")
    settings_module.reset()
    try:
        assert main(["open-now", "--need", "crisis", "--at", "2026-11-28T23:30"]) == 0
    finally:
        db.dispose_all()
        settings_module.reset()
    out, err = capsys.readouterr()
    assert "Samaritans: 116 123" in out and "database unavailable" in err


def test_open_now_sms_and_unknown_place(loaded_sqlite, capsys):
    assert main(["open-now", "--need", "crisis", "--place", "Narnia", "--at", "2026-11-28T23:30"]) == 0
    assert "(place 'Narnia' not known: national services only)" in capsys.readouterr().out
    assert main(["open-now", "--need", "crisis", "--place", "Narnia", "--sms",
                 "--at", "2026-11-28T23:30"]) == 0
    assert capsys.readouterr().out.startswith("I don't have local services for that place")


def test_open_now_rejects_bad_input(loaded_sqlite, capsys):
    with pytest.raises(SystemExit) as info:
        main(["open-now", "--need", "cake"])
    assert info.value.code == 2
    with pytest.raises(SystemExit):
        main(["open-now", "--need", "crisis", "--at", "Saturday night"])
    assert "is not an ISO date-time" in capsys.readouterr().err


def test_export_then_validate(loaded_sqlite, tmp_path, capsys):
    out_file = tmp_path / "export.yml"
    assert main(["export", str(out_file)]) == 0
    assert main(["validate", str(out_file)]) == 0
    assert "OK: 24 services, 14 places" in capsys.readouterr().out
    assert main(["export"]) == 0
    assert "key: samaritans" in capsys.readouterr().out


def test_export_with_nothing_loaded(sqlite_url, capsys):
    assert main(["export"]) == 1
    assert "No directory imported yet" in capsys.readouterr().err


def test_capacity(loaded_sqlite, capsys):
    assert main(["capacity", "bridgwater-sanctuary", "1"]) == 0
    assert "Bridgwater Sanctuary: 1 of 3 free tonight." in capsys.readouterr().out
    assert main(["capacity", "samaritans", "1"]) == 1


def test_line_status(capsys):
    assert main(["line-status", "--at", "2026-12-28T10:00"]) == 0
    assert capsys.readouterr().out.strip() == (
        "out of hours: bank holiday (Boxing Day (observed)); changes Tue 29 Dec 09:00"
    )


def test_reload_is_the_same_as_import(sqlite_url):
    loader.reload()
    with transaction() as s:
        assert loader.has_directory(s)
