"""Every route of the duty service, in one place (the OpenAPI test reads this table)."""

from __future__ import annotations

from aiohttp import web

from bot.duty import api, health


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/health", health.health, name="health")
    app.router.add_get("/api/escalations", api.list_escalations, name="escalations")
    app.router.add_get("/api/escalations/{id}", api.get_escalation, name="escalation")
    app.router.add_get("/api/openapi.json", api.openapi_document, name="openapi")
