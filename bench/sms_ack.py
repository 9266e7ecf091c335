"""How fast the SMS webhook acknowledges Twilio, at a steady 100 requests/s, while the bot answers.

Three processes on loopback: this one runs the channel's sanic app with a stub agent that
answers each message after ``--agent-delay`` seconds (so the worker and the sender are busy the
whole time, as in the Rasa server); a child runs a fake Twilio API (aiohttp) that accepts the
replies; another child is an open-loop client firing signed webhooks at a fixed rate whatever
the latency (a slow answer must not slow the next request down, which would hide queueing).

    PYTHONPATH=. .venv/bin/python bench/sms_ack.py            # 1,000 requests at 100/s, SQLite
    PYTHONPATH=. .venv/bin/python bench/sms_ack.py --database-url postgresql+psycopg2://...

Bounded: ``--count`` requests (default 1,000) and ``--max-seconds`` (default 60) in all.
The issue's target: p99 <= 50 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ACCOUNT_SID = "AC" + "b" * 32
AUTH_TOKEN = "bench-auth-token"
PUBLIC_BASE = "https://line.example.org"


def _configure_env(database_url: str, api_url: str, sender: str) -> None:
    os.environ.update({
        "DATABASE_URL": database_url,
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "TWILIO_NUMBER": "+447700900000",
        "TWILIO_API_URL": api_url,
        "PUBLIC_BASE_URL": PUBLIC_BASE,
        "PSEUDONYM_KEY": "bench-pseudonym-key",
        # The stub bot only sleeps: let every turn run at once, so that the bot answers
        # everything it receives and the sender is as busy as the webhook (the real line's
        # turn gate, bot/channels/gate.py, would hold CPU-bound turns to a few at a time).
        "TURN_SLOTS": "1000",
        # Who posts the replies (``--sender``): this process by default, as the Rasa server
        # does on SQLite (on PostgreSQL that is more work than the Rasa server has there);
        # ``duty`` starts the duty service as a child to post them (the line's default on
        # PostgreSQL, SMS_SENDER=duty, woken by a NOTIFY). On these 2 cores the acknowledgement
        # was slower with it (p99 80 and 97 ms against 58 and 39): the duty service's CPU is
        # more than it takes off this process.
        "SMS_SENDER": sender,
    })
    from bot import settings as settings_module

    settings_module.reset()


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))
    return ordered[index]


async def run_fake(port: int) -> None:
    """Role ``fake``: a Twilio Messages API that accepts everything and counts."""
    from aiohttp import web

    delivered = 0

    async def create(request: web.Request) -> web.Response:
        nonlocal delivered
        await request.post()
        delivered += 1
        return web.json_response({"sid": "SM" + uuid.uuid4().hex, "status": "queued"}, status=201)

    async def count(_: web.Request) -> web.Response:
        return web.json_response({"delivered": delivered})

    app = web.Application()
    app.router.add_post("/2010-04-01/Accounts/{sid}/Messages.json", create)
    app.router.add_get("/count", count)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    print("ready", flush=True)
    await asyncio.Event().wait()


async def run_client(args: argparse.Namespace) -> None:
    """Role ``client``: open-loop signed webhooks at ``--rate``; prints JSON results."""
    import aiohttp
    from twilio.request_validator import RequestValidator

    validator = RequestValidator(AUTH_TOKEN)
    path = "/webhooks/sms/webhook"
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    errors: dict[str, int] = {}

    async def one(session: aiohttp.ClientSession, i: int) -> None:
        params = {
            "MessageSid": "SM" + uuid.uuid4().hex,
            "AccountSid": ACCOUNT_SID,
            "From": f"+4477009{i % args.senders:05d}",
            "To": "+447700900000",
            "Body": f"message {i}: I can't sleep and my head is loud tonight",
            "NumMedia": "0",
        }
        headers = {"X-Twilio-Signature": validator.compute_signature(PUBLIC_BASE + path, params)}
        started = time.perf_counter()
        try:
            async with session.post(args.url + path, data=params, headers=headers) as resp:
                await resp.read()
                statuses[resp.status] = statuses.get(resp.status, 0) + 1
        except aiohttp.ClientError as exc:  # reported by type, as status 0
            statuses[0] = statuses.get(0, 0) + 1
            errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
        latencies.append((time.perf_counter() - started) * 1000)

    deadline = time.monotonic() + args.max_seconds
    # Idle connections are dropped by the client before sanic's 5 s keep-alive timeout, so the
    # two never race to reuse and close one connection (which shows as a client error).
    connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=2)
    async with aiohttp.ClientSession(connector=connector) as session:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        tasks = []
        for i in range(args.count):
            delay = t0 + i / args.rate - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            if time.monotonic() > deadline:
                break
            tasks.append(asyncio.create_task(one(session, i)))
        sent_for = loop.time() - t0
        if tasks:
            await asyncio.wait(tasks, timeout=max(1.0, deadline - time.monotonic()))
    print(json.dumps({"latencies": latencies, "statuses": statuses, "sent_for": sent_for,
                      "errors": errors}))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def main(args: argparse.Namespace) -> int:
    """Role ``server`` (default): the channel under test, with the other two as processes."""
    me = [sys.executable, str(Path(__file__).resolve())]
    fake_port = _free_port()
    # Plain subprocesses: sanic switches the loop policy to uvloop, whose child watcher
    # asyncio's subprocess support cannot use.
    fake = subprocess.Popen([*me, "--role", "fake", "--port", str(fake_port)],
                            stdout=subprocess.PIPE)
    fake.stdout.readline()  # "ready"
    try:
        return await _serve_and_measure(args, me, fake_port, fake.pid)
    finally:
        # Also when the measurement fails: an orphaned fake would keep the caller's pipe open.
        fake.terminate()
        fake.wait(10)


async def _serve_and_measure(args: argparse.Namespace, me: list[str], fake_port: int,
                             fake_pid: int) -> int:
    if args.sender == "duty" and not args.database_url:
        raise SystemExit("--sender duty needs --database-url postgresql+psycopg2://...")
    tmp = tempfile.TemporaryDirectory()
    database_url = args.database_url or f"sqlite:///{Path(tmp.name) / 'bench.db'}"
    _configure_env(database_url, f"http://127.0.0.1:{fake_port}", args.sender)

    from bot.store import db, migrate

    migrate.upgrade(database_url)
    duty = await _start_duty(tmp.name) if args.sender == "duty" else None
    try:
        return await _measure(args, me, fake_port, fake_pid, database_url, duty)
    finally:
        if duty is not None:
            duty.terminate()
            duty.wait(10)
        db.dispose_all()
        tmp.cleanup()


async def _start_duty(workdir: str) -> subprocess.Popen:
    """The duty service, as the line runs it beside the Rasa server on PostgreSQL: it posts
    the replies this process writes. Ready when its ``/health`` answers (whatever it says
    of Rasa and the action server, which are not running here)."""
    import aiohttp

    port = _free_port()
    with open(Path(workdir) / "duty.log", "wb") as log:
        duty = subprocess.Popen(
            [sys.executable, "-m", "bot.duty"], stdout=log, stderr=subprocess.STDOUT,
            env={**os.environ, "DUTY_HOST": "127.0.0.1", "DUTY_PORT": str(port)},
        )
    deadline = time.monotonic() + 120
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline and duty.poll() is None:
            try:
                async with session.get(f"http://127.0.0.1:{port}/health") as resp:
                    await resp.read()
                    return duty
            except aiohttp.ClientError:
                await asyncio.sleep(0.5)
    duty.kill()
    raise RuntimeError("the duty service did not start: " + (Path(workdir) / "duty.log")
                       .read_text(errors="replace")[-2000:])


def _cpu_seconds(pid: int) -> float:
    """User and system CPU of another process so far, from ``/proc``."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _machine_cpu_seconds() -> float:
    """CPU seconds every process on the machine has used so far (all cores), from ``/proc``."""
    from bench.profiling import machine_jiffies

    return machine_jiffies()[0] / os.sysconf("SC_CLK_TCK")


