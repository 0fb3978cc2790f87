#!/usr/bin/env python3
"""Medians across rounds of letterbox-bench JSON results, as Markdown tables
comparing Letterbox with its peer (Postfix for SMTP, Dovecot for the rest).

usage: summarize.py RESULTS_DIR
RESULTS_DIR holds letterbox/WORKLOAD_rN.json and peer/WORKLOAD_rN.json, and
peer/smtp_drain_rN.json ({"seconds": S}: how long Postfix took after the last
250 reply until its queue was empty, i.e. everything was in Dovecot), and
SERVER/imaptest_MODE_rN.json (bench/imaptest_parse.py) for MODE churn and
steady, or imaptest_skipped.txt (why imaptest did not run).
"""

import json
import statistics
import sys
from pathlib import Path

HIGHER, LOWER = "higher is better", "lower is better"


def load(d, server, workload):
    out = []
    for p in sorted((d / server).glob(f"{workload}_r*.json")):
        try:
            out.append(json.loads(p.read_text()))
        except (OSError, ValueError):
            pass
    return out


def med(values):
    v = [x for x in values if x is not None]
    return statistics.median(v) if v else None


def op(report, name, key):
    for row in report.get("operations", []):
        if row.get("op") == name:
            return row.get(key)
    return None


def fmt(x):
    if x is None:
        return "n/a"
    if isinstance(x, float) and not x.is_integer():
        if abs(x) >= 100:
            return f"{x:.0f}"
        if abs(x) >= 10:
            return f"{x:.1f}"
        return f"{x:.2f}"
    return f"{int(x)}"


def ratio(a, b):
    if a is None or b is None or a == 0 or b == 0:
        return "n/a"
    return f"{a / b:.2f}"


def table(title, peer, rows, lb, pr, note=""):
    """rows: (label, extractor(report) -> number, direction)"""
    lines = [f"### {title}", ""]
    lines.append(f"Rounds: Letterbox {len(lb)}, {peer} {len(pr)} (figures are medians across rounds).")
    if note:
        lines += ["", note]
    lines += ["", f"| metric | Letterbox | {peer} | ratio Letterbox/{peer} | better |", "| --- | ---: | ---: | ---: | --- |"]
    for label, f, direction in rows:
        a = med([f(r) for r in lb])
        b = med([f(r) for r in pr])
        lines.append(f"| {label} | {fmt(a)} | {fmt(b)} | {ratio(a, b)} | {direction} |")
    return "\n".join(lines) + "\n"


