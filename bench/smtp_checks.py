#!/usr/bin/env python3
"""SMTP durable intake with every inbound check on, beside the same server with
the checks off (issue 15: "stays >= 80 % of today's rate"), same machine, same
run, alternating rounds.

    bench/smtp_checks.py [--rounds 3] [--connections 8] [--messages 200]

Two release-built Letterbox servers on loopback, each with its own data
directory: "off" trusts loopback (no SPF/DKIM/ARC/DMARC/iprev, as every
earlier SMTP figure), "on" trusts nothing, so each message gets SPF (HELO and
MAIL FROM), iprev, DKIM (bench mail is unsigned: none), ARC, DMARC (the
sender's domain publishes p=none, so every message is delivered) and the
spam verdict. DNS is answered locally by tests/peers.py's dnslib server
(records with a 300 s TTL, as real ones; the resolver caches them).
`letterbox-bench smtp` drives both. Prints a Markdown table.
"""

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from peers import DnsServer  # noqa: E402

REL = ROOT / "target" / "release"


def free_ports(n):
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def start(work, name, dns, checks, users, binary=None):
    d = work / name
    d.mkdir()
    smtp, imap, http = free_ports(3)
    trusted = "[]" if checks else '["127.0.0.0/8"]'
    # A build from before the pipeline knows no [inbound] (and refuses
    # unknown keys).
    inbound = "" if binary else f"[inbound]\ntrusted_networks = {trusted}\n"
    (d / "letterbox.toml").write_text(
        f"""hostname = "mx.bench.test"
[listeners]
smtp = "127.0.0.1:{smtp}"
imap = "127.0.0.1:{imap}"
http = "127.0.0.1:{http}"
submission = ""
submissions = ""
imaps = ""
pop3 = ""
pop3s = ""
https = ""
[delivery]
dns = "{dns.address}"
{inbound}"""
    )
    base = [str(binary or REL / "letterbox"), "--config", str(d / "letterbox.toml"), "--data", str(d / "data")]
    subprocess.run([*base, "domain", "add", "example.test"], check=True, capture_output=True)
    for i in range(1, users + 1):
        subprocess.run([*base, "user", "add", f"user{i}@example.test"], input=b"bench-password-1\n", check=True,
                       capture_output=True)
    log = open(d / "server.log", "w")
    p = subprocess.Popen([*base, "--dev", "serve"], stdout=subprocess.PIPE, stderr=log, text=True)
    for line in p.stdout:
        if line.strip() == "letterbox: ready":
            break
    return p, smtp


def bench(port, args, out):
    subprocess.run(
        [str(REL / "letterbox-bench"), "smtp", "--port", str(port), "--users", str(args.users),
         "-c", str(args.connections), "-m", str(args.messages), "--sizes", args.sizes, "--from",
         "bench@sender.bench.test", "--json", str(out)],
        check=True, capture_output=True,
    )
    return json.loads(out.read_text())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--messages", type=int, default=100, help="per connection (the server allows 100)")
    ap.add_argument("--users", type=int, default=10)
    ap.add_argument("--sizes", default="1024,4096,16384,65536")
    ap.add_argument("--before", help="a letterbox binary from before the inbound pipeline, run as a third server")
    args = ap.parse_args()
    zone = {
        "sender.bench.test": {"TXT": ["v=spf1 ip4:127.0.0.0/8 -all"], "A": ["127.0.0.1"]},
        "_dmarc.sender.bench.test": {"TXT": ["v=DMARC1; p=none"]},
        "localhost": {"A": ["127.0.0.1"]},
    }
    work = Path(tempfile.mkdtemp(prefix="smtpchecks-"))
    with DnsServer(zone, ttl=300) as dns:
        names = ["off", "on"] + (["before"] if args.before else [])
        servers = {
            name: start(work, name, dns, name == "on", args.users, args.before if name == "before" else None)
            for name in names
        }
        rates = {n: [] for n in names}
        try:
            for r in range(args.rounds):
                for name in names if r % 2 == 0 else list(reversed(names)):
                    res = bench(servers[name][1], args, work / f"{name}-{r}.json")
                    rates[name].append(res.get("summary", res)["per_second"])
        finally:
            for p, _ in servers.values():
                p.send_signal(signal.SIGTERM)
                p.wait(timeout=60)
        queries = len(dns.queries)
    print("| checks | messages/s (each round) | median |")
    print("| --- | --- | --- |")
    med = {}
    labels = [
        ("before", "before the pipeline (no checks, no verdict)"),
        ("off", "authentication off (trusted loopback), spam verdict on"),
        ("on", "everything on (SPF, iprev, DKIM, ARC, DMARC, spam)"),
    ]
    for name, label in labels:
        if name not in rates:
            continue
        v = sorted(x for x in rates[name] if x is not None)
        med[name] = v[len(v) // 2] if v else 0
        print(f"| {label} | {', '.join(f'{x:.0f}' for x in rates[name] if x)} | {med[name]:.0f} |")
    ref = med.get("before") or med["off"]
    if ref:
        print(f"\nEverything on: {100 * med['on'] / ref:.0f} % of the rate "
              f"{'before the pipeline' if 'before' in med else 'without authentication'}; {queries} DNS queries answered.")


if __name__ == "__main__":
    main()
