"""Outbound delivery end to end: the queue worker sending to other SMTP
servers (a second Letterbox, scripted peers from tests/peers.py), retries,
RFC 3464 bounces, restarts and SIGKILL, DNS (MX, A fallback, null MX),
smarthost relaying and DKIM signatures checked with dkimpy."""

import email
import json
import re
import signal
import smtplib
import ssl
import threading
import time
import uuid

import dkim
import pytest

from peers import DnsServer, ScriptedSmtp, free_port

TIMEOUT = 60  # seconds; debug builds on a busy machine are slow


# ---- helpers ------------------------------------------------------------------


def toml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return str(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    return json.dumps(str(v))  # a JSON string is a valid TOML basic string


def delivery_config(dns=None, routes=None, smarthost=None, dkim_selector=None, **delivery):
    """TOML for extra_config: [delivery] keys, then [delivery.routes], [delivery.smarthost], [dkim]."""
    delivery.setdefault("poll_secs", 1)
    if dns is not None:
        delivery["dns"] = dns.address if isinstance(dns, DnsServer) else dns
    lines = ["[delivery]"] + [f"{k} = {toml_value(v)}" for k, v in delivery.items()]
    if routes:
        lines.append("[delivery.routes]")
        lines += [f"{toml_value(d)} = {toml_value(t)}" for d, t in routes.items()]
    if smarthost:
        lines.append("[delivery.smarthost]")
        lines += [f"{k} = {toml_value(v)}" for k, v in smarthost.items()]
    if dkim_selector:
        lines += ["[dkim]", f"selector = {toml_value(dkim_selector)}"]
    return "\n".join(lines)


def wait_until(predicate, timeout=TIMEOUT, what="condition", interval=0.3):
    deadline = time.time() + timeout
    while True:
        v = predicate()
        if v:
            return v
        if time.time() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def stored(srv, address, mailbox="INBOX"):
    """Raw bytes of every message in a mailbox, by UID (`letterbox export`)."""
    return [m["raw"] for m in srv.cli.export(address, mailbox)]


def all_stored(srv):
    """Every message in every mailbox of every account."""
    return [m["raw"] for a in srv.cli.accounts() for m in srv.cli.export(a["address"])]


def queue(srv):
    p = srv.cli.run("queue", "list", "--json")
    assert p.returncode == 0, p.stdout + p.stderr
    entries = json.loads(p.stdout)
    assert isinstance(entries, list), p.stdout
    return entries


def queue_entry(srv, rcpt):
    """The queue entry holding `rcpt`, or None."""
    for e in queue(srv):
        if any(r["address"] == rcpt for r in e["recipients"]):
            return e
    return None


def rcpt_state(entry, rcpt):
    [r] = [r for r in entry["recipients"] if r["address"] == rcpt]
    return r


def tls_ctx(srv):
    return ssl.create_default_context(cafile=str(srv.cli.data_dir / "tls" / "cert.pem"))


def make_message(sender, rcpts, token=None, body=None):
    token = token or uuid.uuid4().hex[:12]
    body = body or f"Body line for {token}.\r\n.leading dot survives\r\nUTF-8: Grüße\r\n"
    msg = (
        f"From: Alice <{sender}>\r\nTo: {', '.join(rcpts)}\r\nSubject: test {token}\r\n"
        f"Message-ID: <{token}@{sender.split('@')[1]}>\r\nDate: Mon, 01 Jan 2024 10:00:00 +0000\r\n"
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        + body
    )
    return token, msg.encode()


def submit(srv, user, password, rcpts, token=None, body=None):
    """alice sends over the submission port (STARTTLS + AUTH); returns (token, raw message)."""
    token, raw = make_message(user, rcpts, token, body)
    with smtplib.SMTP("127.0.0.1", srv.ports["submission"], timeout=30) as c:
        c.starttls(context=tls_ctx(srv))
        c.login(user, password)
        refused = c.sendmail(user, rcpts, raw, mail_options=["BODY=8BITMIME"])
        assert refused == {}, refused
    return token, raw


def with_token(txns, token):
    return [t for t in txns if f"test {token}".encode() in t.data]


def parse_bounce(raw):
    """Split an RFC 3464 report into its parts; asserts on the structure."""
    msg = email.message_from_bytes(raw)
    assert msg.get_content_type() == "multipart/report", msg.get_content_type()
    assert msg.get_param("report-type") == "delivery-status", msg["Content-Type"]
    parts = msg.get_payload()
    ds = [p for p in parts if p.get_content_type() == "message/delivery-status"]
    assert len(ds) == 1, [p.get_content_type() for p in parts]
    blocks = ds[0].get_payload()
    assert len(blocks) >= 2, "delivery-status needs a per-message block and at least one recipient block"

    def fields(block):
        # Unfold, and write "type;value" as "type; value" (both are RFC 3464).
        return {k.lower(): re.sub(r"^([^\s;]+)\s*;\s*", r"\1; ", " ".join(str(v).split())) for k, v in block.items()}

    per_message = fields(blocks[0])
    recipients = [fields(b) for b in blocks[1:] if len(b.keys())]
    headers = [p for p in parts if p.get_content_type() == "text/rfc822-headers"]
    assert len(headers) == 1, [p.get_content_type() for p in parts]
    hp = headers[0].get_payload(decode=True)
    hp = hp.decode("utf-8", "replace") if isinstance(hp, bytes) else str(hp)
    return msg, per_message, recipients, hp


def check_bounce(raw, token, failed, diag_contains, remote_mta=True):
    """A local bounce: MAILER-DAEMON, null sender, one failed block per address in `failed`."""
    msg, per_message, recipients, headers_part = parse_bounce(raw)
    assert "mailer-daemon@" in (msg["From"] or "").lower(), msg["From"]
    rp = msg.get_all("Return-Path")
    assert rp is None or [x.strip() for x in rp] == ["<>"], f"bounce envelope sender must be null: {rp}"
    assert per_message.get("reporting-mta", "").lower() == "dns; localhost", per_message
    assert sorted(r["final-recipient"].lower() for r in recipients) == sorted(f"rfc822; {a}" for a in failed)
    for r in recipients:
        assert r["action"] == "failed", r
        assert re.fullmatch(r"5\.\d{1,3}\.\d{1,3}", r["status"]), r
        assert r["diagnostic-code"].lower().startswith("smtp;"), r
        assert diag_contains in r["diagnostic-code"], r
        if remote_mta:
            assert r.get("remote-mta", "").lower().startswith("dns;") and "127.0.0.1" in r["remote-mta"], r
        else:
            assert "remote-mta" not in r, r
    assert f"Subject: test {token}" in headers_part
    assert "From: Alice <alice@a.test>" in headers_part
    assert f"Body line for {token}" not in headers_part, "only the headers are returned"
    return recipients


# ---- fixtures ------------------------------------------------------------------


@pytest.fixture
def dns():
    """An empty authoritative zone: any accidental lookup stays on loopback (and is recorded)."""
    with DnsServer({}) as d:
        yield d


@pytest.fixture
def peer():
    with ScriptedSmtp() as p:
        yield p


@pytest.fixture
def make_a(server_factory, dns):
    """A sending Letterbox for a.test with alice@a.test; kwargs go to delivery_config."""

    def make(start=True, **kw):
        kw.setdefault("dns", dns)
        srv = server_factory(delivery_config(**kw), sub="a")
        srv.cli.add_user("alice@a.test", "alice-pw")
        return srv.start() if start else srv

    return make


@pytest.fixture
def two_servers(server_factory, dns):
    """B (b.test, bob) and A (a.test, alice) routing b.test to B's port 25 listener."""
    b = server_factory(sub="b")
    b.cli.add_user("bob@b.test", "bob-pw")
    b.start()
    a = server_factory(delivery_config(dns=dns, routes={"b.test": f"127.0.0.1:{b.ports['smtp']}"}), sub="a")
    a.cli.add_user("alice@a.test", "alice-pw")
    a.start()
    return a, b


# ---- a. Letterbox to Letterbox, DKIM ---------------------------------------------------


def dns_txt_records(srv, domain):
    """name (lower case, no trailing dot) -> joined TXT text, from `letterbox dns DOMAIN`."""
    p = srv.cli.run("dns", domain)
    assert p.returncode == 0, p.stdout + p.stderr
    records = {}
    for line in p.stdout.splitlines():
        m = re.match(r"^\s*(\S+)\s+(?:\d+\s+)?(?:IN\s+)?TXT\s+(.*)$", line, re.IGNORECASE)
        if m:
            text = "".join(re.findall(r'"((?:[^"\\]|\\.)*)"', m.group(2)))
            records[m.group(1).rstrip(".").lower()] = text
    return records


def dkim_tags(value):
    value = re.sub(r"\s+", "", value)
    return dict(t.split("=", 1) for t in value.split(";") if "=" in t)


def test_letterbox_to_letterbox_with_verified_dkim(two_servers, dns):
    a, b = two_servers
    token, sent = submit(a, "alice@a.test", "alice-pw", ["bob@b.test"])
    [raw] = wait_until(lambda: stored(b, "bob@b.test"), what="delivery to bob@b.test on B")
    assert raw.split(b"\r\n\r\n", 1)[1] == sent.split(b"\r\n\r\n", 1)[1], "body must arrive byte-exact"
    assert f"Subject: test {token}".encode() in raw
    wait_until(lambda: queue(a) == [], what="A's queue to empty")
    assert not any(q[0].endswith("b.test") for q in dns.queries), "a host:port route needs no DNS"

    records = dns_txt_records(a, "a.test")
    ed = records.get("lb-ed25519._domainkey.a.test")
    rsa = records.get("lb-rsa._domainkey.a.test")
    assert ed and rsa, records
    ed_tags, rsa_tags = dkim_tags(ed), dkim_tags(rsa)
    assert ed_tags["v"] == "DKIM1" and ed_tags["k"] == "ed25519" and len(ed_tags["p"]) == 44, ed
    assert rsa_tags["v"] == "DKIM1" and rsa_tags["k"] == "rsa" and len(rsa_tags["p"]) >= 200, rsa

    def dnsfunc(name, timeout=5):
        key = name.decode() if isinstance(name, bytes) else name
        text = records.get(key.rstrip(".").lower())
        return text.encode() if text is not None else None

    sigs = [dkim_tags(v) for v in email.message_from_bytes(raw).get_all("DKIM-Signature", [])]
    assert sorted((s["a"], s["s"], s["d"]) for s in sigs) == [
        ("ed25519-sha256", "lb-ed25519", "a.test"),
        ("rsa-sha256", "lb-rsa", "a.test"),
    ], sigs
    for s in sigs:
        assert "from" in s["h"].lower().split(":"), s
    for i in range(len(sigs)):
        assert dkim.DKIM(raw).verify(idx=i, dnsfunc=dnsfunc), f"DKIM signature {i} ({sigs[i]['a']}) fails"
    assert dkim.verify(raw, dnsfunc=dnsfunc)
    # The check can fail: a changed Subject breaks both signatures.
    tampered = raw.replace(f"Subject: test {token}".encode(), f"Subject: test {token}!".encode())
    for i in range(len(sigs)):
        assert not dkim.DKIM(tampered).verify(idx=i, dnsfunc=dnsfunc)


# ---- b. temporary failures, retries, then a permanent one ---------------------------------


def test_retries_on_451_then_one_bounce_on_550(make_a, peer):
    peer.rcpt_reply = (451, "4.3.0 greylisted, come back later")
    a = make_a(routes={"b.test": f"127.0.0.1:{peer.port}"}, retry_schedule_secs=[1, 1])
    token, _ = submit(a, "alice@a.test", "alice-pw", ["bob@b.test"])

    entry = wait_until(lambda: (e := queue_entry(a, "bob@b.test")) and e["attempts"] >= 1 and e,
                       what="a first failed attempt in the queue")
    assert entry["sender"] == "alice@a.test" and entry["size"] > 0 and entry["next_attempt"] is not None
    r = rcpt_state(entry, "bob@b.test")
    assert r["status"] == "pending" and "451" in (r["last_error"] or ""), r
    first_attempts = entry["attempts"]

    wait_until(lambda: len([x for x in peer.rcpt_log if x[2] == "bob@b.test"]) >= 3, what="3 attempts at the peer")
    times = [x[0] for x in peer.rcpt_log if x[2] == "bob@b.test"]
    assert all(t2 - t1 >= 0.5 for t1, t2 in zip(times, times[1:])), f"retries must be spaced out: {times}"
    entry = wait_until(lambda: (e := queue_entry(a, "bob@b.test")) and e["attempts"] >= first_attempts + 2 and e,
                       what="attempts to grow in queue list")
    assert "451" in rcpt_state(entry, "bob@b.test")["last_error"]
    assert peer.transactions == [] and stored(a, "alice@a.test") == []

    peer.rcpt_reply = (550, f"5.1.1 <bob@b.test>: mailbox gone {token}")
    [bounce] = wait_until(lambda: stored(a, "alice@a.test"), what="the bounce in alice's INBOX")
    check_bounce(bounce, token, ["bob@b.test"], f"550 5.1.1 <bob@b.test>: mailbox gone {token}")
    wait_until(lambda: queue(a) == [], what="the queue to empty after the permanent failure")
    n_rcpts = len(peer.rcpt_log)
    time.sleep(4)  # absence check: nothing more may happen
    assert len(stored(a, "alice@a.test")) == 1, "exactly one bounce"
    assert len(peer.rcpt_log) == n_rcpts, "no attempts after the final failure"
    assert queue(a) == []


# ---- c. several recipients at one destination ------------------------------------------


def test_mixed_recipients_one_transaction_bounce_lists_only_failed(make_a, peer, dns):
    peer.rcpt_reply = lambda addr: (550, f"5.1.1 <{addr}>: no such user") if addr.startswith("gone") else (250, "2.1.5 OK")
    a = make_a(routes={"c.test": f"127.0.0.1:{peer.port}"}, retry_schedule_secs=[1, 1])
    token, sent = submit(a, "alice@a.test", "alice-pw", ["ok@c.test", "gone@c.test"])

    [txn] = peer.wait_for(1)
    assert txn.rcpts == ["ok@c.test"] and txn.rejected == [("gone@c.test", 550)]
    assert txn.mail_from == "alice@a.test"
    assert txn.data.split(b"\r\n\r\n", 1)[1] == sent.split(b"\r\n\r\n", 1)[1]
    conns = {c for _, c, addr, _ in peer.rcpt_log if addr in ("ok@c.test", "gone@c.test")}
    assert len(conns) == 1 and len(peer.rcpt_log) == 2, f"both RCPTs in one transaction: {peer.rcpt_log}"

    [bounce] = wait_until(lambda: stored(a, "alice@a.test"), what="the bounce")
    check_bounce(bounce, token, ["gone@c.test"], "550 5.1.1 <gone@c.test>: no such user")
    wait_until(lambda: queue(a) == [], what="the queue to empty")
    time.sleep(2)
    assert len(peer.transactions) == 1, "the accepted recipient is not sent twice"
    assert len(stored(a, "alice@a.test")) == 1
    assert not [q for q in dns.queries if q[0].endswith("c.test")], "host:port routes need no DNS"


# ---- d. peer down, server restarted, retried by hand --------------------------------------


def test_queue_survives_restart_and_retry_delivers_once(make_a):
    port = free_port()
    a = make_a(routes={"d.test": f"127.0.0.1:{port}"})  # default schedule: next try in ~60 s
    token, _ = submit(a, "alice@a.test", "alice-pw", ["carol@d.test"])
    entry = wait_until(lambda: (e := queue_entry(a, "carol@d.test")) and e["attempts"] >= 1 and e,
                       what="a failed attempt while the peer is down")
    r = rcpt_state(entry, "carol@d.test")
    assert r["status"] == "pending" and r["last_error"], r
    show = a.cli.run("queue", "show", str(entry["id"]))
    assert show.returncode == 0 and "carol@d.test" in show.stdout, show.stdout + show.stderr

    a.stop(signal.SIGTERM)
    with ScriptedSmtp(port=port) as peer:
        a.output.clear()
        a.start()
        again = queue_entry(a, "carol@d.test")
        assert again is not None and again["id"] == entry["id"] and again["attempts"] >= entry["attempts"]
        p = a.cli.run("queue", "retry", str(entry["id"]))
        assert p.returncode == 0, p.stdout + p.stderr
        [txn] = peer.wait_for(1)
        assert txn.rcpts == ["carol@d.test"] and f"Subject: test {token}".encode() in txn.data
        wait_until(lambda: queue(a) == [], what="the queue to empty")
        time.sleep(3)
        assert len(peer.transactions) == 1, "delivered exactly once"
    assert stored(a, "alice@a.test") == [], "no bounce for a delivered message"


def test_queue_delete(make_a):
    port = free_port()
    a = make_a(routes={"d.test": f"127.0.0.1:{port}"})
    submit(a, "alice@a.test", "alice-pw", ["carol@d.test"])
    entry = wait_until(lambda: queue_entry(a, "carol@d.test"), what="the queued entry")
    p = a.cli.run("queue", "delete", str(entry["id"]))
    assert p.returncode == 0, p.stdout + p.stderr
    assert queue(a) == []
    p = a.cli.run("queue", "show", str(entry["id"]))
    assert p.returncode != 0
    with ScriptedSmtp(port=port) as peer:
        a.cli.run("queue", "retry", str(entry["id"]))
        time.sleep(3)
        assert peer.transactions == []


# ---- e. SIGKILL while the peer holds the DATA reply ---------------------------------------


def test_sigkill_during_data_then_delivered_after_restart(make_a, peer):
    calls = []
    lock = threading.Lock()

    def data_reply(txn):
        with lock:
            calls.append(time.time())
            first = len(calls) == 1
        if first:
            time.sleep(5)
        return (250, "2.0.0 OK queued")

    peer.data_reply = data_reply
    a = make_a(routes={"e.test": f"127.0.0.1:{peer.port}"}, retry_schedule_secs=[1, 1])
    token, _ = submit(a, "alice@a.test", "alice-pw", ["dave@e.test"])
    [first] = peer.wait_for(1)
    assert first.reply is None, "the peer must still be holding the DATA reply"
    a.proc.kill()
    a.proc.wait()
    killed_at = time.time()

    a.output.clear()
    a.start()
    wait_until(lambda: queue(a) == [], what="the queue to empty after the restart")
    copies = with_token(peer.transactions, token)
    assert 1 <= len(copies) <= 2, f"{len(copies)} copies"
    after = [t for t in copies if t.time > killed_at and t.accepted]
    assert after, "the message must be delivered after the restart"
    assert stored(a, "alice@a.test") == [], "no bounce"


# ---- f. DNS: null MX, A fallback, MX preference, unreachable ------------------------------


@pytest.fixture
def dns_world(server_factory):
    """Peers on 127.0.0.3/.4/.5 sharing one port, a zone pointing at them, and A using both."""
    p3 = ScriptedSmtp(host="127.0.0.3")
    port = p3.port
    p4 = ScriptedSmtp(host="127.0.0.4", port=port, greeting=(421, "4.3.2 mx1 overloaded"))
    p5 = ScriptedSmtp(host="127.0.0.5", port=port)
    zone = {
        "nullmx.test": {"MX": [(0, ".")]},
        "aonly.test": {"A": ["127.0.0.3"]},
        "pref.test": {"MX": [(20, "mx2.pref.test."), (10, "mx1.pref.test.")]},
        "mx1.pref.test": {"A": ["127.0.0.4"]},
        "mx2.pref.test": {"A": ["127.0.0.5"]},
        "down.test": {"MX": [(10, "mx.down.test")]},
        "mx.down.test": {"A": ["127.0.0.9"]},
    }
    d = DnsServer(zone)
    a = server_factory(delivery_config(dns=d, port=port, retry_schedule_secs=[300]), sub="a")
    a.cli.add_user("alice@a.test", "alice-pw")
    a.start()
    try:
        yield a, d, {"127.0.0.3": p3, "127.0.0.4": p4, "127.0.0.5": p5}
    finally:
        for p in (p3, p4, p5):
            p.stop()
        d.stop()


def test_null_mx_bounces_at_once(dns_world):
    a, d, peers = dns_world
    token, _ = submit(a, "alice@a.test", "alice-pw", ["x@nullmx.test"])
    [bounce] = wait_until(lambda: stored(a, "alice@a.test"), timeout=30, what="the null-MX bounce")
    msg, per_message, [r], headers_part = parse_bounce(bounce)
    assert "mailer-daemon@" in (msg["From"] or "").lower(), msg["From"]
    assert f"Subject: test {token}" in headers_part
    assert r["final-recipient"].lower() == "rfc822; x@nullmx.test" and r["action"] == "failed"
    assert re.fullmatch(r"5\.\d{1,3}\.\d{1,3}", r["status"]), r  # RFC 7505: 5.1.10
    assert "remote-mta" not in r, "no host answered"
    wait_until(lambda: queue(a) == [], what="the queue to empty")
    assert ("nullmx.test", "MX") in d.queries
    assert all(p.connections == 0 for p in peers.values())


def test_no_mx_falls_back_to_a_record(dns_world):
    a, d, peers = dns_world
    token, _ = submit(a, "alice@a.test", "alice-pw", ["x@aonly.test"])
    [txn] = peers["127.0.0.3"].wait_for(1)
    assert txn.rcpts == ["x@aonly.test"] and f"Subject: test {token}".encode() in txn.data
    wait_until(lambda: queue(a) == [], what="the queue to empty")
    assert ("aonly.test", "MX") in d.queries and ("aonly.test", "A") in d.queries


def test_mx_preference_order_and_fallback_in_same_attempt(dns_world):
    a, d, peers = dns_world
    started = time.time()
    token, _ = submit(a, "alice@a.test", "alice-pw", ["x@pref.test"])
    [txn] = peers["127.0.0.5"].wait_for(1)
    assert txn.rcpts == ["x@pref.test"] and f"Subject: test {token}".encode() in txn.data
    mx1 = peers["127.0.0.4"].connection_times
    assert mx1 and min(mx1) <= txn.time, "mx1 (preference 10) must be tried first"
    # The retry schedule is 300 s, so delivery within the minute means the same attempt.
    assert txn.time - started < 60
    wait_until(lambda: queue(a) == [], what="the queue to empty")
    assert peers["127.0.0.4"].transactions == [] and peers["127.0.0.3"].connections == 0


def test_unreachable_mx_stays_queued(dns_world):
    a, d, peers = dns_world
    submit(a, "alice@a.test", "alice-pw", ["x@down.test"])
    entry = wait_until(lambda: (e := queue_entry(a, "x@down.test")) and e["attempts"] >= 1 and e,
                       what="a failed attempt")
    r = rcpt_state(entry, "x@down.test")
    assert r["status"] == "pending"
    assert re.search(r"connect|refused|unreachable", r["last_error"] or "", re.IGNORECASE), r
    assert stored(a, "alice@a.test") == [], "a temporary failure is not bounced"


# ---- g. null reverse path is never bounced ---------------------------------------------


def test_null_sender_failure_is_not_bounced(make_a, peer):
    # The public way to queue a message with a null reverse path: an alias on
    # a.test forwarding to a remote address, reached over port 25 with MAIL FROM:<>.
    peer.rcpt_reply = (550, "5.1.1 no such user")
    a = make_a(start=False, routes={"g.test": f"127.0.0.1:{peer.port}"}, retry_schedule_secs=[1, 1])
    a.cli.run("alias", "add", "fwd@a.test", "far@g.test", check=True)
    a.start()
    with smtplib.SMTP("127.0.0.1", a.ports["smtp"], timeout=30) as c:
        c.ehlo("remote.test")
        assert c.sendmail("", ["fwd@a.test"], b"From: MAILER-DAEMON@remote.test\r\nSubject: dsn\r\n\r\nx\r\n") == {}
    wait_until(lambda: [x for x in peer.mail_log if x[2] == ""], what="the forwarded attempt with MAIL FROM:<>")
    wait_until(lambda: queue(a) == [], what="the failed entry to leave the queue")
    time.sleep(3)
    assert queue(a) == [], "no bounce may be queued for a null sender"
    assert all_stored(a) == [], "no bounce may be stored anywhere"
    assert all(x[2] == "" for x in peer.mail_log), peer.mail_log


# ---- h. smarthost -------------------------------------------------------------------------


def test_smarthost_with_auth_plain(make_a, dns):
    with ScriptedSmtp(auth=True, auth_required=True) as relay:
        a = make_a(smarthost={"address": f"127.0.0.1:{relay.port}", "tls": "none",
                              "username": "relayuser", "password": "relay-pw"})
        token, _ = submit(a, "alice@a.test", "alice-pw", ["x@one.example", "y@two.test"])
        wait_until(lambda: {r for t in relay.accepted for r in t.rcpts} == {"x@one.example", "y@two.test"},
                   what="both recipients at the smarthost")
        for t in relay.accepted:
            assert t.auth == ("relayuser", "relay-pw") and not t.tls and t.mail_from == "alice@a.test"
            assert f"Subject: test {token}".encode() in t.data
        assert ("relayuser", "relay-pw") in relay.auths
        wait_until(lambda: queue(a) == [], what="the queue to empty")
        assert not [q for q in dns.queries if q[0].endswith(("one.example", "two.test"))], "a smarthost needs no MX lookups"


# ---- i. what the client negotiates -------------------------------------------------------


def submit_with(srv, rcpts, raw, mail_options=(), rcpt_options=()):
    with smtplib.SMTP("127.0.0.1", srv.ports["submission"], timeout=30) as c:
        c.starttls(context=tls_ctx(srv))
        c.login("alice@a.test", "alice-pw")
        assert c.sendmail("alice@a.test", rcpts, raw, mail_options=list(mail_options),
                          rcpt_options=list(rcpt_options)) == {}


def test_starttls_bdat_and_dsn_parameters_are_used_when_offered(make_a):
    with ScriptedSmtp(starttls=True, chunking=True) as p:
        a = make_a(routes={"b.test": f"127.0.0.1:{p.port}"})
        token, raw = make_message("alice@a.test", ["bob@b.test"])
        submit_with(a, ["bob@b.test"], raw, mail_options=["BODY=8BITMIME", "RET=HDRS", "ENVID=env-" + token],
                    rcpt_options=["NOTIFY=FAILURE,DELAY", "ORCPT=rfc822;bob@b.test"])
        [t] = wait_until(lambda: with_token(p.accepted, token), what="delivery to the peer")
        assert t.tls, "STARTTLS was offered, so the message must travel encrypted"
        assert t.via == "BDAT", "CHUNKING was offered"
        assert t.data.split(b"\r\n\r\n", 1)[1] == raw.split(b"\r\n\r\n", 1)[1]
        params = {k.upper(): v for k, v in t.mail_params.items()}
        assert params.get("BODY") == "8BITMIME" and params.get("RET") == "HDRS", params
        assert params.get("ENVID") == "env-" + token and int(params["SIZE"]) == len(t.data), params
        rp = {k.upper(): v for k, v in t.rcpt_params["bob@b.test"].items()}
        assert rp.get("NOTIFY") == "FAILURE,DELAY" and rp.get("ORCPT", "").lower() == "rfc822;bob@b.test", rp


def test_plain_data_with_dot_stuffing_and_no_dsn_params_when_not_offered(make_a):
    with ScriptedSmtp(extensions=["PIPELINING", "8BITMIME"]) as p:
        a = make_a(routes={"b.test": f"127.0.0.1:{p.port}"})
        token, raw = make_message("alice@a.test", ["bob@b.test"], body="line\r\n.dot line\r\n..two\r\n")
        submit_with(a, ["bob@b.test"], raw, rcpt_options=["NOTIFY=FAILURE"])
        [t] = wait_until(lambda: with_token(p.accepted, token), what="delivery to the peer")
        assert t.via == "DATA" and not t.tls
        assert t.data.endswith(b"line\r\n.dot line\r\n..two\r\n"), t.data[-40:]
        assert "NOTIFY" not in {k.upper() for k in t.rcpt_params["bob@b.test"]}
        assert "SIZE" not in {k.upper() for k in t.mail_params}


def test_connection_is_reused_for_the_next_message(make_a):
    with ScriptedSmtp() as p:
        a = make_a(routes={"b.test": f"127.0.0.1:{p.port}"})
        t1, _ = submit(a, "alice@a.test", "alice-pw", ["bob@b.test"])
        wait_until(lambda: with_token(p.accepted, t1), what="the first message")
        t2, _ = submit(a, "alice@a.test", "alice-pw", ["carol@b.test"])
        wait_until(lambda: with_token(p.accepted, t2), what="the second message")
        assert p.connections == 1, f"the second message should reuse the idle connection ({p.connections})"


def test_message_needing_smtputf8_bounces_at_a_server_without_it(make_a):
    with ScriptedSmtp(extensions=["PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES"]) as p:
        a = make_a(routes={"b.test": f"127.0.0.1:{p.port}"})
        token, raw = make_message("alice@a.test", ["jöran@b.test"])
        with smtplib.SMTP("127.0.0.1", a.ports["submission"], timeout=30) as c:
            c.starttls(context=tls_ctx(a))
            c.login("alice@a.test", "alice-pw")
            assert c.sendmail("alice@a.test", ["jöran@b.test"], raw, mail_options=["SMTPUTF8", "BODY=8BITMIME"]) == {}
        [bounce] = wait_until(lambda: stored(a, "alice@a.test"), what="the bounce")
        _, _, recipients, _ = parse_bounce(bounce)
        assert [r["status"] for r in recipients] == ["5.6.7"], recipients
        assert p.transactions == [], "nothing may be sent to a server that cannot take it"
        assert queue(a) == []


def test_delay_warning_once_then_delivery(make_a, peer):
    peer.rcpt_reply = (451, "4.7.1 try again later")
    a = make_a(routes={"b.test": f"127.0.0.1:{peer.port}"}, retry_schedule_secs=[1], warn_after_secs=1)
    token, _ = submit(a, "alice@a.test", "alice-pw", ["bob@b.test"])
    [warning] = wait_until(lambda: stored(a, "alice@a.test"), what="the delay warning")
    msg, per_message, recipients, _ = parse_bounce(warning)
    assert [r["action"] for r in recipients] == ["delayed"], recipients
    assert recipients[0]["status"] == "4.7.1" and "will-retry-until" in recipients[0], recipients
    assert "451" in recipients[0]["diagnostic-code"]
    wait_until(lambda: len([x for x in peer.rcpt_log if x[2] == "bob@b.test"]) >= 4, what="more attempts")
    peer.rcpt_reply = (250, "2.1.5 OK")
    wait_until(lambda: with_token(peer.accepted, token), what="the delivery")
    wait_until(lambda: queue(a) == [], what="the queue to empty")
    assert len(stored(a, "alice@a.test")) == 1, "one delay warning only"


def test_success_notify_to_a_server_without_dsn_gives_a_relayed_report(make_a):
    with ScriptedSmtp(extensions=["PIPELINING", "8BITMIME"]) as p:
        a = make_a(routes={"b.test": f"127.0.0.1:{p.port}"})
        token, raw = make_message("alice@a.test", ["bob@b.test"])
        submit_with(a, ["bob@b.test"], raw, rcpt_options=["NOTIFY=SUCCESS"])
        wait_until(lambda: with_token(p.accepted, token), what="delivery to the peer")
        [report] = wait_until(lambda: stored(a, "alice@a.test"), what="the relayed report")
        _, _, recipients, _ = parse_bounce(report)
        assert [(r["final-recipient"], r["action"]) for r in recipients] == [("rfc822; bob@b.test", "relayed")]


def test_forwarded_mail_from_port_25_reflects_no_reports(make_a):
    """Issue 18 (DSN reflection): anyone may send to an alias that forwards,
    naming any sender; NOTIFY=SUCCESS RET=FULL must not make us mail the
    message back to that (forged) sender."""
    with ScriptedSmtp(extensions=["PIPELINING", "8BITMIME"]) as plain, ScriptedSmtp() as dsn:
        a = make_a(routes={"b.test": f"127.0.0.1:{plain.port}", "c.test": f"127.0.0.1:{dsn.port}"})
        a.cli.run("alias", "add", "fwd@a.test", "bob@b.test", check=True)
        a.cli.run("alias", "add", "fwd2@a.test", "carol@c.test", check=True)
        tokens = []
        for rcpt in ("fwd@a.test", "fwd2@a.test"):
            token, raw = make_message("alice@a.test", [rcpt])
            tokens.append(token)
            with smtplib.SMTP("127.0.0.1", a.ports["smtp"], timeout=30) as c:
                assert c.sendmail("alice@a.test", [rcpt], raw, mail_options=["RET=FULL"],
                                  rcpt_options=["NOTIFY=SUCCESS,FAILURE"]) == {}
        wait_until(lambda: with_token(plain.accepted, tokens[0]), what="the forward without DSN")
        [t] = wait_until(lambda: with_token(dsn.accepted, tokens[1]), what="the forward with DSN")
        params = {k.upper(): v for k, v in t.mail_params.items()}
        assert params.get("RET") == "HDRS", params
        rp = {k.upper(): v for k, v in t.rcpt_params["carol@c.test"].items()}
        assert rp.get("NOTIFY") == "FAILURE", rp
        wait_until(lambda: queue(a) == [], what="the queue to empty")
        time.sleep(1)  # absence check: no "relayed" report may follow
        assert stored(a, "alice@a.test") == [], "no report to the claimed sender"
