"""Read, validate, import and export the service directory.

``load_directory(path)`` reads one YAML file or every ``*.yml`` in a folder and raises
``DirectoryError`` listing every problem (file, entry, field). ``import_directory(path, session)``
validates first and only then replaces what is in the database, inside the caller's
transaction: a broken file never touches the directory already loaded, and a running process
sees the new directory on its next query (no restart).
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

import yaml
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from bot.store.models.directory import (
    DirectoryLoad,
    DirectoryPlace,
    DirectoryService,
    DirectoryServiceArea,
    DirectoryServiceNeed,
)
from bot.directory.schema import (
    NATIONAL,
    Directory,
    DirectoryError,
    Issue,
    Place,
    Service,
    _Collector,
    entry_label,
    parse_place,
    parse_service,
    place_to_dict,
    service_to_dict,
)
from bot.settings import ROOT

log = logging.getLogger(__name__)

DEFAULT_PATH = ROOT / "data" / "services"
PathLike = Union[str, Path]


class YamlLoader(yaml.SafeLoader):
    """Safe YAML without implicit timestamps: the validator parses dates itself, so that
    2026-02-30 is reported with its file and field instead of crashing PyYAML."""


YamlLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def directory_files(path: Optional[PathLike] = None) -> List[Path]:
    path = Path(path) if path else DEFAULT_PATH
    if path.is_dir():
        return sorted(p for p in path.iterdir() if p.suffix in (".yml", ".yaml"))
    return [path]


def _read_yaml(path: Path, issues: List[Issue]) -> Optional[Dict[str, Any]]:
    name = _display(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        issues.append(Issue(name, "", "", f"cannot be read ({exc.strerror or exc})"))
        return None
    try:
        data = yaml.load(text, Loader=YamlLoader)  # noqa: S506  a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        issues.append(Issue(name, where, "", f"is not valid YAML: {problem}"))
        return None
    if data is None:
        return {}
    if not isinstance(data, dict):
        issues.append(Issue(name, "", "", "must be a mapping with places: and/or services:"))
        return None
    for top in data:
        if top not in ("places", "services"):
            issues.append(Issue(name, "", str(top), "is not a known section (places, services)"))
    return data


def parse_files(files: List[Path]) -> Directory:
    """Validate ``files`` as one directory; raise ``DirectoryError`` with every problem."""
    issues: List[Issue] = []
    places: List[Place] = []
    services: List[Service] = []
    place_origin: Dict[str, tuple] = {}
    service_origin: Dict[str, str] = {}
    raw_areas: List[tuple] = []
    if not files:
        raise DirectoryError([Issue(_display(DEFAULT_PATH), "", "", "has no .yml files")])
    for path in files:
        name = _display(path)
        data = _read_yaml(path, issues)
        if data is None:
            continue
        for section in ("places", "services"):
            if data.get(section) is not None and not isinstance(data[section], list):
                issues.append(Issue(name, "", section, "must be a list of entries"))
                data[section] = []
        for i, raw in enumerate(data.get("places") or []):
            c = _Collector(issues, name, f"places {entry_label(raw, i)}")
            place = parse_place(raw, c)
            if place is None:
                continue
            if place.key in place_origin:
                c.add("key", "{!r} is already defined in {} {}".format(place.key, *place_origin[place.key]))
                continue
            place_origin[place.key] = (name, c.entry)
            places.append(place)
        for i, raw in enumerate(data.get("services") or []):
            c = _Collector(issues, name, f"services {entry_label(raw, i)}")
            service = parse_service(raw, c, source=name)
            if isinstance(raw, dict) and isinstance(raw.get("areas"), list):
                # Checked against all places once every file is read, valid entry or not.
                raw_areas.append((c, [str(a) for a in raw["areas"]]))
            if service is None:
                continue
            if service.key in service_origin:
                c.add("key", f"{service.key!r} is already defined in {service_origin[service.key]}")
                continue
            service_origin[service.key] = f"{name} {c.entry}"
            services.append(service)

    # Cross-references, checked once everything is read.
    known = {p.key for p in places}
    for c, areas in raw_areas:
        for i, area in enumerate(areas):
            if area.lower() != NATIONAL and area not in known:
                c.add(f"areas[{i}]", f"{area!r} is not a place in the directory (or 'national')")
    postcode_owner: Dict[str, str] = {}
    names: Dict[str, str] = {}
    for place in places:
        c = _Collector(issues, *place_origin[place.key])
        if place.county and place.county not in known:
            c.add("county", f"{place.county!r} is not a place in the directory")
        for pc in place.postcodes:
            if pc in postcode_owner:
                c.add("postcodes", f"{pc} already belongs to {postcode_owner[pc]}")
            postcode_owner[pc] = place.key
        for word in (place.name.lower(), *place.aliases):
            if word in names and names[word] != place.key:
                c.add("aliases", f"{word!r} already names {names[word]}")
            names[word] = place.key
    if issues:
        raise DirectoryError(issues)

    warnings = []
    if not any(s.national and s.schedule.always for s in services):
        warnings.append(
            "no national service open 24/7: answers will fall back to the built-in national list"
        )
    examples = [s.key for s in services if s.example]
    if examples:
        warnings.append(
            f"{len(examples)} entries are examples (example: true): replace them with your own "
            "services before going live"
        )
    return Directory(
        places=tuple(places),
        services=tuple(services),
        sources=tuple(_display(p) for p in files),
        warnings=tuple(warnings),
    )


def load_directory(path: Optional[PathLike] = None) -> Directory:
    """Read and validate a directory file or folder (default ``data/services``)."""
    return parse_files(directory_files(path))


def checksum(directory: Directory) -> str:
    payload = {
        "places": [place_to_dict(p) for p in directory.places],
        "services": [service_to_dict(s) for s in directory.services],
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def store_directory(directory: Directory, session: Session, source: str = "") -> DirectoryLoad:
    """Replace the directory in the database with ``directory`` (inside the caller's transaction)."""
    session.execute(delete(DirectoryServiceNeed))
    session.execute(delete(DirectoryServiceArea))
    session.execute(delete(DirectoryService))
    session.execute(delete(DirectoryPlace))
    for position, place in enumerate(directory.places):
        session.add(DirectoryPlace(key=place.key, position=position, spec=place_to_dict(place)))
    for position, service in enumerate(directory.services):
        row = DirectoryService(
            key=service.key,
            position=position,
            name=service.name,
            kind=service.kind,
            national=service.national,
            example=service.example,
            source=service.source,
            spec=service_to_dict(service),
        )
        row.needs = [DirectoryServiceNeed(need=n) for n in dict.fromkeys(service.needs)]
        row.areas = [DirectoryServiceArea(area=a) for a in dict.fromkeys(service.areas)]
        session.add(row)
    load = DirectoryLoad(
        source=source[:500] or ", ".join(directory.sources)[:500],
        checksum=checksum(directory),
        services=len(directory.services),
        places=len(directory.places),
    )
    session.add(load)
    session.flush()
    log.info(
        "directory loaded: %d services, %d places (load %d)",
        load.services, load.places, load.id,
    )
    return load


def import_directory(path: Optional[PathLike], session: Session) -> Directory:
    """Validate ``path`` and replace the loaded directory with it, atomically.

    Raises ``DirectoryError`` before touching the database when the files do not validate.
    The caller owns the transaction (``with transaction() as s: import_directory(p, s)``).
    """
    directory = load_directory(path)
    store_directory(directory, session, source=", ".join(directory.sources))
    return directory


def reload(path: Optional[PathLike] = None, url: Optional[str] = None) -> Directory:
    """Import in a transaction of its own: for a running process or an admin endpoint."""
    from bot.store.db import transaction

    with transaction(url) as session:
        return import_directory(path, session)


def has_directory(session: Session) -> bool:
    return bool(session.execute(select(func.count(DirectoryLoad.id))).scalar_one())


def places_from_db(session: Session) -> List[Place]:
    rows = session.execute(select(DirectoryPlace).order_by(DirectoryPlace.position)).scalars()
    out = []
    for row in rows:
        c = _Collector([], "database", row.key)
        place = parse_place(row.spec, c)
        if place is not None:
            out.append(place)
    return out


def service_from_row(row: DirectoryService) -> Optional[Service]:
    issues: List[Issue] = []
    service = parse_service(row.spec, _Collector(issues, "database", row.key), source=row.source)
    if issues:
        log.error("directory row %s no longer validates: %s", row.key, issues[0].message)
    return service


def directory_from_db(session: Session) -> Directory:
    """The whole loaded directory, as validated objects (for export)."""
    rows = session.execute(select(DirectoryService).order_by(DirectoryService.position)).scalars()
    services = [s for s in (service_from_row(r) for r in rows) if s is not None]
    return Directory(places=tuple(places_from_db(session)), services=tuple(services))


def export_yaml(directory: Directory) -> str:
    data = {
        "places": [place_to_dict(p) for p in directory.places],
        "services": [service_to_dict(s) for s in directory.services],
    }
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)
