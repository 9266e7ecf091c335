"""The rota in the database: versions kept with who and when, import and export (the YAML
round-trips, comments and all), validation errors naming source, entry and field, a second
writer from the same version refused, and readers that see a new version at once."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from sqlalchemy import select

from bot.escalation import rota, rota_store
from bot.escalation.__main__ import main
from bot.store.models.handoff import RotaChange, RotaVersion
from bot.store import db

EXAMPLE = rota.DEFAULT_PATH.read_text(encoding="utf-8")


def rows() -> list[RotaVersion]:
    with db.transaction() as s:
        return list(s.execute(select(RotaVersion).order_by(RotaVersion.version)).scalars())


def trail() -> list[RotaChange]:
    with db.transaction() as s:
        return list(s.execute(select(RotaChange).order_by(RotaChange.seq)).scalars())


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = main(list(argv), out=out)
    return code, out.getvalue()


def test_import_and_export_round_trip_and_every_version_is_kept_with_who_and_when(db_url, tmp_path):
    code, text = run("rota", "import", str(rota.DEFAULT_PATH), "--by", "cli:ellen",
                     "--reason", "the winter rota")
    assert code == 0 and "imported as rota version 1 by cli:ellen" in text

    out = tmp_path / "exported.yml"
    assert run("rota", "export", "--out", str(out))[0] == 0
    assert out.read_text(encoding="utf-8") == EXAMPLE  # byte for byte: comments kept
    assert run("rota", "export")[1] == EXAMPLE

    # The same text again changes nothing; a changed file is version 2, on the trail.
    assert "already has this rota" in run("rota", "import", str(out))[1]
    out.write_text(EXAMPLE.replace("name: Aisha,", "name: Aisha B,"), encoding="utf-8")
    before = dt.datetime.now(dt.timezone.utc)
    assert run("rota", "import", str(out), "--by", "cli:ellen")[0] == 0
    first, second = rows()
    assert (first.version, first.actor, first.summary) == (1, "cli:ellen", "the winter rota")
    assert (second.version, second.actor, second.summary) == (2, "cli:ellen", "imported exported.yml")
    at = second.at if second.at.tzinfo else second.at.replace(tzinfo=dt.timezone.utc)
    assert before - dt.timedelta(seconds=5) <= at <= dt.datetime.now(dt.timezone.utc)
    assert second.sha256 == rota_store.sha256_of(second.text)
    # The document is the validated rota as JSON: the database can be read without YAML.
    assert second.document["staff"][0]["name"] == "Aisha B"
    assert rota.parse(second.document).staff["aisha"].name == "Aisha B"
    [change] = trail()
    assert (change.action, change.actor, change.file_before, change.file_after) == (
        "import", "cli:ellen", first.sha256, second.sha256)
    assert rota_store.verify_changes(db.get_engine()) is None

    # Any version can be exported; the list names who and when, never a number.
    assert run("rota", "export", "--version", "1")[1] == EXAMPLE
    code, listing = run("rota", "versions")
    assert code == 0 and listing.index("version 2") < listing.index("version 1")
    assert "cli:ellen" in listing and "07700" not in listing
    assert run("rota", "show", "--db", "--at", "2026-11-24T19:00")[1].startswith(
        "rota version 2 (database): valid.")


def test_setup_imports_only_into_an_empty_database(db_url, tmp_path):
    assert run("rota", "import", "--if-empty", "--by", "system:setup")[0] == 0  # ROTA_FILE
    edited = tmp_path / "edited.yml"
    edited.write_text(EXAMPLE.replace("name: Ben,", "name: Benedict,"), encoding="utf-8")
    assert run("rota", "import", str(edited), "--by", "staff:sam")[0] == 0
    # make setup again: the rota staff edited stays.
    code, text = run("rota", "import", "--if-empty", "--by", "system:setup")
    assert code == 0 and "already has a rota (--if-empty)" in text
    assert [(r.version, r.actor) for r in rows()] == [(1, "system:setup"), (2, "staff:sam")]
    assert "Benedict" in rota_store.export_text(db.get_engine())


def test_an_invalid_import_names_the_file_entry_and_field_and_changes_nothing(db_url, tmp_path):
    assert run("rota", "import", str(rota.DEFAULT_PATH))[0] == 0
    bad = tmp_path / "bad.yml"
    text = EXAMPLE.replace('phone: "07700 900102"', 'phone: "12345"')
    text = text.replace('role: peer_worker, phone: "07700 900103"', 'role: boss, phone: "07700 900103"')
    bad.write_text(text, encoding="utf-8")
    code, text = run("rota", "import", str(bad))
    assert code == 1
    assert text.startswith(f"{bad}: ") and "problem(s) in the rota" in text
    assert "staff[1] (id 'ben'): field 'phone' is not a UK (07…) or international (+…) number" in text
    assert "staff[2] (id 'chloe'): field 'role' must be one of" in text
    assert "12345" not in text  # a number, even a wrong one, is never repeated
    assert "nothing imported" in text
    assert [r.version for r in rows()] == [1] and trail() == []

    missing = tmp_path / "nope.yml"
    code, text = run("rota", "import", str(missing))
    assert code == 1 and "nope.yml: 1 problem" in text and "cannot read the file" in text


def test_export_with_no_rota_says_so(db_url):
    code, text = run("rota", "export")
    assert code == 1 and "no rota yet" in text
    assert "no rota in the database yet" in run("rota", "versions")[1]


def test_the_database_is_unreachable(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg2://nobody@127.0.0.1:1/none")
    from bot import settings as settings_module

    settings_module.reset()
    try:
        code, text = run("rota", "import", str(rota.DEFAULT_PATH))
    finally:
        db.dispose_all()
        settings_module.reset()
    assert code == 2 and "database error (OperationalError)" in text


def test_a_reader_sees_each_new_version_and_parses_it_once(db_url, monkeypatch):
    engine = db.get_engine()
    source = rota_store.RotaSource(rota.DEFAULT_PATH)  # seeds the empty database
    assert source.get().staff["aisha"].name == "Aisha" and source.version == 1
    parsed: list[str] = []
    real_parse = rota.parse

    def spy(data, path="<rota>"):
        parsed.append(path)
        return real_parse(data, path)

    monkeypatch.setattr(rota, "parse", spy)
    source.get()
    source.get()
    assert parsed == []  # same version: only its number was read
    rota_store.import_text(engine, EXAMPLE.replace("name: Aisha,", "name: Aisha B,"), "x.yml", "cli:ops")
    assert source.get().staff["aisha"].name == "Aisha B" and source.version == 2
    # Validated once when imported, parsed once by the reader.
    assert parsed == ["x.yml", "rota version 2 (database)"]


def test_two_writers_from_one_version_cannot_both_write_the_next(db_url):
    engine = db.get_engine()
    rota_store.seed(engine, rota.DEFAULT_PATH)
    with db.transaction() as first:
        previous = rota_store.latest_row(first)
        rota_store.write_version(first, EXAMPLE + "\n# one\n", "staff:a", "one", source="a",
                                 previous=previous)
    from sqlalchemy.exc import IntegrityError

    with pytest.raises(IntegrityError):
        with db.transaction() as second:
            rota_store.write_version(second, EXAMPLE + "\n# two\n", "staff:b", "two", source="b",
                                     previous=previous)  # read before the first wrote
    assert [r.summary for r in rows()] == ["first version, imported from rota.yml", "one"]


def test_an_invalid_edit_is_never_stored(db_url):
    engine = db.get_engine()
    rota_store.seed(engine, rota.DEFAULT_PATH)
    with pytest.raises(rota.RotaError) as info:
        with db.transaction() as s:
            rota_store.write_version(s, EXAMPLE.replace('from: "18:00"', "from: 18:00", 1), "staff:a", "x",
                                     source="the edited rota", previous=rota_store.latest_row(s))
    assert str(info.value).startswith("the edited rota: 1 problem(s)")
    assert "field 'from': put times in quotes" in str(info.value)
    assert [r.version for r in rows()] == [1]


def test_the_migration_matches_the_model(db_url):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    import bot.store.registry  # noqa: F401  every table on Base.metadata
    from bot.store.models import Base

    with db.get_engine(db_url).connect() as conn:
        diff = compare_metadata(
            MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata
        )
    assert [d for d in diff if "rota_versions" in repr(d)] == []
    from bot.store import migrate

    migrate.downgrade(db_url, "0010_one_bed_count")
    with db.get_engine(db_url).connect() as conn:
        assert "rota_versions" not in db.get_engine(db_url).dialect.get_table_names(conn)
    migrate.upgrade(db_url)
    rota_store.seed(db.get_engine(db_url), rota.DEFAULT_PATH)
    assert [r.version for r in rows()] == [1]
