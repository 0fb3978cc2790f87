#!/usr/bin/env python3
"""Medians across rounds of letterbox-bench JSON results, as Markdown tables
comparing Letterbox with its peer (Postfix for SMTP, Dovecot for the rest).

usage: summarize.py RESULTS_DIR
RESULTS_DIR holds letterbox/WORKLOAD_rN.json and peer/WORKLOAD_rN.json, and
peer/smtp_drain_rN.json ({"seconds": S}: how long Postfix took after the last
250 reply until its queue was empty, i.e. everything was in Dovecot), and
SERVER/imaptest_MODE_rN.json (bench/imaptest_parse.py) for MODE churn and
steady, or imaptest_skipped.txt (why imaptest did not run).
Search at scale: SERVER/search_fill.json (the once-only fill),
SERVER/search_rN.json (letterbox-bench search), letterbox/query_rN.out
(query_bench's printout), search_sizes.json, search_config.json, or
search_skipped.txt / query_skipped.txt.
"""

import json
import re
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

    # ---- smtp-source (Postfix's own load generator)
    lb, pr = load(d, "letterbox", "smtp_source"), load(d, "peer", "smtp_source")
    if lb or pr:
        n = (lb + pr)[0].get("messages")
        out.append(
            table(
                "SMTP (Postfix's smtp-source) — Letterbox vs Postfix (+ LMTP into Dovecot)",
                "Postfix",
                [
                    ("messages/s until smtp-source exits (all 250s)",
                     lambda r: r["messages"] / r["seconds"] if r.get("seconds") else None, HIGHER),
                    ("end-to-end messages/s (until in the mailbox)",
                     lambda r: r["messages"] / (r["seconds"] + r.get("drain_seconds", 0)) if r.get("seconds") else None,
                     HIGHER),
                    ("Postfix queue drain after smtp-source, s", lambda r: r.get("drain_seconds"), LOWER),
                    ("messages in the recipient's INBOX afterwards (of those sent)", lambda r: r.get("delivered"), HIGHER),
                    ("smtp-source exit status", lambda r: r.get("exit"), LOWER),
                ],
                lb,
                pr,
                f"`smtp-source -s SESSIONS -m {n} -l 4096` (one connection per message, its default) to one recipient. "
                "Letterbox's time includes storing every message in the mailbox; Postfix's first row is queueing "
                "only, its second adds the time until its queue was empty (everything delivered to Dovecot over LMTP).",
            )
        )
    elif (d / "smtp_source_skipped.txt").exists():
        out.append("### SMTP (Postfix's smtp-source)\n\nSkipped: " + (d / "smtp_source_skipped.txt").read_text().strip() + "\n")

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
    out.append(search_section(d))
    print("\n".join(out))


# ---- search at scale

# letterbox-bench search's operations, the word each looks for, and the
# issue's latency target (ms) where it sets one.
SEARCH_OPS = [
    ("UID SEARCH BODY rare", "BODY zebracorn (a word in 1 message in 1000)", 200),
    ("UID SEARCH BODY common", "BODY meeting (a word in nearly every message)", 200),
    ("UID SEARCH TEXT rare", "TEXT zebracorn (headers and body)", None),
    ("UID SEARCH FROM", "FROM sender7@ (1 message in 50)", None),
    ("UID SORT (DATE)", "SORT (DATE) of the whole mailbox (RFC 5256)", None),
    ("UID SORT (SUBJECT)", "SORT (SUBJECT) of the whole mailbox (base subjects)", None),
    ("UID THREAD REFERENCES", "THREAD REFERENCES of the whole mailbox", None),
    ("QRESYNC resync", "SELECT (QRESYNC ...) after 1,000 flag changes and 100 expunges elsewhere (RFC 7162)", None),
]
# Operations with no "messages found" (hits) entry.
UNCOUNTED = {"QRESYNC resync"}
QUERY_TARGETS = {"50 newest, collapsed by thread": 50}


def expected_hits(op, n):
    """Matches the generator (crates/bench/src/search.rs) puts in n messages, where known."""
    if op.endswith("rare"):
        return sum(1 for i in range(n) if i % 1000 == 7)
    if op == "UID SEARCH FROM":
        return sum(1 for i in range(n) if i % 50 == 7)
    return None


def hits_of(report, op):
    """Messages found by op in one run: 'hits' pairs (command, count) in the order of 'ops'."""
    names = [row.get("op") for row in report.get("ops", [])]
    hits = report.get("hits") or []
    if op in names and names.index(op) < len(hits):
        return hits[names.index(op)][1]
    return None


