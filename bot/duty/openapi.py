"""The OpenAPI 3.0 document served at ``/api/openapi.json``.

Hand-written on purpose: it is small, and a test checks that its paths are exactly the app's
routes and that its enums match the code, so it cannot drift unnoticed.
"""

from __future__ import annotations

from typing import Any

from bot.duty import queries
from bot.report.service import MAX_DAYS as MAX_REPORT_DAYS

DOCUMENT_VERSION = "0.1.0"


def _error(description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }
    if headers:
        response["headers"] = headers
    return response


def _header(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "required": True, "schema": schema}


def _timestamp(description: str, nullable: bool = False) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string", "format": "date-time", "description": description}
    if nullable:
        schema["nullable"] = True
    return schema


def document() -> dict[str, Any]:
    levels = list(queries.RISK_ORDER)
    statuses = list(queries.STATUSES)
    unauthorized = _error(
        "No bearer token, a wrong one, or DUTY_API_TOKEN is not configured on the server.",
        {"WWW-Authenticate": _header("The scheme to use: Bearer.", {"type": "string"})},
    )
    unavailable = _error(
        "The database is not answering. Retry after the Retry-After header.",
        {"Retry-After": _header("Seconds to wait before retrying.", {"type": "integer"})},
    )
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "Crisis line duty service",
            "version": DOCUMENT_VERSION,
            "description": (
                "Escalations (requests for a human) and their audit trail, for duty staff tools. "
                "Never returns message text or phone numbers. Every path under /api needs "
                "`Authorization: Bearer <DUTY_API_TOKEN>` or a duty console session (peer "
                "workers and duty managers). The console and web chat pages (HTML) are not "
                "part of this API and are not listed."
            ),
        },
        "security": [{"bearerAuth": []}],
        "paths": {
            "/health": {
                "get": {
                    "operationId": "health",
                    "summary": "State of the database, the Rasa server and the action server "
                    "(each part's state only with the bearer token or a staff session)",
                    "security": [],
                    "responses": {
                        "200": {
                            "description": "The database answers (status is degraded if Rasa "
                            "or the action server does not).",
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/Health"}
                                }
                            },
                        },
                        "503": {
                            "description": "The database does not answer.",
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/Health"}
                                }
                            },
                        },
                    },
                }
            },
            "/api/escalations": {
                "get": {
                    "operationId": "listEscalations",
                    "summary": "Escalations, highest risk first, then longest wait first",
                    "parameters": [
                        {
                            "name": "status",
                            "in": "query",
                            "required": False,
                            "description": "Only these statuses; comma-separated or repeated.",
                            "style": "form",
                            "explode": False,
                            "schema": {"type": "array", "items": {"type": "string", "enum": statuses}},
                        },
                        {
                            "name": "level",
                            "in": "query",
                            "required": False,
                            "description": "Only these levels; comma-separated or repeated.",
                            "style": "form",
                            "explode": False,
                            "schema": {"type": "array", "items": {"type": "string", "enum": levels}},
                        },
                        {
                            "name": "limit",
                            "in": "query",
                            "required": False,
                            "schema": {"type": "integer", "minimum": 1, "maximum": 500, "default": 100},
                        },
                    ],
                    "responses": {
                        "200": {
                            "description": "The matching escalations, each with its audit trail.",
                            "headers": {
                                "X-Result-Limit": _header(
                                    "The limit applied: at most this many escalations.",
                                    {"type": "integer", "minimum": 1, "maximum": 500},
                                )
                            },
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/EscalationList"}
                                }
                            },
                        },
                        "400": _error("An unknown parameter, status, level or a bad limit."),
                        "401": unauthorized,
                        "503": unavailable,
                    },
                }
            },
            "/api/escalations/{id}": {
                "get": {
                    "operationId": "getEscalation",
                    "summary": "One escalation by numeric id or by reference (e.g. E7K2Q)",
                    "parameters": [
                        {
                            "name": "id",
                            "in": "path",
                            "required": True,
                            "description": "Numeric id, or the reference staff quote "
                            "(case does not matter).",
                            "schema": {"type": "string"},
                        }
                    ],
                    "responses": {
                        "200": {
                            "description": "The escalation with its audit trail.",
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/Escalation"}
                                }
                            },
                        },
                        "401": unauthorized,
                        "404": _error("No escalation with that id or reference."),
                        "503": unavailable,
                    },
                }
            },
            "/metrics": {
                "get": {
                    "operationId": "metrics",
                    "summary": "Prometheus metrics: escalations by level and status, time to "
                    "acknowledgement, messages, turn latency",
                    "description": "Bearer token, or the session cookie of a duty manager or "
                    "admin signed in to the console.",
                    "responses": {
                        "200": {
                            "description": "Prometheus text exposition format 0.0.4.",
                            "content": {"text/plain": {"schema": {"type": "string"}}},
                        },
                        "401": unauthorized,
                        "403": _error("Signed in, but the role does not include metrics."),
                        "503": unavailable,
                    },
                }
            },
            "/api/report": {
                "get": {
                    "operationId": "getReport",
                    "summary": "The anonymous report's figures (as python -m bot.report and the "
                    "console page), every count under 5 given as \"fewer than 5\"",
                    "description": "Bearer token, or the session of a duty manager or a "
                    "commissioner. Both days are included, in the line's local time. With "
                    "neither parameter: the last full calendar month. docs/report.md.",
                    "parameters": [
                        {"name": name, "in": "query", "required": False,
                         "description": f"{which} day of the range, YYYY-MM-DD (give both).",
                         "schema": {"type": "string", "format": "date"}}
                        for name, which in (("from", "First"), ("to", "Last"))
                    ],
                    "responses": {
                        "200": {
                            "description": "The report; `empty` is true when the range has "
                            "no contact and no escalation.",
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/Report"}
                                }
                            },
                        },
                        "400": _error("A date that is not YYYY-MM-DD or not a real day, only "
                                      "one of the two, to before from, a range over "
                                      f"{MAX_REPORT_DAYS} days, or an unknown parameter."),
                        "401": unauthorized,
                        "403": _error("Signed in, but the role does not include the report."),
                        "503": unavailable,
                    },
                }
            },
            "/api/openapi.json": {
                "get": {
                    "operationId": "openapi",
                    "summary": "This document",
                    "responses": {
                        "200": {
                            "description": "OpenAPI 3.0 document.",
                            "content": {"application/json": {"schema": {"type": "object"}}},
                        },
                        "401": unauthorized,
                    },
                }
            },
        },
        "components": {
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "The value of DUTY_API_TOKEN on the duty service.",
                }
            },
            "schemas": {
                "Report": {
                    "type": "object",
                    "required": ["from", "to", "time_zone", "empty", "suppressed_below",
                                 "contacts", "escalations", "figures", "not_recorded"],
                    "properties": {
                        "from": {"type": "string", "format": "date"},
                        "to": {"type": "string", "format": "date"},
                        "time_zone": {"type": "string", "example": "Europe/London"},
                        "empty": {"type": "boolean"},
                        "suppressed_below": {"type": "integer", "enum": [5]},
                        "contacts": {"$ref": "#/components/schemas/ReportCount"},
                        "escalations": {"$ref": "#/components/schemas/ReportCount"},
                        "figures": {"type": "array", "items": {
                            "type": "object",
                            "required": ["key", "title", "columns", "rows"],
                            "properties": {
                                "key": {"type": "string", "example": "contacts_by_hour"},
                                "title": {"type": "string"},
                                "columns": {"type": "array", "items": {"type": "string"}},
                                "rows": {"type": "array", "description": "A label, then one "
                                         "value per further column: a count (5 or more), "
                                         "\"fewer than 5\", seconds (columns *_seconds), a "
                                         "percentage (a response rate), or \"not shown\".",
                                         "items": {"type": "array", "items": {}}},
                                "note": {"type": "string"},
                            },
                        }},
                        "not_recorded": {"type": "array", "items": {"type": "string"},
                                         "description": "What the report could not count "
                                         "in this range, and why (no survey offered)."},
                    },
                },
                "ReportCount": {
                    "description": "A count of 5 or more, or \"fewer than 5\".",
                    "oneOf": [{"type": "integer", "minimum": 5},
                              {"type": "string", "enum": ["fewer than 5"]}],
                },
                "Error": {
                    "type": "object",
                    "required": ["error", "message"],
                    "properties": {
                        "error": {"type": "string", "description": "Stable code, e.g. not_found."},
                        "message": {"type": "string"},
                    },
                },
                "Event": {
                    "type": "object",
                    "required": ["seq", "at", "kind", "actor", "reason"],
                    "properties": {
                        "seq": {"type": "integer", "description": "Position in the trail, from 1."},
                        "at": _timestamp("When it happened (UTC)."),
                        "kind": {"type": "string", "example": "created"},
                        "actor": {"type": "string", "example": "assistant"},
                        "reason": {"type": "string"},
                    },
                },
                "Escalation": {
                    "type": "object",
                    "required": [
                        "id", "ref", "level", "status", "channel", "created_at",
                        "acknowledged_at", "resolved_at", "waiting_seconds", "signals",
                        "summary", "events",
                    ],
                    "properties": {
                        "id": {"type": "integer"},
                        "ref": {"type": "string", "example": "E7K2Q"},
                        "level": {"type": "string", "enum": levels},
                        "status": {"type": "string", "enum": statuses},
                        "channel": {"type": "string", "example": "sms"},
                        "created_at": _timestamp("When the escalation was opened (UTC)."),
                        "acknowledged_at": _timestamp("When staff acknowledged it (UTC).", True),
                        "resolved_at": _timestamp("When it was closed (UTC).", True),
                        "waiting_seconds": {
                            "type": "integer",
                            "description": "How long the person waited for a human: until "
                            "acknowledgement (or closing), otherwise until now.",
                        },
                        "signals": {"type": "array", "items": {"type": "string"}},
                        "summary": {
                            "type": "object",
                            "description": "'Tell it once' summary: risk, what was suggested, "
                            "places and needs, consent. When the person refused sharing "
                            "(consent.share_summary false), only risk_level, signals, consent "
                            "and sharing keep their values; suggested, places and needs are "
                            "empty, audience is null and withheld is true.",
                            "properties": {
                                "risk_level": {"type": "string"},
                                "signals": {"type": "array", "items": {"type": "string"}},
                                "suggested": {"type": "array", "items": {"type": "string"}},
                                "places": {"type": "array", "items": {"type": "string"}},
                                "needs": {"type": "array", "items": {"type": "string"}},
                                "audience": {"type": "string", "nullable": True},
                                "consent": {
                                    "type": "object",
                                    "description": "The person's answers by topic "
                                    "(share_summary, sanctuary); a topic not asked is absent.",
                                    "additionalProperties": {"type": "boolean"},
                                },
                                "sharing": {"type": "string"},
                                "withheld": {
                                    "type": "boolean",
                                    "description": "Present and true when the person refused "
                                    "sharing and the detail is withheld.",
                                },
                            },
                        },
                        "events": {
                            "type": "array",
                            "description": "Audit trail, oldest first.",
                            "items": {"$ref": "#/components/schemas/Event"},
                        },
                    },
                },
                "EscalationList": {
                    "type": "array",
                    "description": "At most `limit` escalations (header X-Result-Limit).",
                    "items": {"$ref": "#/components/schemas/Escalation"},
                },
                "Check": {
                    "type": "object",
                    "required": ["ok", "latency_ms"],
                    "properties": {
                        "ok": {"type": "boolean"},
                        "latency_ms": {"type": "integer"},
                        "backend": {"type": "string", "description": "Database only."},
                        "status_code": {"type": "integer", "description": "HTTP checks only."},
                        "error": {"type": "string"},
                    },
                },
                "Health": {
                    "type": "object",
                    "description": "Without the bearer token or a staff session, `status` only.",
                    "required": ["status"],
                    "properties": {
                        "status": {"type": "string", "enum": ["ok", "degraded"]},
                        "database": {"$ref": "#/components/schemas/Check"},
                        "rasa": {"$ref": "#/components/schemas/Check"},
                        "actions": {"$ref": "#/components/schemas/Check"},
                    },
                },
            },
        },
    }
