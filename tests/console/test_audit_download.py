"""A duty manager downloads an escalation's signed audit trail from the console (docs/audit.md);
the download is recorded (a checkpoint naming them) and the file verifies with the key."""

from __future__ import annotations

import io

from sqlalchemy import select

from bot.escalation.__main__ import main
from bot.store.db import transaction
from bot.store.models import AuditCheckpoint, Escalation

from .conftest import sign_in


def _ref(escalation_id: int) -> str:
    with transaction() as s:
        return s.get(Escalation, escalation_id).ref


async def test_a_duty_manager_downloads_a_trail_that_verifies(client, make_staff, seed, tmp_path):
    ref = _ref(seed("urgent", trail=["acknowledged"]))
    make_staff("maya", "duty_manager")
    await sign_in(client, "maya")
    page = await client.get(f"/duty/e/{ref}")
    assert f'href="/duty/e/{ref}/audit.jsonl"' in await page.text()
    for fmt in ("jsonl", "csv"):
        resp = await client.get(f"/duty/e/{ref.lower()}/audit.{fmt}")
        assert resp.status == 200
        assert resp.headers["Content-Disposition"] == f'attachment; filename="audit-{ref}.{fmt}"'
        path = tmp_path / f"audit.{fmt}"
        path.write_bytes(await resp.read())
        out = io.StringIO()
        assert main(["verify", str(path)], out=out) == 0, out.getvalue()
        # created, acknowledged, and the opening of the page just now
        assert "3 entries across 1 escalations" in out.getvalue()
    with transaction() as s:
        recorded = s.execute(select(AuditCheckpoint.reason, AuditCheckpoint.actor)).all()
    assert recorded == [("export", "staff:maya"), ("export", "staff:maya")]


async def test_a_peer_worker_gets_no_download(client, make_staff, seed):
    ref = _ref(seed("urgent"))
    make_staff("ellen", "peer_worker")
    await sign_in(client, "ellen")
    page = await client.get(f"/duty/e/{ref}")
    assert "audit.jsonl" not in await page.text()
    assert (await client.get(f"/duty/e/{ref}/audit.jsonl")).status == 403
    with transaction() as s:
        assert s.execute(select(AuditCheckpoint)).first() is None


async def test_an_unknown_escalation_or_format_is_404_and_records_nothing(client, make_staff,
                                                                         seed):
    ref = _ref(seed("urgent"))
    make_staff("maya", "duty_manager")
    await sign_in(client, "maya")
    assert (await client.get("/duty/e/ENOPE/audit.jsonl")).status == 404
    assert (await client.get(f"/duty/e/{ref}/audit.xml")).status == 404
    with transaction() as s:
        assert s.execute(select(AuditCheckpoint)).first() is None
