"""Tables, targets and the plot for ``make bench`` and ``make faults``.

The README's generated parts sit between ``<!-- bench:begin -->`` / ``<!-- bench:end -->`` and
``<!-- faults:begin -->`` / ``<!-- faults:end -->``; everything else in it is written by hand.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

ACK_TARGET_MS = 50.0
ALERT_TARGET_MS = 1000.0
EMERGENCY_TARGET_MS = 1000.0
DUPLICATE_TARGET = 1 / 1000


def _f(x: Any, unit: str = "") -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:,.1f}{unit}" if abs(x) < 100 else f"{x:,.0f}{unit}"
    return f"{x}{unit}"


def level_line(f: dict[str, Any]) -> str:
    lat = f["latency_ms"]
    out = (f"{f['channel']} x{f['concurrency']}: {f['turns']} turns, "
           f"{f['throughput_turns_per_s']} turns/s, latency ms p50 {_f(lat['p50'])} "
           f"p95 {_f(lat['p95'])} p99 {_f(lat['p99'])}, statuses {f['statuses']}")
    split = f.get("latency_ms_by_priority")
    if split and split["risk_first"]["n"]:
        out += (f", p95 of ordinary turns {_f(split['ordinary']['p95'])} ms, of risk-first"
                f" {_f(split['risk_first']['p95'])} ms")
    if f.get("emergency_ms", {}).get("n"):
        out += f", 999 reply p99 {_f(f['emergency_ms']['p99'])} ms"
    alert = f.get("staff_alert_ms")
    if alert and alert.get("conversations_with_risk"):
        out += (f", staff alert p99 {_f(alert['p99'])} ms "
                f"({alert['not_alerted']} of {alert['conversations_with_risk']} not alerted)")
    stages = f.get("sms_stages_ms")
    if stages and stages.get("turn", {}).get("n"):
        out += "; in the line (p50 / p95 ms): " + ", ".join(
            f"{label} {_f(stages[k]['p50'])} / {_f(stages[k]['p95'])}"
            for k, label in (("to_claim", "stored -> claimed"), ("turn", "claimed -> finished"),
                             ("part_to_twilio", "a part written -> posted"),
                             ("stored_to_last_part", "stored -> last part posted")))
    return out


def _level(results: dict[str, Any], system: str, channel: str,
           concurrency: Optional[int] = None) -> Optional[dict[str, Any]]:
    levels = [lv for lv in results.get(system, {}).get("levels", []) if lv["channel"] == channel]
    if not levels:
        return None
    if concurrency is None:
        return max(levels, key=lambda lv: lv["concurrency"])
    return next((lv for lv in levels if lv["concurrency"] == concurrency), None)


def latest_faults(results_dir: Path) -> Optional[dict[str, Any]]:
    files = sorted(results_dir.glob("faults-*.json"))
    return json.loads(files[-1].read_text()) if files else None


def targets(results: dict[str, Any], faults: Optional[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each target: what, measured, met (True / False / None when not measured)."""
    rows: list[dict[str, Any]] = []

    def add(what: str, target: str, measured: str, met: Optional[bool]) -> None:
        rows.append({"what": what, "target": target, "measured": measured, "met": met})

    base = _level(results, "baseline", "rest")
    for channel in ("rest", "sms"):
        lv = _level(results, "line", channel)
        if lv is None:
            continue
        c = lv["concurrency"]
        base_c = _level(results, "baseline", "rest", c) or base
        if base_c:
            t, bt = lv["throughput_turns_per_s"], base_c["throughput_turns_per_s"]
            add(f"throughput, {channel.upper()}, {c} conversations",
                f">= stock bot ({_f(bt)} turns/s)", f"{_f(t)} turns/s ({_ratio(t, bt)})",
                t >= bt if bt else None)
            p, bp = lv["latency_ms"]["p95"], base_c["latency_ms"]["p95"]
            add(f"turn latency p95, {channel.upper()}, {c} conversations",
                f"<= stock bot ({_f(bp)} ms)", f"{_f(p)} ms ({_ratio(p, bp)})",
                (p <= bp) if p is not None and bp is not None else None)
        em = lv.get("emergency_ms", {})
        add(f"emergency reply p99, {channel.upper()}, {c} conversations",
            f"<= {EMERGENCY_TARGET_MS:.0f} ms, 999 in every answer to imminent risk",
            f"{_f(em.get('p99'))} ms over {em.get('n', 0)}; "
            f"{lv.get('imminent_without_999', 0)} without 999",
            (em.get("p99") is not None and em["p99"] <= EMERGENCY_TARGET_MS
             and not lv.get("imminent_without_999")) if em.get("n") else None)
        al = lv.get("staff_alert_ms", {})
        if al.get("conversations_with_risk"):
            add(f"risk -> staff alert p99, {channel.upper()}, {c} conversations",
                f"<= {ALERT_TARGET_MS:.0f} ms",
                f"{_f(al.get('p99'))} ms over {al.get('n', 0)}; "
                f"{al['not_alerted']} not alerted",
                al.get("p99") is not None and al["p99"] <= ALERT_TARGET_MS
                and al["not_alerted"] == 0)
    ack = results.get("sms_ack")
    if ack:
        add("SMS webhook ack p99 at 100/s", f"<= {ACK_TARGET_MS:.0f} ms", f"{_f(ack['p99'])} ms",
            ack["p99"] is not None and ack["p99"] <= ACK_TARGET_MS)
    if faults:
        s = faults["summary"]
        when = faults.get("date", "")[:10]
        add("messages lost under faults", "0", f"{s['messages_lost']} of {s['messages_sent']}"
            f" ({when})", s["messages_lost"] == 0)
        add("staff alerts lost under faults", "0",
            f"{s['alerts_due'] - s['alerts_delivered']} of {s['alerts_due']} ({when})",
            s["alerts_due"] == s["alerts_delivered"])
        rate = s["duplicates"] / max(s["replies_delivered"], 1)
        add("duplicate replies under faults", "<= 1 in 1,000",
            f"{s['duplicates']} in {s['replies_delivered']:,} ({when})", rate <= DUPLICATE_TARGET)
    else:
        add("messages / alerts lost, duplicates under faults", "0 / 0 / <= 1 in 1,000",
            "not measured yet: run make faults", None)
    return rows