def search_op(report, name, key):
    for row in report.get("ops", []):
        if row.get("op") == name:
            if not row.get("count"):  # every try failed: no latency
                return None
            return row.get(key)
    return None


def parse_query_bench(text):
    """query_bench's printout: a table (query, total, p50 ms, p99 ms), then 'WHAT: B bytes (P per message)' lines."""
    queries, sizes = {}, {}
    for line in text.splitlines():
        m = re.match(r"^(.*\S)\s+(\d+)\s+([\d.]+)\s+([\d.]+)$", line)
        if m and not line.startswith("query "):
            queries[m.group(1)] = {"total": int(m.group(2)), "p50_ms": float(m.group(3)), "p99_ms": float(m.group(4))}
            continue
        m = re.match(r"^(.*): (\d+) bytes \((\d+) per message\)$", line)
        if m:
            sizes[m.group(1)] = {"bytes": int(m.group(2)), "per_message": int(m.group(3))}
    return queries, sizes


def target_verdict(p50, p99, target):
    if target is None or p50 is None:
        return ""
    if p99 is not None and p99 < target:
        return "within it at p50 and p99"
    if p50 < target:
        return "within it at p50, not at p99"
    return "**misses it** (p50)"


def kb(b):
    return "n/a" if b is None else f"{b / 1024:.0f} KiB" if b < 10 * 1024 * 1024 else f"{b / 1048576:.1f} MiB"


