"""The OpenAPI document describes exactly the routes the app serves, with the code's enums."""

from __future__ import annotations

from bot.duty import queries
from bot.duty.app import create_app
from bot.escalation.engine import LEVELS

from .conftest import AUTH, make_settings


# The machine-facing routes; the HTML pages (/, /login, /duty...) and static files are not API.
MACHINE_PREFIXES = ("/api/", "/health", "/metrics")


def _app_routes() -> set[tuple[str, str]]:
    app = create_app(make_settings("sqlite://"))
    routes = set()
    for route in app.router.routes():
        if route.method == "HEAD":  # added by add_get
            continue
        if not route.resource.canonical.startswith(MACHINE_PREFIXES):
            continue
        routes.add((route.resource.canonical, route.method.lower()))
    return routes


async def test_document_paths_are_the_app_routes(client):
    resp = await client.get("/api/openapi.json", headers=AUTH)
    assert resp.status == 200
    doc = await resp.json()
    assert doc["openapi"].startswith("3.0")
    documented = {(path, method) for path, ops in doc["paths"].items() for method in ops}
    assert documented == _app_routes()


async def test_document_matches_the_code(client):
    doc = await (await client.get("/api/openapi.json", headers=AUTH)).json()
    schemas = doc["components"]["schemas"]
    esc = schemas["Escalation"]["properties"]
    assert esc["status"]["enum"] == list(queries.STATUSES)
    assert sorted(esc["level"]["enum"]) == sorted(LEVELS)
    # Every field the API returns is documented and required, and nothing more.
    assert set(schemas["Escalation"]["required"]) == set(esc)
    params = {p["name"] for p in doc["paths"]["/api/escalations"]["get"]["parameters"]}
    from bot.duty.api import LIST_PARAMS

    assert params == LIST_PARAMS
    # /health is documented as needing no token; everything under /api needs it.
    assert doc["paths"]["/health"]["get"]["security"] == []
    for path, ops in doc["paths"].items():
        if path.startswith("/api/"):
            assert "security" not in ops["get"] and "401" in ops["get"]["responses"], path


async def test_every_ref_resolves(client):
    doc = await (await client.get("/api/openapi.json", headers=AUTH)).json()

    def refs(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "$ref":
                    yield value
                else:
                    yield from refs(value)
        elif isinstance(node, list):
            for item in node:
                yield from refs(item)

    for ref in refs(doc):
        assert ref.startswith("#/components/schemas/")
        assert ref.rsplit("/", 1)[1] in doc["components"]["schemas"], ref