def _ratio(a: Optional[float], b: Optional[float]) -> str:
    if a is None or not b:
        return "-"
    return f"x{a / b:.2f} of the stock bot"


def _met(m: Optional[bool]) -> str:
    return {True: "met", False: "**NOT met**", None: "-"}[m]


def markdown(results: dict[str, Any], png: str) -> str:
    m = results["machine"]
    lines = [
        f"Run {results['date']} on commit `{results['commit']}`: {m['cpus']} CPUs, Python "
        f"{m['python']}, Rasa {m['rasa']}, load average at start {m['load_average_at_start']}, "
        f"database {results['config']['database']}, {results['config']['duration_s']:.0f} s per "
        f"level, {results['config']['risk_share']:.0%} of conversations show risk. "
        f"Command: `{results['command']}`" + (" (quick run)" if results.get("quick") else "") + ".",
        "",
        "| target | wanted | measured | |",
        "|---|---|---|---|",
    ]
    for t in results.get("targets", []):
        lines.append(f"| {t['what']} | {t['target']} | {t['measured']} | {_met(t['met'])} |")
    lines += ["", "Turn latency (ms; SMS: webhook posted to the last reply part accepted by the "
              "fake Twilio API) and throughput; for a stock bot level run before and after the "
              "line, the pooled figure and then each run's in brackets:", "",
              "| system | channel | conversations | turns | turns/s | p50 | p95 | p99 | "
              "not ok |", "|---|---|---|---|---|---|---|---|---|"]
    for system, label in (("line", "line"), ("baseline", "stock bot")):
        for lv in results.get(system, {}).get("levels", []):
            lat = lv["latency_ms"]
            bad = {k: v for k, v in lv["statuses"].items() if k != "ok"}
            # A level measured before and after the line: the pooled figures, then each run's.
            runs = lv.get("runs") or []
            each = (" (" + " / ".join(_f(r["throughput_turns_per_s"]) for r in runs) + ")"
                    if runs else "")
            each_p95 = (" (" + " / ".join(_f(r["latency_ms_p95"]) for r in runs) + ")"
                        if runs else "")
            lines.append(
                f"| {label} | {lv['channel'].upper()} | {lv['concurrency']} | {lv['turns']} | "
                f"{_f(lv['throughput_turns_per_s'])}{each} | {_f(lat['p50'])} | "
                f"{_f(lat['p95'])}{each_p95} | {_f(lat['p99'])} | {_fmt_statuses(bad)} |")
    lines += ["", "Line / stock bot (REST at the same concurrency; above 1 is more throughput, "
              "or a longer p95):", "", "| channel | conversations | throughput ratio | p95 ratio |",
              "|---|---|---|---|"]
    for lv in results.get("line", {}).get("levels", []):
        b = _level(results, "baseline", "rest", lv["concurrency"])
        if b:
            tr = lv["throughput_turns_per_s"] / b["throughput_turns_per_s"] \
                if b["throughput_turns_per_s"] else None
            pr = (lv["latency_ms"]["p95"] / b["latency_ms"]["p95"]
                  if lv["latency_ms"]["p95"] and b["latency_ms"]["p95"] else None)
            lines.append(f"| {lv['channel'].upper()} | {lv['concurrency']} | "
                         f"{_f(tr and round(tr, 2))} | {_f(pr and round(pr, 2))} |")
    lines += ["", "Safety paths (ms): emergency reply = imminent-risk message to the reply "
              "with 999; staff alert = first risk message of a conversation to the first alert "
              "at the fake Twilio API; SMS first reply and webhook acknowledgement under load:",
              "", "| channel | conversations | 999 reply p50 / p99 (n) | staff alert p50 / p99 "
              "(n, not alerted) | SMS first reply p50 / p95 | SMS webhook ack p50 / p99 |",
              "|---|---|---|---|---|---|"]
    for lv in results.get("line", {}).get("levels", []):
        em, al = lv["emergency_ms"], lv.get("staff_alert_ms", {})
        fr, ak = lv.get("first_reply_ms", {}), lv.get("webhook_ack_ms", {})
        lines.append(
            f"| {lv['channel'].upper()} | {lv['concurrency']} | {_f(em['p50'])} / "
            f"{_f(em['p99'])} ({em['n']}) | {_f(al.get('p50'))} / {_f(al.get('p99'))} "
            f"({al.get('n', 0)}, {al.get('not_alerted', 0)}) | "
            f"{_f(fr.get('p50'))} / {_f(fr.get('p95'))} | {_f(ak.get('p50'))} / "
            f"{_f(ak.get('p99'))} |")
    lines += ["", "Cold start (process start to ready; Rasa: `/status` answering with the model "
              "loaded) and resident memory (MiB, at rest / peak under load):", "",
              "| system | process | cold start s | RSS at rest | RSS peak |", "|---|---|---|---|---|"]
    for system, label in (("line", "line"), ("baseline", "stock bot")):
        block = results.get(system)
        if not block:
            continue
        peaks: dict[str, float] = {}
        for lv in block["levels"]:
            for k, v in lv.get("rss_mb_peak", {}).items():
                peaks[k] = max(peaks.get(k, 0.0), v)
        for name in sorted(set(block["rss_mb_at_rest"]) | set(peaks)):
            lines.append(f"| {label} | {name} | {_f(block['cold_start_s'].get(name))} | "
                         f"{_f(block['rss_mb_at_rest'].get(name))} | {_f(peaks.get(name))} |")
        if "launch_to_ready" in block["cold_start_s"]:
            lines.append(f"| {label} | all three (`bot.run`: migrate, directory, start) | "
                         f"{_f(block['cold_start_s']['launch_to_ready'])} | | |")
        if block["cold_start_s"].get("nlu_process") is not None:
            lines.append(f"| {label} | rasa's NLU process, from launch (the NLU thread parses "
                         f"until then; its memory is in rasa's) | "
                         f"{_f(block['cold_start_s']['nlu_process'])} | | |")
    ack = results.get("sms_ack")
    if ack:
        lines += ["", f"SMS webhook acknowledgement (`bench/sms_ack.py`, {ack['requests']} "
                  f"signed webhooks at {ack['rate_per_s']}/s, {ack['database']}): p50 "
                  f"{_f(ack['p50'])} ms, p95 {_f(ack['p95'])} ms, p99 {_f(ack['p99'])} ms, "
                  f"max {_f(ack['max'])} ms."]
    profiles = [(lv, lv["profile"]) for lv in results.get("line", {}).get("levels", [])
                if lv.get("profile")]
    for lv, prof in profiles:
        lines += ["", f"py-spy, {lv['channel'].upper()} at {lv['concurrency']} conversations "
                  "(busy: share of samples not waiting; then shares of the busy samples):", ""]
        for name, p in prof.items():
            top = "; ".join(f"`{f}` {s:.0%}" for f, s in p["top_self"][:4])
            ours = "; ".join(f"`{f}` {s:.0%}" for f, s in p["top_ours_inclusive"][:3])
            lines.append(f"- {name}, busy {p.get('busy_share', 1):.0%} of {p['samples']} "
                         f"samples: on top {top}"
                         + (f"; our code (inclusive) {ours}" if ours else ""))
    lines += ["", f"![latency and throughput]({png})"]
    return "\n".join(lines)


