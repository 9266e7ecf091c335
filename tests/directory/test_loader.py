"""Loading: every error names file, entry and field; a broken file never replaces a good directory."""

import pytest
from sqlalchemy import func, select

from bot.directory import loader
from bot.store.models.directory import DirectoryLoad, DirectoryService
from bot.directory.query import find_services
from bot.directory.schema import DirectoryError
from bot.store.db import transaction

from .conftest import london

GOOD = """
places:
  - key: testtown
    name: Testtown
    postcodes: [ZZ9]
services:
  - key: testtown-cafe
    name: Testtown Café
    kind: crisis_cafe
    areas: [testtown]
    needs: [sanctuary]
    contact: {phone: "01632 960999"}
    hours:
      fri: "18:00-02:00"
  - key: test-national
    name: Test Listening Line
    kind: helpline
    areas: [national]
    needs: [talk, crisis, sanctuary]
    contact: {phone: "0800 000 000"}
    hours: "24/7"
"""


def problems(path) -> list:
    with pytest.raises(DirectoryError) as info:
        loader.load_directory(path)
    return [str(i) for i in info.value.issues]


def from_file(found: list, name: str) -> list:
    """The messages from the file's name on (the folder before it is pytest's)."""
    assert all(name in f for f in found), found
    return [f[f.index(name):] for f in found]


def test_shipped_directory_is_valid_and_has_the_national_services():
    d = loader.load_directory()
    phones = {s.key: s.contact.phone for s in d.services}
    assert phones["samaritans"] == "116 123" and phones["emergency-999"] == "999"
    assert phones["nhs-111-mental-health"] == "111"
    assert d.service("nhs-111-mental-health").contact.phone_option == "option 2"
    assert d.service("shout").contact.text == "85258"
    # Every local entry is an example with a number from Ofcom's drama range.
    for s in d.services:
        if not s.national:
            assert s.example, s.key
            assert s.contact.phone.startswith("01632 960"), s.key


def test_impossible_time_names_file_entry_and_field(write_yaml):
    path = write_yaml("bad.yml", GOOD.replace('fri: "18:00-02:00"', 'fri: "25:00-02:00"'))
    (message,) = problems(path)
    assert "bad.yml" in message
    assert "entry 1 (testtown-cafe)" in message
    assert "hours.fri" in message
    assert "'25:00' is not a time of day" in message


def test_every_problem_is_reported_at_once(write_yaml):
    text = (
        GOOD.replace("kind: crisis_cafe", "kind: cafe")
        .replace("needs: [sanctuary]", "needs: [sanctuary, cake]")
        .replace("areas: [testtown]", "areas: [elsewhere]")
        .replace('hours: "24/7"', 'hours: "24/7"\n    opening: always')
    )
    found = problems(write_yaml("many.yml", text))
    joined = "\n".join(found)
    assert "many.yml: services entry 1 (testtown-cafe): kind: 'cafe' is not a kind of service" in joined
    assert "services entry 1 (testtown-cafe): needs[1]: 'cake' is not a need" in joined
    assert "services entry 1 (testtown-cafe): areas[0]: 'elsewhere' is not a place" in joined
    assert "services entry 2 (test-national): opening: is not a known field" in joined
    assert len(found) == 4


def test_unquoted_time_gets_a_helpful_message(write_yaml):
    text = GOOD.replace('fri: "18:00-02:00"', "fri: [18:00]")
    (message,) = problems(write_yaml("unquoted.yml", text))
    assert "hours.fri[0]" in message and "in quotes" in message


def test_yaml_syntax_error_names_the_line(write_yaml):
    (message,) = problems(write_yaml("syntax.yml", "services:\n  - key: [unclosed\n"))
    assert "syntax.yml" in message and "line 3" in message and "not valid YAML" in message


def test_duplicate_keys_and_missing_fields(write_yaml):
    write_yaml("a.yml", GOOD)
    path = write_yaml(
        "b.yml",
        """
        services:
          - key: testtown-cafe
            name: Again
            kind: helpline
            areas: [national]
            needs: [talk]
            contact: {phone: "0800 000 001"}
            hours: "24/7"
          - key: no-hours
            name: No hours
            kind: helpline
            areas: [national]
            needs: [talk]
            contact: {web: https://example.org}
        """,
    )
    found = "\n".join(problems(path.parent))
    assert "b.yml: services entry 1 (testtown-cafe): key: 'testtown-cafe' is already defined in" in found
    assert "a.yml" in found
    assert "b.yml: services entry 2 (no-hours): hours: is required" in found


def test_exception_problems_name_the_exception(write_yaml):
    text = GOOD.replace(
        'fri: "18:00-02:00"',
        'fri: "18:00-02:00"\n    exceptions:\n      - date: 2026-02-30\n        closed: true',
    )
    (message,) = problems(write_yaml("exc.yml", text))
    assert "exceptions[0].date" in message and "is not a date" in message


