"""Every route of the duty service, in one place (the OpenAPI and access tests read this table)."""

from __future__ import annotations

from aiohttp import web

from bot.duty import (
    accounts_page, api, audit_page, blocks_console, console, feedback_page, health, metrics,
    report_page, rota_console, signin_page, webchat_page,
)
from bot.duty.keys import TAKEOVER_KEY
from bot.settings import ROOT

STATIC_DIR = ROOT / "bot" / "duty" / "static"


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/", webchat_page.webchat_page, name="webchat")
    # The web chat's and console's CSS and JS, and the vendored socket.io client. Public:
    # the sign-in page and the carers' page need them before anyone signs in.
    app.router.add_static("/static/", STATIC_DIR, name="static", append_version=True)
    app.router.add_get("/health", health.health, name="health")
    app.router.add_get("/metrics", metrics.metrics, name="metrics")

    app.router.add_get("/api/escalations", api.list_escalations, name="escalations")
    app.router.add_get("/api/escalations/{id}", api.get_escalation, name="escalation")
    app.router.add_get("/api/report", report_page.report_json, name="report_json")
    app.router.add_get("/api/openapi.json", api.openapi_document, name="openapi")
    # The anonymous report: public only with REPORT_PUBLIC (404 otherwise).
    app.router.add_get("/report", report_page.public_report, name="public_report")

    app.router.add_get("/login", console.login_form, name="login")
    app.router.add_post("/login", console.login_submit, name="login_submit")
    app.router.add_get("/login/next", signin_page.next_step, name="login_next")
    app.router.add_post("/login/password", signin_page.new_password, name="login_password")
    app.router.add_post("/login/code", signin_page.code, name="login_code")
    app.router.add_post("/login/enrol", signin_page.enrol, name="login_enrol")
    app.router.add_post("/logout", console.logout, name="logout")
    app.router.add_get("/duty", console.queue_page, name="queue")
    app.router.add_get("/duty/queue.json", console.queue_json, name="queue_json")
    app.router.add_get("/duty/e/{ref}", console.conversation_page, name="conversation")
    app.router.add_get("/duty/e/{ref}/messages.json", console.messages_json, name="messages_json")
    app.router.add_post("/duty/e/{ref}/read-anyway", console.read_anyway, name="read_anyway")
    app.router.add_post("/duty/e/{ref}/acknowledge", console.acknowledge, name="acknowledge")
    app.router.add_post("/duty/e/{ref}/resolve", console.resolve, name="resolve")
    app.router.add_get("/duty/e/{ref}/audit.{fmt}", audit_page.audit_download, name="audit")
    app.router.add_get("/duty/sanctuary", console.sanctuary_page, name="sanctuary")
    app.router.add_post("/duty/sanctuary/beds", console.sanctuary_beds, name="sanctuary_beds")
    app.router.add_get("/duty/feedback", feedback_page.feedback_page, name="feedback")
    app.router.add_get("/duty/report", report_page.report_page, name="report")
    app.router.add_get("/duty/report.csv", report_page.report_csv, name="report_csv")
    app.router.add_get("/duty/rota", rota_console.rota_page, name="rota")
    app.router.add_post("/duty/rota/add", rota_console.add_shift, name="rota_add")
    app.router.add_post("/duty/rota/change", rota_console.change_shift, name="rota_change")
    app.router.add_post("/duty/rota/remove", rota_console.remove_shift, name="rota_remove")
    app.router.add_post("/duty/e/{ref}/block", blocks_console.block_sender, name="block_sender")
    app.router.add_get("/duty/blocks", blocks_console.blocks_page, name="blocks")
    app.router.add_post("/duty/blocks/{id}/unblock", blocks_console.unblock_sender,
                        name="unblock_sender")
    app.router.add_get("/duty/staff", accounts_page.staff_page, name="staff")
    app.router.add_post("/duty/staff/add", accounts_page.add, name="staff_add")
    app.router.add_post("/duty/staff/disable", accounts_page.disable, name="staff_disable")
    app.router.add_post("/duty/staff/enable", accounts_page.enable, name="staff_enable")
    app.router.add_post("/duty/staff/reset-password", accounts_page.reset_password,
                        name="staff_reset_password")
    app.router.add_post("/duty/staff/reset-2fa", accounts_page.reset_second_factor,
                        name="staff_reset_2fa")
    if TAKEOVER_KEY in app:
        # Only with a takeover engine (issue 5): without one these buttons do not exist.
        app.router.add_post("/duty/e/{ref}/takeover", console.take_over, name="take_over")
        app.router.add_post("/duty/e/{ref}/reply", console.reply, name="reply")
        app.router.add_post("/duty/e/{ref}/handback", console.hand_back, name="hand_back")
        app.router.add_post("/duty/e/{ref}/refer", console.refer, name="refer")