def _fmt_statuses(bad: dict[str, int]) -> str:
    return ", ".join(f"{v} {k}" for k, v in sorted(bad.items())) or "0"


def plot(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    series = [("line", "rest", "line, REST", "tab:blue"), ("line", "sms", "line, SMS", "tab:green"),
              ("baseline", "rest", "stock bot, REST", "tab:gray")]
    for system, channel, label, colour in series:
        levels = [lv for lv in results.get(system, {}).get("levels", [])
                  if lv["channel"] == channel and lv["latency_ms"]["p95"] is not None]
        if not levels:
            continue
        xs = [lv["concurrency"] for lv in levels]
        ax1.plot(xs, [lv["latency_ms"]["p95"] for lv in levels], "o-", color=colour,
                 label=f"{label} p95")
        ax1.plot(xs, [lv["latency_ms"]["p50"] for lv in levels], "o--", color=colour,
                 alpha=0.6, label=f"{label} p50")
        ax2.plot(xs, [lv["throughput_turns_per_s"] for lv in levels], "o-", color=colour,
                 label=label)
    from matplotlib.ticker import NullFormatter, ScalarFormatter

    levels = sorted({lv["concurrency"] for lv in results.get("line", {}).get("levels", [])})
    for ax in (ax1, ax2):
        ax.set_xlabel("conversations at a time")
        ax.set_xscale("log")
        ax.set_xticks(levels)
        ax.xaxis.set_major_formatter(ScalarFormatter())
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    ax1.set_ylabel("turn latency, ms")
    ax1.set_yscale("log")
    ax2.set_ylabel("turns per second")
    fig.suptitle(f"make bench {results['date'][:10]} ({results['machine']['cpus']} CPUs)",
                 fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def update_readme(readme: Path, section: str, body: str) -> None:
    """Replace the generated section ``section`` of the README (added at the end if absent)."""
    begin, end = f"<!-- {section}:begin -->", f"<!-- {section}:end -->"
    text = readme.read_text() if readme.exists() else ""
    block = f"{begin}\n{body}\n{end}"
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        text = head + block + rest.split(end, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    readme.write_text(text)