def _children_cpu_seconds() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _checkpoints(database_url: str) -> dict[str, float] | None:
    """PostgreSQL's checkpoint counters (``pg_stat_bgwriter``): a checkpoint's writes and
    fsyncs share the disk with every commit the webhook waits for."""
    if not database_url.startswith("postgresql"):
        return None
    from sqlalchemy import create_engine, text

    engine = create_engine(database_url, future=True)
    try:
        with engine.connect() as conn:
            row = conn.execute(text(
                "SELECT checkpoints_timed + checkpoints_req AS checkpoints, buffers_checkpoint,"
                " checkpoint_write_time + checkpoint_sync_time AS checkpoint_ms"
                " FROM pg_stat_bgwriter")).one()
        return dict(row._mapping)
    except Exception:  # noqa: BLE001 a figure to print, not one the measurement needs
        return None
    finally:
        engine.dispose()


def _other_load(others_cpu: float, wall: float, before: dict | None,
                after: dict | None) -> str:
    """What else the machine did while the load ran: it explains a slow run."""
    text = (f"  the rest of the machine while the load ran (PostgreSQL included):"
            f" {others_cpu / wall:.0%} of one core ({os.cpu_count()} cores)")
    if before and after:
        text += (f"; PostgreSQL checkpoints {after['checkpoints'] - before['checkpoints']:.0f}"
                 f" ({after['buffers_checkpoint'] - before['buffers_checkpoint']:.0f} buffers,"
                 f" {after['checkpoint_ms'] - before['checkpoint_ms']:.0f} ms writing and syncing)")
    return text