def main():
    d = Path(sys.argv[1])
    out = []

    # ---- SMTP
    lb, pr = load(d, "letterbox", "smtp"), load(d, "peer", "smtp")
    drains = {p.name: json.loads(p.read_text())["seconds"] for p in sorted((d / "peer").glob("smtp_drain_r*.json"))}
    for i, r in enumerate(pr):
        r["_drain"] = list(drains.values())[i] if i < len(drains) else None

    def e2e(r):
        drain = r.get("_drain", 0.0)
        if drain is None:
            return None
        return r["messages"] / (r["seconds"] + drain) if r.get("seconds") else None

    out.append(
        table(
            "SMTP (letterbox-bench smtp) — Letterbox vs Postfix (+ LMTP into Dovecot)",
            "Postfix",
            [
                ("messages accepted/s (250 after DATA)", lambda r: r.get("per_second"), HIGHER),
                ("end-to-end messages/s (until in the mailbox)", e2e, HIGHER),
                ("Postfix queue drain after last 250, s", lambda r: r.get("_drain", 0.0), LOWER),
                ("DATA reply latency p50, ms", lambda r: r.get("p50_ms"), LOWER),
                ("DATA reply latency p90, ms", lambda r: r.get("p90_ms"), LOWER),
                ("DATA reply latency p99, ms", lambda r: r.get("p99_ms"), LOWER),
                ("failed connections", lambda r: r.get("failures"), LOWER),
            ],
            lb,
            pr,
            "Letterbox answers 250 once the message is stored in the mailbox; Postfix answers 250 once the message "
            "is in its queue, and delivers to Dovecot over LMTP afterwards. The end-to-end row divides the messages "
            "by the bench time plus the time Postfix needed to empty its queue (0 for Letterbox).",
        )
    )

    # ---- IMAP
    lb, pr = load(d, "letterbox", "imap"), load(d, "peer", "imap")
    rows = [
        ("operations/s (all commands)", lambda r: op(r, "total", "per_second"), HIGHER),
        ("sessions/s", lambda r: r["sessions"] / r["seconds"] if r.get("seconds") else None, HIGHER),
        ("latency p50, ms (all commands)", lambda r: op(r, "total", "p50_ms"), LOWER),
        ("latency p99, ms (all commands)", lambda r: op(r, "total", "p99_ms"), LOWER),
        ("errors (NO/BAD/dropped)", lambda r: op(r, "total", "errors"), LOWER),
        ("failed sessions", lambda r: r.get("session_failures"), LOWER),
    ]
    names = []
    for r in lb + pr:
        for row in r.get("operations", []):
            if row["op"] != "total" and row["op"] not in names:
                names.append(row["op"])
    for n in names:
        rows.append((f"`{n}` p50, ms", lambda r, n=n: op(r, n, "p50_ms"), LOWER))
    out.append(table("IMAP (letterbox-bench imap) — Letterbox vs Dovecot", "Dovecot", rows, lb, pr))

    # ---- POP3
    lb, pr = load(d, "letterbox", "pop3"), load(d, "peer", "pop3")
    out.append(
        table(
            "POP3 (letterbox-bench pop3) — Letterbox vs Dovecot",
            "Dovecot",
            [
                ("sessions/s (whole mailbox downloaded)", lambda r: r.get("sessions_per_second"), HIGHER),
                ("messages/s", lambda r: r.get("messages_per_second"), HIGHER),
                ("MB/s", lambda r: r.get("megabytes_per_second"), HIGHER),
                ("RETR latency p50, ms", lambda r: (r.get("retr") or {}).get("p50_ms"), LOWER),
                ("RETR latency p99, ms", lambda r: (r.get("retr") or {}).get("p99_ms"), LOWER),
                ("failed sessions", lambda r: r.get("session_failures"), LOWER),
                ("errors (-ERR/dropped)", lambda r: op(r, "total", "errors"), LOWER),
            ],
            lb,
            pr,
        )
    )

    # ---- IDLE
    lb, pr = load(d, "letterbox", "idle"), load(d, "peer", "idle")

    def mem(key):
        return lambda r: (r.get("memory_after") or {}).get(key)

    out.append(
        table(
            "IDLE (letterbox-bench idle) — Letterbox vs Dovecot (deliveries via Postfix)",
            "Dovecot",
            [
                ("connections held", lambda r: r.get("connections_held"), HIGHER),
                ("connections failed", lambda r: r.get("connections_failed"), LOWER),
                ("connections opened/s (LOGIN+SELECT+IDLE)", lambda r: r.get("opened_per_second"), HIGHER),
                ("server processes counted", mem("processes"), LOWER),
                ("server RSS with all connections, MB", lambda r: r.get("rss_mb"), LOWER),
                ("RSS per connection, KB", lambda r: r.get("rss_per_connection_kb"), LOWER),
                ("PSS per connection, KB", lambda r: r.get("pss_per_connection_kb"), LOWER),
                ("notification delay p50 (first connection), ms", lambda r: r["notify_first"]["p50_ms"], LOWER),
                ("notification delay p99 (first connection), ms", lambda r: r["notify_first"]["p99_ms"], LOWER),
                ("notification delay p50 (all of the user's connections), ms", lambda r: r["notify_all"]["p50_ms"], LOWER),
                ("notification delay max (all), ms", lambda r: r["notify_all"]["max_ms"], LOWER),
                ("samples missed (no EXISTS in time)", lambda r: r.get("samples_missed"), LOWER),
            ],
            lb,
            pr,
            "Letterbox is one process (`--pid`); Dovecot is its master and every descendant (`--pid <master> "
            "--pid-children`: one `imap` process per connection, plus login, auth, anvil, log, config...). "
            "RSS counts shared pages once per process, so for Dovecot PSS is the fairer memory figure. "
            "Deliveries for the delay go to Letterbox's SMTP listener, resp. to Postfix (queue, then LMTP to Dovecot).",
        )
    )
    # ---- imaptest
    skipped = d / "imaptest_skipped.txt"
    for mode, title, what in IMAPTEST_MODES:
        heading = f"imaptest {mode} ({title}) — Letterbox vs Dovecot"
        if skipped.exists():
            out.append(f"### {heading}\n\nSkipped: {skipped.read_text().strip()}. See bench/README.md for how to build imaptest.\n")
            continue
        out.append(imaptest_table(d, mode, heading, what))
    print("\n".join(out))


