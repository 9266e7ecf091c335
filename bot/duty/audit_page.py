"""The console's download of an escalation's audit trail, for duty managers (docs/audit.md).

``GET /duty/e/{ref}/audit.jsonl`` and ``.../audit.csv``: the same export as
``python -m bot.escalation export --ref``, which anyone with ``AUDIT_KEY`` checks with
``python -m bot.escalation verify FILE``. Making it writes a signed checkpoint whose actor is
the member of staff (reason ``export``): the download is audited before it is served.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from sqlalchemy.engine import Engine

from bot.duty import auth
from bot.duty.errors import ApiError
from bot.duty.keys import SETTINGS_KEY
from bot.duty.rundb import run_db
from bot.escalation import audit_export

CONTENT_TYPES = {"jsonl": "application/jsonl", "csv": "text/csv"}


def _collect(_engine: Engine, scope: audit_export.Scope, actor: str, url: str) -> Any:
    try:
        return audit_export.collect(scope, actor, url)
    except audit_export.ExportError:
        return None


async def audit_download(request: web.Request) -> web.StreamResponse:
    who = auth.require(request, "audit_export")
    ref = request.match_info["ref"].upper()
    fmt = request.match_info["fmt"]
    if not ref.isalnum() or len(ref) > 12 or fmt not in CONTENT_TYPES:
        raise ApiError(404, "not_found", "No such escalation.")
    found = await run_db(request, _collect, audit_export.Scope(ref=ref), who.actor,
                         request.app[SETTINGS_KEY].database_url)
    if found is None:
        raise ApiError(404, "not_found", "No such escalation.")
    header, events, cp = found
    return web.Response(
        text=audit_export.render(header, events, cp, fmt), content_type=CONTENT_TYPES[fmt],
        charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="audit-{ref}.{fmt}"',
                 "Cache-Control": "no-store"})
