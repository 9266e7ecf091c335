"""A read-only install (the shipped systemd unit: ProtectSystem=strict, writes only under
var/): a duty manager's rota edit still succeeds, because it is a new version in the database,
and a second duty service, and a dispatcher in another process, see it at once."""

from __future__ import annotations

import builtins
import datetime as dt
import os
from pathlib import Path

import pytest

from bot.duty.app import create_app
from bot.escalation import rota_store
from bot.escalation.dispatch import RotaSource
from bot.store import db

from .conftest import make_settings, sign_in
from .test_rota import ROTA, on_call_now, open_rota

_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


@pytest.fixture
def read_only_rota(tmp_path, monkeypatch):
    """ROTA_FILE in a folder nothing may write to. The tests run as root, which permission
    bits do not stop, so writes there are also refused here, as systemd's read-only mount
    refuses them to every user."""
    folder = tmp_path / "ro"
    folder.mkdir()
    path = folder / "rota.yml"
    path.write_text(ROTA)
    path.chmod(0o444)
    folder.chmod(0o555)

    def inside(target) -> bool:
        try:
            return Path(os.fspath(target)).resolve().is_relative_to(folder.resolve())
        except TypeError:  # a file descriptor
            return False

    def refuse(target):
        raise PermissionError(30, "Read-only file system", os.fspath(target))

    real_open, real_os_open = builtins.open, os.open
    real_replace, real_rename, real_unlink = os.replace, os.rename, os.unlink

    def guarded_open(file, mode="r", *args, **kwargs):
        if inside(file) and any(c in mode for c in "wax+"):
            refuse(file)
        return real_open(file, mode, *args, **kwargs)

    def guarded_os_open(file, flags, *args, **kwargs):
        if inside(file) and flags & _WRITE_FLAGS:
            refuse(file)
        return real_os_open(file, flags, *args, **kwargs)

    def guarded(real):
        def call(src, *args, **kwargs):
            for target in (src, *args[:1]):
                if inside(target):
                    refuse(target)
            return real(src, *args, **kwargs)
        return call

    monkeypatch.setattr(builtins, "open", guarded_open)
    monkeypatch.setattr(os, "open", guarded_os_open)
    monkeypatch.setattr(os, "replace", guarded(real_replace))
    monkeypatch.setattr(os, "rename", guarded(real_rename))
    monkeypatch.setattr(os, "unlink", guarded(real_unlink))
    yield path
    monkeypatch.undo()
    folder.chmod(0o755)
    path.chmod(0o644)


async def test_a_rota_edit_on_a_read_only_install_is_seen_by_a_second_duty_service(
    db_url, aiohttp_client, make_staff, read_only_rota
):
    # The guard holds for what the console used to do: a temporary file beside the rota
    # (os.open, as tempfile does), then os.replace over it; and for a plain open.
    with pytest.raises(PermissionError):
        os.open(read_only_rota.parent / ".rota.yml.tmp", os.O_RDWR | os.O_CREAT)
    with pytest.raises(PermissionError):
        os.replace(__file__, read_only_rota)
    with pytest.raises(PermissionError):
        open(read_only_rota, "w")
    settings = make_settings(db_url, ROTA_FILE=str(read_only_rota))
    first = await aiohttp_client(create_app(settings))
    second = await aiohttp_client(create_app(settings))
    dispatcher_rota = RotaSource(str(read_only_rota))  # as another process's dispatcher reads
    now = dt.datetime.now(dt.timezone.utc)
    assert [p.id for p in dispatcher_rota.get().on_call("peer_workers", now)] == ["pia"]

    make_staff("sam", "duty_manager")
    csrf = await sign_in(first, "sam")
    await sign_in(second, "sam")
    _, version = await open_rota(second)  # the second service caches the version it showed
    page, version = await open_rota(first)
    resp = await first.post("/duty/rota/change", data={
        "csrf_token": csrf, "version": version, "team": "peer_workers", "index": "0",
        "days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"], "from": "00:00", "to": "00:00",
        "staff": ["quinn"]})
    assert resp.status == 200
    page = await resp.text()
    assert "Shift changed." in page and on_call_now(page, "peer_workers") == "Quinn"

    page, _ = await open_rota(second)
    assert on_call_now(page, "peer_workers") == "Quinn"
    assert "staff:sam" in page and "changed a shift of peer_workers" in page
    assert [p.id for p in dispatcher_rota.get().on_call("peer_workers", now)] == ["quinn"]

    assert read_only_rota.read_text() == ROTA  # the file was never touched
    versions = rota_store.versions(db.get_engine())
    assert [(v["version"], v["actor"]) for v in versions] == [(2, "staff:sam"), (1, "system:import")]
    assert "changed a shift of peer_workers" in versions[0]["summary"]
