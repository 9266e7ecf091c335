"""``make faults``: people keep texting while the line's parts are killed and its services fail.

    PYTHONPATH=. .venv/bin/python bench/faults.py            # 20 kills, ~9 min
    FAULT_KILLS=40 make faults                               # more kills (a longer run)
    PYTHONPATH=. .venv/bin/python bench/faults.py --quick    # 4 kills, 10 s outage, ~5 min

What happens, on PostgreSQL (a database created for the run and dropped after):

- Simulated people text the line through signed SMS webhooks (the durable inbox), as Twilio
  would: a webhook that is refused or cannot connect is sent again with the same MessageSid.
- ``kill -9`` of the Rasa server, the action server and the duty service at random moments
  (at least 20 in all; ``FAULT_KILLS`` or ``--kills`` for more); ``bot.run``, the supervisor
  ``make run`` uses, restarts them.
- The fake Twilio API answers a share of requests with 500, with 429, or not at all (the
  request times out).
- The database is stopped for 30 s (``pg_ctlcluster ... stop``; it is this machine's shared
  server, so it is started again in a ``finally``, and a detached guard process starts it
  even if this script is killed).

Then the load stops, the line drains, and every message is accounted for from the fake
Twilio API and the line's tables: received (acknowledged), answered (at least one reply
delivered), lost, duplicated (the same reply part to the same message delivered twice), and
staff alerts due (one per escalation, and one for each risk conversation) and delivered. A
delivery is a message the fake accepted; the outbox's look-ups (list requests, made before
posting a part that may already be there) are counted apart and deliver nothing.
Exit status 1 when any message or alert was lost.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import load, report  # noqa: E402
from bench.line import CACHE_DIR, PSEUDONYM_KEY, Line  # noqa: E402

RESULTS_DIR = ROOT / "bench" / "results"
PROCESSES = ("rasa", "actions", "duty")


# --- the shared PostgreSQL server -----------------------------------------------------------

def pg_cluster() -> tuple[str, str]:
    versions = sorted(os.listdir("/etc/postgresql"))
    if not versions:
        raise RuntimeError("no PostgreSQL cluster under /etc/postgresql")
    return versions[-1], "main"


def pg_ctl(action: str) -> int:
    version, name = pg_cluster()
    cmd = ["pg_ctlcluster", "--skip-systemctl-redirect", version, name, action]
    if action == "stop":
        cmd[1:1] = ["-m", "fast"]
    return subprocess.run(cmd, capture_output=True, timeout=120).returncode


def pg_running() -> bool:
    return subprocess.run(["pg_isready", "-h", "127.0.0.1", "-q"], timeout=10).returncode == 0


def ensure_pg_running() -> None:
    """Start the shared server if it is down; wait until it accepts connections."""
    if pg_running():
        return
    pg_ctl("start")
    deadline = time.monotonic() + 60
    while not pg_running() and time.monotonic() < deadline:
        time.sleep(0.5)


def pg_guard(after_s: float) -> subprocess.Popen:
    """A detached process that starts PostgreSQL after ``after_s`` whatever happens to us."""
    version, name = pg_cluster()
    return subprocess.Popen(
        ["sh", "-c", f"sleep {int(after_s)}; pg_ctlcluster --skip-systemctl-redirect "
                     f"{version} {name} start >/dev/null 2>&1 || true"],
        start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )


# --- the run ----------------------------------------------------------------------------------

@dataclass
class Timeline:
    started: float = field(default_factory=time.monotonic)
    kills: list[dict[str, Any]] = field(default_factory=list)
    outages: list[dict[str, Any]] = field(default_factory=list)  # DB stopped
    down: list[dict[str, Any]] = field(default_factory=list)  # a process not answering
    notes: list[str] = field(default_factory=list)

    def rel(self, t: float) -> float:
        return round(t - self.started, 1)

    def windows(self) -> list[tuple[float, float]]:
        out = [(o["from"], o["to"]) for o in self.outages]
        out += [(d["from"], d["to"]) for d in self.down if d["name"] == "rasa"]
        return out


def kill_plan(kills: int, load_s: float, rng: random.Random) -> list[tuple[float, str]]:
    """``kills`` moments in the load phase, each process about a third of them, never the same
    process twice within 15 s (the supervisor gives up after 5 restarts in a minute)."""
    targets = [PROCESSES[i % 3] for i in range(kills)]
    rng.shuffle(targets)
    plan: list[tuple[float, str]] = []
    for target in targets:
        for _ in range(200):
            at = rng.uniform(10.0, load_s - 15.0)
            if all(abs(at - t) >= 15.0 for t, n in plan if n == target) and \
                    all(abs(at - t) >= 2.0 for t, _ in plan):
                break
        plan.append((at, target))
    return sorted(plan)


async def watch(line: Line, timeline: Timeline, stop: asyncio.Event) -> None:
    """Record when each process stops answering and when it answers again."""
    since: dict[str, float] = {}
    while not stop.is_set():
        state = await asyncio.to_thread(line.readiness)
        now = time.monotonic()
        for name, ok in state.items():
            if not ok and name not in since:
                since[name] = now
            elif ok and name in since:
                timeline.down.append({"name": name, "from": since.pop(name), "to": now})
        await asyncio.sleep(0.5)
    for name, t in since.items():
        timeline.down.append({"name": name, "from": t, "to": time.monotonic()})


async def chaos(line: Line, fake: load.FakeTwilio, timeline: Timeline, args: argparse.Namespace,
                rng: random.Random) -> None:
    """Kills, Twilio failures and the database outage, on a plan fixed at the start."""
    plan = kill_plan(args.kills, args.load_s, rng)
    outage_at = rng.uniform(0.3, 0.6) * args.load_s
    events: list[tuple[float, str]] = plan + ([(outage_at, "database")] if args.outage_s else [])
    events.sort()
    fake.faults = load.Faults(p500=args.p500, p429=args.p429, p_timeout=args.p_timeout)
    t0 = time.monotonic()
    outage_task: Optional[asyncio.Task] = None
    for at, what in events:
        await asyncio.sleep(max(0.0, t0 + at - time.monotonic()))
        if what == "database":
            outage_task = asyncio.create_task(db_outage(timeline, args.outage_s))
            continue
        pid = await asyncio.to_thread(line.kill, what)
        for _ in range(50):  # between a death and its restart there is no process to kill
            if pid is not None:
                break
            await asyncio.sleep(0.1)
            pid = await asyncio.to_thread(line.kill, what)
        timeline.kills.append({"at": time.monotonic(), "name": what, "pid": pid})
        print(f"  t+{timeline.rel(time.monotonic()):6.1f} s  kill -9 {what} (pid {pid})",
              flush=True)
    await asyncio.sleep(max(0.0, t0 + args.load_s - time.monotonic()))
    if outage_task is not None:
        await outage_task
    fake.faults = load.Faults()


async def db_outage(timeline: Timeline, seconds: float) -> None:
    guard = pg_guard(seconds + 30)
    began = time.monotonic()
    print(f"  t+{timeline.rel(began):6.1f} s  database stopped for {seconds:.0f} s", flush=True)
    try:
        await asyncio.to_thread(pg_ctl, "stop")
        await asyncio.sleep(seconds)
    finally:
        await asyncio.to_thread(ensure_pg_running)
        ended = time.monotonic()
        timeline.outages.append({"from": began, "to": ended})
        try:
            os.killpg(guard.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        print(f"  t+{timeline.rel(ended):6.1f} s  database started again", flush=True)


def drained(db_url: str, sids: list[str]) -> tuple[int, int]:
    """(messages not finished, outbox rows not finished) among ``sids`` and all rows."""
    from sqlalchemy import bindparam, create_engine, text

    engine = create_engine(db_url, future=True)
    try:
        with engine.connect() as conn:
            open_in = conn.execute(text(
                "SELECT count(*) FROM sms_inbox WHERE message_sid IN :s AND status NOT IN "
                "('done', 'failsafe', 'failed', 'keyword')"
            ).bindparams(bindparam("s", expanding=True)), {"s": sids or [""]}).scalar_one()
            open_out = conn.execute(text(
                "SELECT count(*) FROM sms_outbox WHERE status IN ('pending', 'sending')"
            )).scalar_one()
            open_jobs = conn.execute(text(
                "SELECT count(*) FROM escalation_alerts WHERE status IN ('pending', 'claimed') "
                "AND due_at <= now()"
            )).scalar_one()
        return open_in, open_out + open_jobs
    finally:
        engine.dispose()


def snapshot(db_url: str) -> dict[str, list[dict[str, Any]]]:
    from sqlalchemy import create_engine, text

    engine = create_engine(db_url, future=True)
    try:
        with engine.connect() as conn:
            def rows(sql: str) -> list[dict[str, Any]]:
                return [dict(r._mapping) for r in conn.execute(text(sql))]

            return {
                "inbox": rows("SELECT id, message_sid, pseudonym, status, attempts FROM sms_inbox"),
                "outbox": rows("SELECT id, inbox_id, pseudonym, kind, body, part, status, "
                               "twilio_sid, error_code FROM sms_outbox"),
                "escalations": rows("SELECT ref, conversation_id, level, status "
                                    "FROM escalations"),
            }
    finally:
        engine.dispose()


def account(turns: list[load.TurnResult], fake: load.FakeTwilio,
            db: dict[str, list[dict[str, Any]]], timeline: Timeline) -> dict[str, Any]:
    """Every message sent, every reply delivered, every alert due: what happened to each."""
    from bot.sms.pseudonym import pseudonym

    inbox_by_id = {r["id"]: r for r in db["inbox"]}
    inbox_by_sid = {r["message_sid"]: r for r in db["inbox"]}
    out_by_sid = {r["twilio_sid"]: r for r in db["outbox"] if r["twilio_sid"]}
    out_by_text: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in db["outbox"]:
        out_by_text.setdefault((r["pseudonym"], r["body"]), []).append(r)
    pid_of = {n: pseudonym(n, PSEUDONYM_KEY) for n in {d.to for d in fake.deliveries}}

    identities: dict[tuple, int] = {}
    causes: dict[tuple, list[str]] = {}
    answered: set[str] = set()
    unmatched = 0
    for d in fake.deliveries:
        row = out_by_sid.get(d.sid)
        how = "recorded"
        if row is None:
            how = "not recorded as sent"
            # Accepted by Twilio but not recorded as sent (killed between the two, or the
            # database was down): the same text for the same person is the same reply.
            # Rows with no delivery on record first (the one this must have been).
            candidates = sorted(out_by_text.get((pid_of[d.to], d.body), []),
                                key=lambda r: r["twilio_sid"] in fake.by_sid)
            row = candidates[0] if candidates else None
        if row is None:
            unmatched += 1
            continue
        if d.is_alert:
            m = load.REF_RE.search(d.body)
            lead = d.body.split(" ", 1)[0]
            key = ("alert", d.to, m.group(1) if m else d.body, lead)
        elif row["inbox_id"] is not None and row["inbox_id"] in inbox_by_id:
            sid = inbox_by_id[row["inbox_id"]]["message_sid"]
            answered.add(sid)
            key = ("reply", sid, row["part"], row["body"])
        else:
            key = ("other", row["pseudonym"], row["kind"], row["body"], row["id"])
        identities[key] = identities.get(key, 0) + 1
        causes.setdefault(key, []).append(f"{how} (row {row['id']})")
    duplicates = {k: n - 1 for k, n in identities.items() if n > 1}
    # Why each duplicate happened, without any text: which rows, and the message's attempts.
    duplicate_details = [
        {"kind": k[0], "part": k[2] if k[0] == "reply" else None,
         "inbox_attempts": inbox_by_sid.get(k[1], {}).get("attempts") if k[0] == "reply"
         else None, "deliveries": causes[k]}
        for k in duplicates]
    reply_dups = sum(n for k, n in duplicates.items() if k[0] != "alert")
    alert_dups = sum(n for k, n in duplicates.items() if k[0] == "alert")

    sent = [t for t in turns if t.message_sid]
    received = [t for t in sent if t.status != "not_acked"]
    lost = [t for t in sent if t.message_sid not in answered]
    windows = timeline.windows()
    in_fault = [t for t in sent if any(a <= t.sent_at <= b for a, b in windows)]

    alerted_refs = {m.group(1) for d in fake.alerts() if (m := load.REF_RE.search(d.body))}
    escalated_convs = {e["conversation_id"] for e in db["escalations"]}
    risk_convs = {t.conversation for t in received if t.risk in ("urgent", "imminent")}
    no_escalation = sorted(risk_convs - escalated_convs)
    not_alerted = [e["ref"] for e in db["escalations"] if e["ref"] not in alerted_refs]
    statuses: dict[str, int] = {}
    for r in db["inbox"]:
        statuses[r["status"]] = statuses.get(r["status"], 0) + 1
    return {
        "messages_sent": len(sent),
        "messages_received": len(received),
        "messages_answered": len(sent) - len(lost),
        "messages_lost": len(lost),
        "lost_not_acknowledged": sum(1 for t in lost if t.status == "not_acked"),
        "lost_in_inbox_status": _count(inbox_by_sid.get(t.message_sid, {}).get("status", "absent")
                                       for t in lost),
        "lost_turns": _count(f"{t.script}#{t.index + 1}" for t in lost),
        "answered_with_failsafe": statuses.get("failsafe", 0),
        "inbox_statuses": statuses,
        "sent_during_a_fault": len(in_fault),
        "sent_during_a_fault_answered": sum(1 for t in in_fault if t.message_sid in answered),
        "webhook_retries": sum(max(0, t.ack_attempts - 1) for t in sent),
        "replies_delivered": sum(1 for d in fake.deliveries if not d.is_alert),
        "duplicates": reply_dups,
        "alert_duplicates": alert_dups,
        "duplicate_details": duplicate_details,
        "deliveries_not_matched": unmatched,
        "escalations": len(db["escalations"]),
        "risk_conversations": len(risk_convs),
        "risk_conversations_without_escalation": len(no_escalation),
        "alerts_due": len(db["escalations"]) + len(no_escalation),
        "alerts_delivered": len(db["escalations"]) - len(not_alerted),
        "escalations_not_alerted": len(not_alerted),
        "outbox_failed": sum(1 for r in db["outbox"] if r["status"] == "failed"),
        # Parts in doubt that the look-up found already accepted, so not posted again.
        "found_by_lookup": sum(1 for r in db["outbox"] if r["error_code"] == "found_at_twilio"),
        "lookups": sum(n for k, n in fake.counts.items() if k.startswith("list_")),
        "fake_twilio": dict(fake.counts),
    }


def _count(items: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for x in items:
        out[x] = out.get(x, 0) + 1
    return out


async def run(args: argparse.Namespace) -> dict[str, Any]:
    os.environ["PSEUDONYM_KEY"] = PSEUDONYM_KEY
    from bot import settings as settings_module

    settings_module.reset()
    rng = random.Random(args.seed)
    fake = load.FakeTwilio(seed=args.seed)
    await fake.start()
    line = Line(fake.url, db_kind="postgresql", keep_logs=args.keep_logs)
    timeline = Timeline()
    results: dict[str, Any] = {
        "date": dt.datetime.now().isoformat(timespec="seconds"),
        "command": args.command,
        "config": {k: getattr(args, k) for k in (
            "kills", "conversations", "load_s", "outage_s", "p500", "p429", "p_timeout",
            "drain_s", "seed", "quick")},
    }
    try:
        print(f"starting the line (PostgreSQL, {line.tmp}) ...", flush=True)
        await asyncio.to_thread(line.start)
        timeline.started = time.monotonic()
        tracker = load.TurnTracker(line.db_url, fake, poll_s=0.2)
        tracker.start()
        stop_load, stop_watch = asyncio.Event(), asyncio.Event()
        level = load.LevelResult("sms", args.conversations, args.load_s)
        watcher = asyncio.create_task(watch(line, timeline, stop_watch))
        people = asyncio.create_task(load.run_sms(
            line.rasa_url, tracker, args.conversations, args.load_s + 3600, seed=args.seed,
            think_s=(1.0, 3.0), retry_for_s=args.retry_s, turn_timeout_s=args.turn_wait_s,
            stop=stop_load, level=level))
        print(f"load: {args.conversations} people texting for {args.load_s:.0f} s; "
              f"{args.kills} kills; Twilio 500/429/time-out "
              f"{args.p500:.0%}/{args.p429:.0%}/{args.p_timeout:.0%}", flush=True)
        try:
            await chaos(line, fake, timeline, args, rng)
        finally:
            stop_load.set()
            fake.faults = load.Faults()
        print(f"  t+{timeline.rel(time.monotonic()):6.1f} s  load stopped; "
              "waiting for the people's last messages", flush=True)
        await people
        print(f"  t+{timeline.rel(time.monotonic()):6.1f} s  draining (up to "
              f"{args.drain_s:.0f} s)", flush=True)
        deadline = time.monotonic() + args.drain_s
        sids = [t.message_sid for t in level.turns if t.status != "not_acked"]
        while time.monotonic() < deadline:
            try:
                open_in, open_out = await asyncio.to_thread(drained, line.db_url, sids)
            except Exception as exc:  # noqa: BLE001  report and keep waiting
                timeline.notes.append(f"drain check failed: {type(exc).__name__}")
                open_in, open_out = -1, -1
            if open_in == 0 and open_out == 0:
                break
            await asyncio.sleep(2.0)
        await asyncio.sleep(3.0)  # the last accepted parts reach the fake's record
        stop_watch.set()
        await watcher
        await tracker.stop()
        db = await asyncio.to_thread(snapshot, line.db_url)
        summary = account(level.turns, fake, db, timeline)
        results["summary"] = summary
        results["timeline"] = {
            # A kill that found no process (dead and not yet restarted) is listed, not counted.
            "kills": [{"t": timeline.rel(k["at"]), "name": k["name"], "killed": k["pid"] is not None}
                      for k in timeline.kills],
            "db_outages": [{"from": timeline.rel(o["from"]), "to": timeline.rel(o["to"])}
                           for o in timeline.outages],
            "down": [{"name": d["name"], "from": timeline.rel(d["from"]),
                      "seconds": round(d["to"] - d["from"], 1)} for d in timeline.down],
            "notes": timeline.notes,
        }
        results["turns"] = level.figures()
        restarts = [d for d in timeline.down if d["name"] in PROCESSES]
        results["restart_seconds"] = {
            name: load.summary([d["to"] - d["from"] for d in restarts if d["name"] == name])
            for name in PROCESSES}
        results["supervisor_alive"] = line.supervisor is not None and \
            line.supervisor.poll() is None
    finally:
        await asyncio.to_thread(ensure_pg_running)
        await asyncio.to_thread(line.stop)
        await fake.stop()
    return results


def markdown(results: dict[str, Any]) -> str:
    s, c = results["summary"], results["config"]
    ok = s["messages_lost"] == 0 and s["alerts_due"] == s["alerts_delivered"]
    dup_rate = s["duplicates"] / max(s["replies_delivered"], 1)
    kills: dict[str, int] = {}
    for k in results["timeline"]["kills"]:
        if k.get("killed", True):
            kills[k["name"]] = kills.get(k["name"], 0) + 1
    lines = [
        f"Run {results['date']}: `{results['command']}`. {c['conversations']} people texting "
        f"for {c['load_s']:.0f} s; {sum(kills.values())} kills "
        f"({', '.join(f'{n} {k}' for k, n in sorted(kills.items()))}); the database stopped "
        f"for {c['outage_s']:.0f} s; fake Twilio failing {c['p500']:.0%} with 500, "
        f"{c['p429']:.0%} with 429, {c['p_timeout']:.0%} by time-out. "
        "Result: **" + ("nothing lost" if ok else
                        f"{s['messages_lost']} messages and "
                        f"{s['alerts_due'] - s['alerts_delivered']} staff alerts lost") + "**.",
        "",
        "| | count |", "|---|---|",
        f"| messages sent by people | {s['messages_sent']} |",
        f"| received (webhook acknowledged) | {s['messages_received']} |",
        f"| answered | {s['messages_answered']} (fail-safe reply: "
        f"{s['answered_with_failsafe']}) |",
        f"| lost | {s['messages_lost']} |",
        f"| sent while the database or the Rasa server was down / answered | "
        f"{s['sent_during_a_fault']} / {s['sent_during_a_fault_answered']} |",
        f"| webhook retries (as Twilio would) | {s['webhook_retries']} |",
        f"| reply parts delivered / duplicated | {s['replies_delivered']} / "
        f"{s['duplicates']} ({dup_rate * 1000:.1f} in 1,000) |",
        f"| outbox look-ups at Twilio / parts found already accepted (not posted again) | "
        f"{s.get('lookups', 0)} / {s.get('found_by_lookup', 0)} |",
        f"| staff alerts due / delivered | {s['alerts_due']} / {s['alerts_delivered']} "
        f"(duplicated: {s['alert_duplicates']}) |",
        f"| risk conversations without an escalation | "
        f"{s['risk_conversations_without_escalation']} of {s['risk_conversations']} |",
        f"| fake Twilio answers | {s['fake_twilio']} |",
    ]
    if s["messages_lost"]:
        lines += ["", "Lost messages by script turn: " + ", ".join(
            f"{k} {v}" for k, v in sorted(s["lost_turns"].items())) + "."]
    if not results.get("supervisor_alive", True):
        lines += ["", "**The supervisor (`bot.run`) stopped the whole line during the run** "
                  "(a process failed more than 5 times in a minute)."]
    rs = results.get("restart_seconds", {})
    if rs:
        lines += ["", "Time each process was not answering (s, p50 / max (n); after a kill, "
                  "and for the duty service's `/health` also while the database was down): "
                  + "; ".join(f"{n} {_f(v.get('p50'))} / {_f(v.get('max'))} ({v.get('n', 0)})"
                              for n, v in rs.items()) + "."]
    return "\n".join(lines)


def _f(x: Any) -> str:
    return "-" if x is None else f"{x:.1f}"


def parse_args(argv: Optional[list[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        default=os.environ.get("BENCH_QUICK", "") not in ("", "0"))
    parser.add_argument("--kills", type=int,
                        default=int(os.environ.get("FAULT_KILLS", "0") or 0) or None)
    parser.add_argument("--conversations", type=int)
    parser.add_argument("--load-s", type=float, dest="load_s")
    parser.add_argument("--outage-s", type=float, dest="outage_s",
                        help="seconds the database is stopped (0: not stopped; default 30)")
    parser.add_argument("--p500", type=float, default=0.05)
    parser.add_argument("--p429", type=float, default=0.05)
    parser.add_argument("--p-timeout", type=float, dest="p_timeout", default=0.02)
    parser.add_argument("--drain-s", type=float, dest="drain_s", default=300.0)
    parser.add_argument("--retry-s", type=float, dest="retry_s", default=600.0,
                        help="how long a webhook is retried (Twilio-like)")
    parser.add_argument("--turn-wait-s", type=float, dest="turn_wait_s", default=150.0,
                        help="how long a person waits for an answer before texting again")
    parser.add_argument("--seed", type=int, default=int(time.time()) % 100000)
    parser.add_argument("--keep-logs", action="store_true")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    if args.quick:
        args.kills = args.kills or 4
        args.conversations = args.conversations or 6
        args.outage_s = 10.0 if args.outage_s is None else args.outage_s
        args.load_s = args.load_s or max(90.0, 25.0 * args.kills)
    else:
        args.kills = max(args.kills or 20, 20)
        args.conversations = args.conversations or 20
        args.outage_s = 30.0 if args.outage_s is None else args.outage_s
        args.load_s = args.load_s or max(420.0, 21.0 * args.kills)
    args.out = args.out or (CACHE_DIR / "results" if args.quick else RESULTS_DIR)
    args.command = (("BENCH_QUICK=1 " if args.quick else "") + "make faults" if not argv
                    else "bench/faults.py " + " ".join(argv))
    if not argv and os.environ.get("FAULT_KILLS"):
        args.command = f"FAULT_KILLS={os.environ['FAULT_KILLS']} " + args.command
    return args


def main(argv: Optional[list[str]] = None) -> int:
    args = parse_args(argv)
    if not Path("/etc/postgresql").is_dir():
        print("make faults needs this machine's PostgreSQL (pg_ctlcluster)", file=sys.stderr)
        return 2

    def on_term(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt  # unwinds through every finally: the database is restarted

    signal.signal(signal.SIGTERM, on_term)
    try:
        results = asyncio.run(run(args))
    finally:
        ensure_pg_running()
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"faults-{dt.date.today().isoformat()}.json"
    path.write_text(json.dumps(results, indent=1, default=str) + "\n")
    text = markdown(results)
    print()
    print(text)
    if args.out == RESULTS_DIR:
        report.update_readme(ROOT / "bench" / "README.md", "faults", text)
    print(f"\nresults: {path}")
    s = results["summary"]
    lost = s["messages_lost"] + (s["alerts_due"] - s["alerts_delivered"])
    return 1 if lost else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or None))