def test_import_replaces_the_directory_and_a_running_query_sees_it(db_url, write_yaml):
    with transaction() as s:
        loader.import_directory(loader.DEFAULT_PATH, s)
    before = find_services("crisis", "Bridgwater", at=london(2026, 11, 28, 23, 30))
    assert any(m.service.key == "bridgwater-sanctuary" for m in before)

    path = write_yaml("only.yml", GOOD)
    with transaction() as s:
        loader.import_directory(path, s)
    after = find_services("sanctuary", "ZZ9 1AA", at=london(2026, 11, 27, 23, 0))
    assert [m.service.key for m in after] == ["testtown-cafe", "test-national"]
    assert after.place.key == "testtown"
    # Bridgwater is no longer a place this directory knows.
    assert find_services("crisis", "Bridgwater").place_status == "unknown"
    with transaction() as s:
        assert s.execute(select(func.count(DirectoryLoad.id))).scalar_one() == 2


def test_broken_file_leaves_the_loaded_directory_unchanged(db_url, write_yaml):
    with transaction() as s:
        loader.import_directory(loader.DEFAULT_PATH, s)
        keys_before = s.execute(select(DirectoryService.key).order_by(DirectoryService.key)).scalars().all()
    broken = write_yaml("broken.yml", GOOD.replace('fri: "18:00-02:00"', 'fri: "25:00-02:00"'))
    with pytest.raises(DirectoryError, match="hours.fri"):
        loader.reload(broken)
    with transaction() as s:
        keys_after = s.execute(select(DirectoryService.key).order_by(DirectoryService.key)).scalars().all()
        loads = s.execute(select(func.count(DirectoryLoad.id))).scalar_one()
    assert keys_after == keys_before and "samaritans" in keys_after
    assert loads == 1
    assert find_services("crisis", "Bridgwater", at=london(2026, 11, 28, 23, 30)).place.key == "bridgwater"


def test_a_database_failure_mid_import_rolls_back(sqlite_url, monkeypatch):
    with transaction() as s:
        loader.import_directory(loader.DEFAULT_PATH, s)

    def explode(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(loader, "checksum", explode)  # fails after the old rows are deleted
    with pytest.raises(RuntimeError):
        loader.reload()
    with transaction() as s:
        assert s.execute(select(func.count(DirectoryService.id))).scalar_one() == 24


def test_export_round_trips(loaded_sqlite, tmp_path):
    with transaction() as s:
        exported = loader.export_yaml(loader.directory_from_db(s))
    out = tmp_path / "exported.yml"
    out.write_text(exported, encoding="utf-8")
    again = loader.load_directory(out)
    original = loader.load_directory()
    assert loader.checksum(again) == loader.checksum(original)
    assert [s.schedule for s in again.services] == [s.schedule for s in original.services]


def test_models_match_the_migration(db_url):
    """The 0002 migration creates exactly what bot/store/models/directory.py declares."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from bot.store.db import get_engine
    from bot.store.models import Base

    with get_engine().connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
    ours = [d for d in diffs if "directory_" in repr(d)]
    assert ours == []


def test_contact_and_exception_problems_name_file_entry_and_field(write_yaml):
    text = GOOD.replace(
        'contact: {phone: "01632 960999"}',
        'contact: {phone: "call us", fax: "01632 960998"}',
    ).replace(
        'fri: "18:00-02:00"',
        'fri: "18:00-02:00"\n    exceptions:\n      - from: 2026-12-26\n        to: 2026-12-24\n'
        '        closed: true\n        hours: "10:00-12:00"',
    )
    found = from_file(problems(write_yaml("contact.yml", text)), "contact.yml")
    entry = "contact.yml: services entry 1 (testtown-cafe): "
    assert sorted(found) == sorted([
        entry + "contact.fax: is not a known field (known: address, phone, phone_option, text, "
                "text_keyword, web)",
        entry + "contact.phone: 'call us' must be digits and spaces only",
        entry + "exceptions[0].hours: cannot be given with closed: true",
    ])
    # Fixed, the same entry reports the dates the wrong way round.
    text = text.replace('        hours: "10:00-12:00"\n', "")
    text = text.replace('"call us", fax: "01632 960998"', '"01632 960999"')
    (message,) = from_file(problems(write_yaml("contact.yml", text)), "contact.yml")
    assert message == "contact.yml: services entry 1 (testtown-cafe): exceptions[0].to: is before from"


def test_a_wrong_type_is_named_with_what_was_written(write_yaml):
    text = GOOD.replace("kind: crisis_cafe", "kind: crisis_cafe\n    self_referral: maybe").replace(
        "needs: [sanctuary]", "needs: {sanctuary: yes}")
    found = from_file(problems(write_yaml("types.yml", text)), "types.yml")
    assert sorted(found) == [
        "types.yml: services entry 1 (testtown-cafe): needs: must be a list of words",
        "types.yml: services entry 1 (testtown-cafe): self_referral: must be true or false, got 'maybe'",
    ]


def test_one_mistake_in_a_place_is_one_message(write_yaml):
    # The place is still known, so the services in it are not reported as well.
    text = GOOD.replace("postcodes: [ZZ9]", "postcodes: [ZZ9, 99]\n    population: 12000")
    found = from_file(problems(write_yaml("place.yml", text)), "place.yml")
    assert sorted(found) == [
        "place.yml: places entry 1 (testtown): population: is not a known field (known: aliases, "
        "ambiguous, county, key, kind, name, postcodes)",
        "place.yml: places entry 1 (testtown): postcodes[1]: '99' is not a postcode district "
        "(like TA6 or BA16)",
    ]