# imaptest's short command names (its column headers), in its order.
IMAPTEST_COMMANDS = {
    "Logi": "LOGIN",
    "Auth": "AUTHENTICATE",
    "List": 'LIST "" *',
    "Stat": "STATUS (MESSAGES UNSEEN RECENT)",
    "Sele": "SELECT",
    "Fetc": "FETCH of up to 100 messages (random ENVELOPE, BODYSTRUCTURE, HEADER.FIELDS...)",
    "Fet2": "FETCH of one message (random BODY.PEEK[], [HEADER], [TEXT], [1])",
    "Stor": "STORE of random flags",
    "Dele": "STORE +FLAGS \\Deleted",
    "Expu": "EXPUNGE",
    "Appe": "APPEND",
    "Logo": "LOGOUT",
}

IMAPTEST_MODES = [
    (
        "churn",
        "login churn: clients log in, work, log out",
        "imaptest's default workload: every client logs in, runs its random sequence of commands, logs out, and a "
        "new client takes its place.",
    ),
    (
        "steady",
        "steady state: logout=0, sessions stay logged in",
        "`logout=0`: every client logs in once and keeps running commands in the same session, as real clients do.",
    ),
]


def imaptest_table(d, mode, heading, what):
    lb, pr = load(d, "letterbox", f"imaptest_{mode}"), load(d, "peer", f"imaptest_{mode}")

    def per_cmd(key, name):
        return lambda r: (r.get(key) or {}).get(name)

    def end_start(r):
        a, b = r.get("end_cmds_per_second"), r.get("start_cmds_per_second")
        return a / b if a is not None and b else None

    rows = [
        ("commands/s (all commands, whole run)", lambda r: r.get("cmds_per_second"), HIGHER),
        ("commands/s at the start (first 10 s)", lambda r: r.get("start_cmds_per_second"), HIGHER),
        ("commands/s at the end (last 10 s)", lambda r: r.get("end_cmds_per_second"), HIGHER),
        ("end / start", end_start, HIGHER),
        ("commands in Totals", lambda r: r.get("total_commands"), HIGHER),
        ("LOGINs/s", per_cmd("per_second_by_command", "Logi"), HIGHER),
        ("imaptest error lines (unexpected replies, disconnects)", lambda r: r.get("errors"), LOWER),
    ]
    names = []
    for r in lb + pr:
        for n in r.get("commands") or []:
            if n not in names:
                names.append(n)
    for n in names:
        rows.append((f"`{IMAPTEST_COMMANDS.get(n, n).split(' of ')[0].split(' (')[0]}` ({n}) avg, ms", per_cmd("avg_ms", n), LOWER))
    legend = ", ".join(f"{n} = {IMAPTEST_COMMANDS.get(n, n)}" for n in names)
    secs = sorted({r.get("seconds") for r in lb + pr if r.get("seconds")})
    note = (
        f"{what} {legend}. Rates are per second over the run's "
        f"{'/'.join(map(str, secs)) or '?'} s; start and end average its first and last 10 seconds (a falling "
        "end / start means the server slows down as history accumulates). Averages are imaptest's own timings "
        "(`output=` file, whole run): it measures every command in whole milliseconds, rounded down, so "
        "commands faster than 1 ms count as 0 and averages below a few ms are understated."
    )
    if secs and min(secs) < 20:
        note += " Runs shorter than 20 s: the start and end intervals overlap (or are the whole run)."
    t = table(heading, "Dovecot", rows, lb, pr, note)
    errs = [(s, e) for s, rs in (("Letterbox", lb), ("Dovecot", pr)) for r in rs for e in r.get("first_errors") or []]
    if errs:
        t += "\nFirst imaptest error lines:\n\n```\n"
        seen = set()
        for s, e in errs:
            if (s, e) not in seen and len(seen) < 10:
                seen.add((s, e))
                t += f"{s}: {e[:300]}\n"
        t += "```\n"
    return t


if __name__ == "__main__":
    main()