def search_section(d):
    head = "### Search at scale (letterbox-bench search, store query_bench) — Letterbox vs Dovecot"
    skipped = d / "search_skipped.txt"
    if skipped.exists():
        return f"{head}\n\nSkipped: {skipped.read_text().strip()}.\n"
    try:
        cfg = json.loads((d / "search_config.json").read_text())
    except (OSError, ValueError):
        cfg = {}
    n = cfg.get("messages")
    lb, pr = load(d, "letterbox", "search"), load(d, "peer", "search")
    fills = {}
    for s in ("letterbox", "peer"):
        try:
            fills[s] = json.loads((d / s / "search_fill.json").read_text())
        except (OSError, ValueError):
            fills[s] = None
    out = [head, ""]
    fill_txt = ", ".join(
        f"{name} {fmt(f.get('fill_seconds')) if f else 'n/a (fill failed)'} s"
        for name, f in (("Letterbox", fills["letterbox"]), ("Dovecot", fills["peer"]))
    )
    out.append(
        f"One mailbox `{cfg.get('mailbox', 'bench-search')}` of user1 holding {n if n is not None else '?'} generated messages "
        "(letterbox-bench search: deterministic, a few KB each, every third a reply to the one before, the same on both "
        f"servers), filled once per server by MULTIAPPEND before the rounds. Fill time, information only (not a "
        f"benchmark): {fill_txt}. Then {len(lb)} round(s) on Letterbox and {len(pr)} on Dovecot, each running every search "
        f"{cfg.get('iterations', '?')} times on one connection; p50/p99 are over a round's tries, figures are medians "
        "across rounds."
    )
    out.append("")
    out.append(
        "**Dovecot runs without any full-text search plugin** (no `fts` in `mail_plugins`, as configured by compare.sh): "
        "its SEARCH BODY and TEXT read and scan every message of the mailbox on every search. Letterbox answers them "
        "from its full-text index (SQLite FTS5, trigram tokenizer). That explains most of the difference below; "
        "Dovecot with an FTS backend (fts-flatcurve, Solr) would be the like-for-like comparison and is not measured here."
    )
    out.append("")

    # Both servers must find the same messages: compare every run, the fill's pass included.
    lb_all = lb + ([fills["letterbox"]] if fills["letterbox"] else [])
    pr_all = pr + ([fills["peer"]] if fills["peer"] else [])
    mismatches = []
    found = {}
    for op, _, _ in SEARCH_OPS:
        if op in UNCOUNTED:
            found[op] = ([], [], None)
            continue
        a = sorted({h for h in (hits_of(r, op) for r in lb_all) if h is not None})
        b = sorted({h for h in (hits_of(r, op) for r in pr_all) if h is not None})
        exp = expected_hits(op, n) if n else None
        found[op] = (a, b, exp)
        if len(a) != 1 or len(b) != 1 or a != b:
            mismatches.append(f"`{op}`: Letterbox found {a or 'nothing'}, Dovecot {b or 'nothing'}")
        elif exp is not None and a[0] != exp:
            mismatches.append(f"`{op}`: both found {a[0]}, the generator put {exp}")
    if mismatches:
        out.append("**MISMATCH — the servers do not find the same messages; the timings below are not comparable:**")
        out.append("")
        out += [f"- **{m}**" for m in mismatches]
    else:
        out.append("Matches found: identical on both servers in every run (and equal to the generator's count where known).")
    out.append("")

    for op, what, target in SEARCH_OPS:
        a, b, exp = found[op]
        out.append(f"#### `{op}`: {what}")
        out.append("")
        lines = ["| metric | Letterbox | Dovecot | ratio Letterbox/Dovecot | better |", "| --- | ---: | ---: | ---: | --- |"]
        for label, key in (("latency p50, ms", "p50_ms"), ("latency p99, ms", "p99_ms")):
            x = med([search_op(r, op, key) for r in lb])
            y = med([search_op(r, op, key) for r in pr])
            lines.append(f"| {label} | {fmt(x)} | {fmt(y)} | {ratio(x, y)} | {LOWER} |")
        x = med([search_op(r, op, "errors") for r in lb] or [None])
        y = med([search_op(r, op, "errors") for r in pr] or [None])
        lines.append(f"| failed tries (NO/BAD) | {fmt(x)} | {fmt(y)} | | {LOWER} |")
        if op in UNCOUNTED:
            x = med([med(r.get("resync_bytes") or [None]) for r in lb])
            y = med([med(r.get("resync_bytes") or [None]) for r in pr])
            lines.append(f"| bytes received, median | {fmt(x)} | {fmt(y)} | {ratio(x, y)} | {LOWER} |")
            fa = "/".join(sorted({str(r.get("resync_fetches")) for r in lb})) or "n/a"
            fb = "/".join(sorted({str(r.get("resync_fetches")) for r in pr})) or "n/a"
            lines.append(f"| FETCH responses (flag changes reported) | {fa} | {fb} | | must be 1000 |")
            out += lines
            out.append("")
            continue
        same = "same" if len(a) == 1 and a == b else "**MISMATCH**"
        shown = lambda v: "/".join(map(str, v)) or "n/a"  # noqa: E731
        lines.append(f"| messages found | {shown(a)} | {shown(b)} | {same} | must be equal |")
        out += lines
        notes = []
        if exp is not None:
            notes.append(f"The generator puts {exp} matching messages in {n}.")
        v = target_verdict(med([search_op(r, op, "p50_ms") for r in lb]), med([search_op(r, op, "p99_ms") for r in lb]), target)
        if v:
            notes.append(f"Target (issue \"Store v2\"): < {target} ms; Letterbox is {v}.")
        if notes:
            out += ["", " ".join(notes)]
        out.append("")

    try:
        sz = json.loads((d / "search_sizes.json").read_text())
    except (OSError, ValueError):
        sz = {}
    lbs = sz.get("letterbox") or {}

    # ---- store-level queries (Letterbox only)
    out.append("#### Store-level queries (query_bench, Letterbox only)")
    out.append("")
    qskip = d / "query_skipped.txt"
    runs = [parse_query_bench(p.read_text()) for p in sorted((d / "letterbox").glob("query_r*.out")) if p.stat().st_size]
    sizes = runs[-1][1] if runs else {}
    if qskip.exists():
        out += [f"Not run: {qskip.read_text().strip()}.", ""]
    elif not runs:
        out += ["Not run or no output (see Failures).", ""]
    else:
        out.append(
            f"`query_bench DATA_DIR user1@example.test {cfg.get('query_iterations', '?')}` after every Letterbox search round, "
            "on the running server's database (read-only): the store's query path without IMAP or JMAP around it, over all of "
            f"user1's mail. {len(runs)} run(s); p50/p99 over a run's tries, medians across runs. Dovecot has no equivalent "
            "of the thread-collapsed query (it has no JMAP; IMAP THREAD plus SORT is a different operation), so its column is n/a."
        )
        out.append("")
        out.append("| query | Letterbox p50, ms | Letterbox p99, ms | total found | target | Dovecot |")
        out.append("| --- | ---: | ---: | ---: | --- | --- |")
        names = []
        for q, _ in runs:
            names += [k for k in q if k not in names]
        for name in names:
            p50 = med([q.get(name, {}).get("p50_ms") for q, _ in runs])
            p99 = med([q.get(name, {}).get("p99_ms") for q, _ in runs])
            totals = sorted({q[name]["total"] for q, _ in runs if name in q})
            t = QUERY_TARGETS.get(name)
            verdict = f"< {t} ms: {target_verdict(p50, p99, t)}" if t else ""
            dc = "n/a: no equivalent (no JMAP)" if "collapsed" in name else "n/a: not measured (see UID SEARCH BODY above)"
            out.append(f"| {name} | {fmt(p50)} | {fmt(p99)} | {'/'.join(map(str, totals))} | {verdict or '—'} | {dc} |")
        out.append("")
        ue, ut = lbs.get("user_emails"), lbs.get("user_threads")
        if ue and ut:
            note = f"user1 holds {ue} emails in {ut} threads (counted from the database after the rounds)."
            if ut > 0.9 * ue:
                note += (
                    " Hardly anything collapses: Letterbox threads a reply with its parent only when their base subjects "
                    "match, and the generator gives every reply a subject of its own, so this measures the collapsed "
                    "query over nearly one thread per email."
                )
            out += [note, ""]
        rare = found.get("UID SEARCH BODY rare", ([], [], None))[0]
        ft = [q[k]["total"] for q, _ in runs for k in q if "body text" in k]
        if rare and ft and sorted(set(ft)) != rare:
            out += [f"Note: the store's full-text query found {sorted(set(ft))}, IMAP BODY {rare}, over user1's mail "
                    "(the query covers all of user1's mailboxes, IMAP only `bench-search`).", ""]

    # ---- index sizes
    out.append("#### Index size per message")
    out.append("")
    dc = sz.get("dovecot") or {}
    rows = []
    fts = sizes.get("full-text index")
    bodies = sizes.get("message bodies")
    nb = lbs.get("indexed_bodies")
    if fts:
        per_body = f", {fts['bytes'] / nb:.0f} B per indexed body ({nb} distinct bodies in the database)" if nb else ""
        rows.append(("Letterbox full-text index (FTS5 tables `email_fts*` + `blob_text`)",
                     f"{kb(fts['bytes'])}: {fts['per_message']} B per user1 message{per_body}"))
    if bodies:
        rows.append(("Letterbox message bodies (table `blobs`), for scale", f"{kb(bodies['bytes'])}: {bodies['per_message']} B per user1 message"))
    if lbs.get("database_bytes"):
        rows.append(("Letterbox database file + WAL (everything, all users)", f"{kb(lbs['database_bytes'])} ({lbs.get('emails', '?')} emails in all)"))
    if lbs.get("error"):
        rows.append(("Letterbox database counts", f"not read: {lbs['error']}"))
    files = dc.get("files") or {}
    dm = dc.get("messages") or 0
    idx = {k: v for k, v in files.items() if k.startswith("dovecot.index")}
    if idx:
        tot = sum(idx.values())
        parts = ", ".join(f"`{k}` {kb(v)}" for k, v in sorted(idx.items()))
        rows.append(("Dovecot mailbox index + transaction log + cache (`dovecot.index*`; not a full-text index)",
                     f"{kb(tot)}: {tot / dm:.0f} B per message ({parts})" if dm else kb(tot)))
    if "dovecot-uidlist" in files:
        rows.append(("Dovecot Maildir UID list (`dovecot-uidlist`)", f"{kb(files['dovecot-uidlist'])}" + (f": {files['dovecot-uidlist'] / dm:.0f} B per message" if dm else "")))
    if dm:
        rows.append(("Dovecot message files (`cur/`, `new/`), for scale", f"{kb(dc.get('message_bytes'))}: {dc['message_bytes'] / dm:.0f} B per message ({dm} files)"))
    if rows:
        out.append("| what | size |")
        out.append("| --- | --- |")
        out += [f"| {a} | {b} |" for a, b in rows]
        out.append("")
        out.append(
            "query_bench measures database-wide sizes (SQLite `dbstat`) and divides them by user1's message count (all its "
            "mailboxes); the full-text index holds one row per distinct body of every account, so the per-body figure is the "
            "exact one, and with a large search mailbox the two are close. Dovecot's figures are the files of the search "
            "mailbox's Maildir folder only, after the rounds (its cache grows with the fields searches and fetches touched)."
        )
    else:
        out.append("Not measured (see Failures).")
    return "\n".join(out) + "\n"


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