async def _measure(args: argparse.Namespace, me: list[str], fake_port: int, fake_pid: int,
                   database_url: str, duty: subprocess.Popen | None) -> int:
    import aiohttp
    from sanic import Sanic

    from bot.channels.sms import SmsInput
    answered = 0

    async def agent(message) -> None:
        nonlocal answered
        await asyncio.sleep(args.agent_delay)  # the bot "thinking"
        await message.output_channel.send_text_message(message.sender_id, "I'm here. Go on.")
        answered += 1

    channel = SmsInput()
    app = Sanic("sms_ack_bench", configure_logging=False)
    app.blueprint(channel.blueprint(agent), url_prefix="/webhooks/sms")
    port = _free_port()
    server = await app.create_server(
        host="127.0.0.1", port=port, return_asyncio_server=True, access_log=False
    )
    await server.startup()
    await server.before_start()
    await server.after_start()

    deadline = time.monotonic() + args.max_seconds
    checkpoints0 = await asyncio.to_thread(_checkpoints, database_url)
    cpu0, wall0 = time.process_time(), time.monotonic()
    duty_cpu0 = _cpu_seconds(duty.pid) if duty else 0.0
    fake_cpu0, machine0, children0 = (_cpu_seconds(fake_pid), _machine_cpu_seconds(),
                                      _children_cpu_seconds())
    client = subprocess.Popen(
        [*me, "--role", "client", "--url", f"http://127.0.0.1:{port}", "--count",
         str(args.count), "--rate", str(args.rate), "--senders", str(args.senders),
         "--max-seconds", str(args.max_seconds)],
        stdout=subprocess.PIPE,
    )
    out, _ = await asyncio.to_thread(client.communicate, timeout=args.max_seconds + 30)
    wall = max(time.monotonic() - wall0, 1e-9)
    own_cpu = time.process_time() - cpu0
    cpu_share = own_cpu / wall
    duty_cpu = _cpu_seconds(duty.pid) - duty_cpu0 if duty else 0.0
    duty_share = duty_cpu / wall if duty else None
    # The client has been reaped (its CPU is in RUSAGE_CHILDREN); the fake is still running.
    ours = (own_cpu + duty_cpu + _cpu_seconds(fake_pid) - fake_cpu0
            + _children_cpu_seconds() - children0)
    others_cpu = max(0.0, _machine_cpu_seconds() - machine0 - ours)
    checkpoints1 = await asyncio.to_thread(_checkpoints, database_url)
    result = json.loads(out.decode().strip().splitlines()[-1])
    latencies, sent_for = result["latencies"], result["sent_for"]
    statuses = {int(k): v for k, v in result["statuses"].items()}
    # Let the bot finish answering what it received (bounded by the deadline).
    while answered < len(latencies) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    await asyncio.sleep(0.5)
    async with aiohttp.ClientSession() as session:
        async with session.get(f"http://127.0.0.1:{fake_port}/count") as resp:
            delivered = (await resp.json())["delivered"]

    await server.before_stop()
    await server.close()
    await server.after_stop()

    if args.latencies_out:
        Path(args.latencies_out).write_text(json.dumps(latencies))
    backend = database_url.split(":", 1)[0]
    print(f"sms webhook acknowledgement: {len(latencies)} requests at {args.rate:.0f}/s "
          f"over {sent_for:.1f} s, {args.senders} senders, {backend}, "
          f"bot turn {args.agent_delay * 1000:.0f} ms, replies posted by the "
          f"{'duty service' if duty else 'server'}")
    print(f"  status codes: {dict(sorted(statuses.items()))} {result.get('errors') or ''}")
    if latencies:
        print(f"  latency ms: p50 {statistics.median(latencies):.1f}  "
              f"p95 {_percentile(latencies, 95):.1f}  p99 {_percentile(latencies, 99):.1f}  "
              f"max {max(latencies):.1f}")
    print(f"  bot turns finished: {answered}; replies accepted by the fake Twilio: {delivered}")
    print(f"  server process CPU while the load ran: {cpu_share:.0%} of one core"
          + (f"; the duty service's: {duty_share:.0%}" if duty_share is not None else ""))
    print(_other_load(others_cpu, wall, checkpoints0, checkpoints1))
    ok = bool(latencies) and _percentile(latencies, 99) <= 50 and statuses.get(200) == len(
        latencies)
    print("  target p99 <= 50 ms:", "met" if ok else "NOT met")
    return 0 if ok else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=100.0, help="requests per second")
    parser.add_argument("--senders", type=int, default=200, help="distinct phone numbers")
    parser.add_argument("--agent-delay", type=float, default=0.2, help="seconds per bot turn")
    parser.add_argument("--max-seconds", type=float, default=60.0)
    parser.add_argument("--database-url", default=None, help="default: a temporary SQLite file")
    parser.add_argument("--sender", choices=("server", "duty"), default="server",
                        help="who posts the replies: this process, or the duty service "
                        "(PostgreSQL only; the line's default there)")
    parser.add_argument("--latencies-out", help="write every latency (ms, in send order) here")
    parser.add_argument("--role", choices=("server", "client", "fake"), default="server",
                        help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    # The channel logs one line per message; at 100/s that is noise here.
    logging.basicConfig(level=logging.WARNING)
    arguments = parser.parse_args()
    if arguments.role == "fake":
        asyncio.run(run_fake(arguments.port))
    elif arguments.role == "client":
        asyncio.run(run_client(arguments))
    else:
        sys.exit(asyncio.run(main(arguments)))
