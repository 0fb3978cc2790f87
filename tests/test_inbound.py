"""Inbound trust end to end (issue 15): a test DNS server (dnslib, tests/peers.py)
publishes SPF, DKIM keys, DMARC policies and PTR records for several sender
domains; messages signed with dkimpy are sent with Python's smtplib from
loopback addresses, and where each one ends (INBOX, Junk, refused) and the
exact Authentication-Results it carries are checked against RFC 7208/6376/
7489/8601 by hand-computed expectations, not by asking the server."""

import base64
import re
import smtplib
import socket
import time
import uuid

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from peers import DnsServer

# Loopback addresses: mail is sent from CLIENT; SPF records permit it or not.
CLIENT = "127.0.0.2"
HELO = "mail.sender.test"
POLICIES = {"none": "pnone.test", "quarantine": "pquar.test", "reject": "prej.test"}
OTHER = "other.test"  # an unaligned identity (its own organizational domain)


def rsa_key():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    )
    pub = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return pem, "v=DKIM1; k=rsa; p=" + base64.b64encode(pub).decode()


KEY_PEM, KEY_TXT = rsa_key()

SPF_KINDS = {
    "pass": f"v=spf1 ip4:{CLIENT} -all",
    "fail": "v=spf1 ip4:192.0.2.99 -all",
    "softfail": "v=spf1 ip4:192.0.2.99 ~all",
    "none": None,
}


def zone():
    z = {
        HELO: {"A": [CLIENT]},
        "2.0.0.127.in-addr.arpa": {"PTR": [HELO]},
        f"sel._domainkey.{OTHER}": {"TXT": [KEY_TXT]},
        OTHER: {"A": ["192.0.2.1"]},
        "lists.test": {"TXT": [f"v=spf1 ip4:{CLIENT} -all"]},
    }
    for policy, domain in POLICIES.items():
        z[domain] = {"A": ["192.0.2.1"]}
        z[f"_dmarc.{domain}"] = {"TXT": [f"v=DMARC1; p={policy}"]}
        z[f"sel._domainkey.{domain}"] = {"TXT": [KEY_TXT]}
    for parent in list(POLICIES.values()) + [OTHER]:
        for kind, record in SPF_KINDS.items():
            name = f"sp-{kind}.{parent}"
            z[name] = {"TXT": [record]} if record else {"A": ["192.0.2.1"]}
    return z


@pytest.fixture
def dns():
    with DnsServer(zone()) as d:
        yield d


def start(server_factory, dns, extra="", trusted="[]", sub="srv"):
    srv = server_factory(
        f"""[delivery]
dns = "{dns.address}"
poll_secs = 1
[inbound]
trusted_networks = {trusted}
dns_timeout_secs = 5
{extra}
""",
        sub=sub,
    )
    srv.cli.add_user("bob@example.test", "bob-password-1")
    srv.cli.add_user("alice@example.test", "alice-password-1")
    return srv.start()


class SourceSMTP(smtplib.SMTP):
    """smtplib from a chosen loopback address (Linux routes all of 127/8 to lo)."""

    def __init__(self, port, source):
        super().__init__("127.0.0.1", port, local_hostname=HELO, timeout=60, source_address=(source, 0))


def message(from_domain, token, body="Hello Bob, the report is attached.\r\n"):
    return (
        f"From: Carol <carol@{from_domain}>\r\nTo: bob@example.test\r\nSubject: report {token}\r\n"
        f"Date: {time.strftime('%a, %d %b %Y %H:%M:%S +0000', time.gmtime())}\r\n"
        f"Message-ID: <{token}@{from_domain}>\r\n\r\n{body}"
    ).encode()


def sign(raw, domain):
    sig = dkim.sign(raw, b"sel", domain.encode(), KEY_PEM, include_headers=[b"from", b"to", b"subject", b"date"])
    return sig + raw


def send(srv, mail_from, raw, source=CLIENT):
    """(code, text) of the reply to the end of DATA."""
    with SourceSMTP(srv.ports["smtp"], source) as c:
        c.ehlo(HELO)
        code, _ = c.mail(mail_from)
        assert code == 250
        code, _ = c.rcpt("bob@example.test")
        assert code == 250
        code, text = c.data(raw)
        return code, text.decode()


def find(srv, token):
    """(mailbox, raw) of bob's stored message with `token`, or None."""
    for m in srv.cli.export("bob@example.test"):
        if token.encode() in m["raw"]:
            return m["mailbox"], m["raw"]
    return None


def header_fields(raw, name):
    head = raw.split(b"\r\n\r\n", 1)[0].decode()
    unfolded = re.sub(r"\r\n[ \t]+", " ", head)
    return [l.split(":", 1)[1].strip() for l in unfolded.split("\r\n") if l.lower().startswith(name.lower() + ":")]


def strip_comments(s):
    while True:
        t = re.sub(r"\([^()]*\)", "", s)
        if t == s:
            return s
        s = t


def parse_ar(value):
    """RFC 8601 §2.2: (authserv-id, [(method, result, {property: value})])."""
    parts = [p.strip() for p in strip_comments(value).split(";")]
    results = []
    for p in parts[1:]:
        words = p.split()
        method, result = words[0].split("=", 1)
        props = dict(w.split("=", 1) for w in words[1:])
        results.append((method, result, props))
    return parts[0], results


def expected_results(spf, dkim_kind, aligned, policy, mail_from, from_domain, dkim_domain):
    """What RFC 7208/6376/7489 say the checks of one matrix message find."""
    dmarc_pass = aligned and (spf == "pass" or dkim_kind == "pass")
    # dkimpy signs with i=@domain, which RFC 8601 §2.7.1 reports as header.i.
    dkim_entry = ("dkim", "none", {}) if dkim_kind == "none" else ("dkim", dkim_kind, {"header.i": "@" + dkim_domain, "header.s": "sel"})
    return [
        dkim_entry,
        # The HELO identity (RFC 7208 §2.3): mail.sender.test publishes no SPF.
        ("spf", "none", {"smtp.helo": HELO}),
        ("spf", spf, {"smtp.mailfrom": mail_from}),
        ("arc", "none", {"smtp.remote-ip": CLIENT}),
        ("dmarc", "pass" if dmarc_pass else "fail", {"header.from": from_domain, "policy.dmarc": policy}),
        # 127.0.0.2 maps back to "localhost" whatever the PTR record says
        # (RFC 6761 §6.3: resolvers answer loopback names themselves), and
        # localhost is not 127.0.0.2: not forward-confirmed.
        ("iprev", "fail", {"policy.iprev": CLIENT}),
    ]


def normalise(results):
    # header.b is a prefix of the signature itself: present, not predictable.
    out = []
    for method, result, props in results:
        props = {k: v for k, v in props.items() if k != "header.b"}
        out.append((method, result, props))
    return out


def test_authentication_matrix_ends_where_the_policy_says(server_factory, dns):
    """Every combination of SPF pass/fail/softfail/none, DKIM pass/fail/none,
    aligned and unaligned, DMARC none/quarantine/reject."""
    srv = start(server_factory, dns)
    seen = {"INBOX": 0, "Junk": 0, "refused": 0}
    for policy, from_domain in POLICIES.items():
        for aligned in (True, False):
            for spf in SPF_KINDS:
                for dkim_kind in ("pass", "fail", "none"):
                    token = uuid.uuid4().hex[:10]
                    parent = from_domain if aligned else OTHER
                    mail_from = f"bounce@sp-{spf}.{parent}"
                    dkim_domain = from_domain if aligned else OTHER
                    raw = message(from_domain, token)
                    if dkim_kind != "none":
                        raw = sign(raw, dkim_domain)
                    if dkim_kind == "fail":
                        raw = raw.replace(b"the report is attached", b"the report is ATTACHED")
                    dmarc_pass = aligned and (spf == "pass" or dkim_kind == "pass")
                    case = f"{policy} aligned={aligned} spf={spf} dkim={dkim_kind}"
                    code, text = send(srv, mail_from, raw)
                    if not dmarc_pass and policy == "reject":
                        assert code == 550 and "5.7.1" in text and from_domain in text, (case, code, text)
                        assert find(srv, token) is None, case
                        seen["refused"] += 1
                        continue
                    assert code == 250, (case, code, text)
                    where, stored = find(srv, token)
                    want_box = "Junk" if (not dmarc_pass and policy == "quarantine") else "INBOX"
                    assert where == want_box, (case, where)
                    seen[where] += 1
                    [ar] = header_fields(stored, "Authentication-Results")
                    authserv, results = parse_ar(ar)
                    assert authserv == "localhost", ar
                    want = expected_results(spf, dkim_kind, aligned, policy, mail_from, from_domain, dkim_domain)
                    assert normalise(results) == want, (case, ar)
                    if dkim_kind != "none":
                        assert "header.b" in results[0][2], ar
                    assert header_fields(stored, "X-Spam-Status"), case
    # 3 policies × 2 alignments × 4 SPF × 3 DKIM = 72 messages.
    assert sum(seen.values()) == 72, seen
    assert seen == {"INBOX": 36, "Junk": 18, "refused": 18}, seen


def test_exact_header_for_a_passing_message(server_factory, dns):
    srv = start(server_factory, dns)
    token = uuid.uuid4().hex[:10]
    raw = sign(message("prej.test", token), "prej.test")
    code, _ = send(srv, "bounce@sp-pass.prej.test", raw)
    assert code == 250
    where, stored = find(srv, token)
    assert where == "INBOX"
    b = re.search(rb"\bb=([A-Za-z0-9+/]{8})", raw.replace(b"\r\n\t", b"").replace(b" ", b"")).group(1).decode()
    fields = stored.split(b"\r\n\r\n", 1)[0].decode()
    # The whole field, as RFC 8601 §2.2 lays it out (comments included).
    want = (
        "Authentication-Results: localhost;\r\n"
        f"\tdkim=pass header.i=@prej.test header.s=sel header.b={b};\r\n"
        f"\tspf=none (localhost: no SPF records found for postmaster@{HELO}) smtp.helo={HELO};\r\n"
        f"\tspf=pass (localhost: domain of bounce@sp-pass.prej.test designates {CLIENT} as permitted sender)"
        " smtp.mailfrom=bounce@sp-pass.prej.test;\r\n"
        f"\tarc=none smtp.remote-ip={CLIENT};\r\n"
        "\tdmarc=pass header.from=prej.test policy.dmarc=reject;\r\n"
        f"\tiprev=fail (policy not aligned) policy.iprev={CLIENT}\r\n"
    )
    assert want in fields, fields


def test_forged_results_from_outside_are_removed(server_factory, dns):
    srv = start(server_factory, dns)
    token = uuid.uuid4().hex[:10]
    raw = (
        b"Authentication-Results: localhost; dmarc=pass header.from=prej.test\r\n"
        b"Authentication-Results: elsewhere.test; spf=pass\r\nX-Spam-Status: No, score=-100\r\n" + message("pnone.test", token)
    )
    code, _ = send(srv, "bounce@sp-pass.pnone.test", raw)
    assert code == 250
    _, stored = find(srv, token)
    ours = header_fields(stored, "Authentication-Results")
    assert len(ours) == 2, ours
    assert ours[0].startswith("localhost;") and "dmarc=fail" not in ours[0]
    assert ours[1] == "elsewhere.test; spf=pass"
    [status] = header_fields(stored, "X-Spam-Status")
    assert "-100" not in status


def test_forged_own_domain_from_outside_is_refused(server_factory, dns):
    """example.test (ours) publishes no DMARC record; unauthenticated mail in
    its name from outside is still refused, while the same message submitted
    by its owner is delivered."""
    srv = start(server_factory, dns)
    token = uuid.uuid4().hex[:10]
    raw = (
        f"From: Alice <alice@example.test>\r\nTo: bob@example.test\r\nSubject: wire money {token}\r\n"
        f"Message-ID: <{token}@example.test>\r\n\r\nPlease pay the invoice.\r\n"
    ).encode()
    code, text = send(srv, "alice@example.test", raw)
    assert code == 550 and text.startswith("5.7.1"), (code, text)
    assert find(srv, token) is None
    # The owner, over submission: not subject to the checks.
    with smtplib.SMTP("127.0.0.1", srv.ports["submission"], timeout=30) as c:
        c.login("alice@example.test", "alice-password-1")
        assert c.sendmail("alice@example.test", ["bob@example.test"], raw) == {}
    where, stored = find(srv, token)
    assert where == "INBOX"
    assert header_fields(stored, "Authentication-Results") == ["localhost; none"]


def test_trusted_forwarder_arc_seal_overrides_dmarc(server_factory, dns):
    """A mailing list changes the subject (breaking the author's DKIM) and
    seals the message with ARC (RFC 8617) after recording dmarc=pass: with
    lists.test trusted, it is delivered; without, refused by p=reject."""
    dns.zone[f"arc._domainkey.lists.test"] = {"TXT": [KEY_TXT]}
    token = uuid.uuid4().hex[:10]
    original = sign(message("prej.test", token), "prej.test")
    forwarded = original.replace(b"Subject: report", b"Subject: [list] report")
    forwarded = (
        b"Authentication-Results: lists.test; dkim=pass header.d=prej.test; spf=pass smtp.mailfrom=carol@prej.test;"
        b" dmarc=pass header.from=prej.test\r\n" + forwarded
    )
    seal = b"".join(
        dkim.arc_sign(forwarded, b"arc", b"lists.test", KEY_PEM, b"lists.test", include_headers=[b"from", b"to", b"subject"])
    )
    sealed = seal + forwarded

    untrusting = start(server_factory, dns)
    code, text = send(untrusting, "bounce@lists.test", sealed)
    assert code == 550, (code, text)
    untrusting.stop()

    trusting = server_factory(
        f"""[delivery]
dns = "{dns.address}"
[inbound]
trusted_networks = []
trusted_arc_sealers = ["lists.test"]
""",
        sub="trusting",
    )
    trusting.cli.add_user("bob@example.test", "bob-password-1")
    trusting.start()
    code, text = send(trusting, "bounce@lists.test", sealed)
    assert code == 250, (code, text)
    where, stored = find(trusting, token)
    assert where == "INBOX"
    [ar] = header_fields(stored, "Authentication-Results")[:1]
    _, results = parse_ar(ar)
    assert ("arc", "pass") in [(m, r) for m, r, _ in results], ar
    assert ("dmarc", "fail") in [(m, r) for m, r, _ in results], ar


def test_trusted_network_is_not_checked(server_factory, dns):
    srv = server_factory(f'[delivery]\ndns = "{dns.address}"\n')
    srv.cli.add_user("bob@example.test", "bob-password-1")
    srv.start()
    token = uuid.uuid4().hex[:10]
    code, _ = send(srv, "bounce@sp-fail.prej.test", message("prej.test", token), source="127.0.0.1")
    assert code == 250
    where, stored = find(srv, token)
    assert where == "INBOX"
    assert header_fields(stored, "Authentication-Results") == ["localhost; none"]
    assert not [q for q in dns.queries if q[0].endswith("prej.test")], dns.queries


def test_bad_signatures_and_dns_trouble_never_stall(server_factory, dns):
    srv = start(server_factory, dns, "")
    # 1,000 DKIM-Signature fields, malformed ones among them.
    token = uuid.uuid4().hex[:10]
    sigs = b"".join(
        b"DKIM-Signature: v=1; a=rsa-sha256; d=d%d.test; s=sel; h=from; bh=AAAA; b=%s\r\n" % (i, b"!!" if i % 2 else b"QUJD")
        for i in range(1000)
    )
    started = time.time()
    code, _ = send(srv, "bounce@sp-pass.pnone.test", sigs + message("pnone.test", token))
    assert code == 250
    assert time.time() - started < 30
    _, stored = find(srv, token)
    [ar] = header_fields(stored, "Authentication-Results")
    # Only the first 10 fields are looked at; of those, the malformed (odd)
    # ones are not signatures at all, and the rest fail their body hash.
    _, results = parse_ar(ar)
    assert [p.get("header.d") for m, r, p in results if m == "dkim"] == [f"d{i}.test" for i in range(0, 10, 2)], ar
    # A DNS server that never answers: every check is a temperror at the
    # deadline, and the message is still handled (p=none here: delivered).
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", 0))
    srv2 = server_factory(
        f"""[delivery]
dns = "127.0.0.1:{silent.getsockname()[1]}"
[inbound]
trusted_networks = []
dns_timeout_secs = 2
""",
        sub="silent",
    )
    srv2.cli.add_user("bob@example.test", "bob-password-1")
    srv2.start()
    token = uuid.uuid4().hex[:10]
    started = time.time()
    code, _ = send(srv2, "bounce@sp-pass.pnone.test", sign(message("pnone.test", token), "pnone.test"))
    elapsed = time.time() - started
    silent.close()
    assert code == 250
    assert elapsed < 20, elapsed
    _, stored = find(srv2, token)
    [ar] = header_fields(stored, "Authentication-Results")
    _, results = parse_ar(ar)
    # (iprev of a loopback address is answered without DNS, see above.)
    assert all(r in ("temperror", "none") for m, r, _ in results if m != "iprev"), ar
    assert [r for m, r, _ in results if m == "dmarc"] == ["temperror"], ar


def test_huge_txt_record_is_handled(server_factory, dns):
    dns.zone["sp-huge.pnone.test"] = {"TXT": [("v=spf1 " + "ip4:192.0.2.1 " * 3000 + "-all")]}
    srv = start(server_factory, dns)
    token = uuid.uuid4().hex[:10]
    code, _ = send(srv, "bounce@sp-huge.pnone.test", message("pnone.test", token))
    assert code == 250
    _, stored = find(srv, token)
    [ar] = header_fields(stored, "Authentication-Results")
    _, results = parse_ar(ar)
    spf = [r for m, r, p in results if m == "spf" and "smtp.mailfrom" in p]
    # Larger than a DNS message may carry over UDP, and over SPF's limits:
    # an error result, never a pass, and the message is handled at once.
    assert spf and spf[0] in ("fail", "permerror", "temperror"), ar


def test_early_talker_is_refused_and_a_patient_client_served(server_factory, dns):
    srv = start(server_factory, dns, "greet_pause_ms = 1500")
    with socket.create_connection(("127.0.0.1", srv.ports["smtp"]), timeout=10) as s:
        s.sendall(b"EHLO hasty.test\r\nMAIL FROM:<x@hasty.test>\r\n")
        data = b""
        while not data.endswith(b"\r\n") or not data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        assert data.startswith(b"554 5.5.0"), data
        assert s.recv(4096) == b"", "closed after the refusal"
    started = time.time()
    with SourceSMTP(srv.ports["smtp"], CLIENT) as c:
        code, _ = c.ehlo(HELO)
        assert code == 250
    assert time.time() - started >= 1.4, "the greeting waited"


def test_rate_limits_per_address_and_sender(server_factory, dns):
    # Every MAIL counts against the address, refused ones too.
    srv = start(
        server_factory,
        dns,
        "max_messages_per_ip_per_hour = 4\nmax_messages_per_sender_per_hour = 2",
        trusted='["127.0.0.1/32"]',
    )
    with SourceSMTP(srv.ports["smtp"], CLIENT) as c:
        c.ehlo(HELO)
        codes = []
        for _ in range(3):
            code, text = c.mail("bounce@sp-pass.pnone.test")
            codes.append((code, text.decode()))
            c.rset()
        assert [k for k, _ in codes] == [250, 250, 451], codes
        assert codes[2][1].startswith("4.7.1") and "sender" in codes[2][1]
        code, _ = c.mail("other@sp-pass.pnone.test")
        assert code == 250, "another sender, fourth from this address"
        c.rset()
        code, text = c.mail("third@sp-pass.pnone.test")
        assert code == 451 and b"address" in text, text
    # Trusted networks are not limited.
    with SourceSMTP(srv.ports["smtp"], "127.0.0.1") as c:
        c.ehlo(HELO)
        for _ in range(4):
            assert c.mail("bounce@sp-pass.pnone.test")[0] == 250
            c.rset()


def test_greylisting_defers_the_first_attempt_only(server_factory, dns):
    srv = start(server_factory, dns, "greylist_delay_secs = 2")
    token = uuid.uuid4().hex[:10]
    raw = message("pnone.test", token)
    with SourceSMTP(srv.ports["smtp"], CLIENT) as c:
        c.ehlo(HELO)
        assert c.mail("bounce@sp-pass.pnone.test")[0] == 250
        code, text = c.rcpt("bob@example.test")
        assert code == 451 and text.startswith(b"4.7.1"), (code, text)
        c.rset()
        # Too soon: still deferred.
        c.mail("bounce@sp-pass.pnone.test")
        assert c.rcpt("bob@example.test")[0] == 451
        c.rset()
    time.sleep(2.5)
    code, _ = send(srv, "bounce@sp-pass.pnone.test", raw)
    assert code == 250
    assert find(srv, token)
    # The network retried once: other senders from it pass at once.
    code, _ = send(srv, "another@sp-pass.pnone.test", message("pnone.test", uuid.uuid4().hex[:10]))
    assert code == 250


def test_dmarc_aggregate_reports_are_recorded_sent_and_readable(server_factory, dns):
    """RFC 7489 §7.2: results are recorded per message; `letterbox dmarc send`
    sends the report to the domain's rua (here a local mailbox, authorised
    by its _report._dmarc record, §7.1), where Python's own gzip/XML
    reading and `letterbox dmarc report` find the same rows."""
    import gzip
    import email
    import json as jsonlib
    import xml.etree.ElementTree as ET

    dns.zone["_dmarc.pnone.test"] = {"TXT": ["v=DMARC1; p=none; rua=mailto:dmarc@example.test"]}
    dns.zone["pnone.test._report._dmarc.example.test"] = {"TXT": ["v=DMARC1"]}
    srv = start(server_factory, dns)
    srv.cli.add_user("dmarc@example.test", "dmarc-password-1")
    for mail_from in ("bounce@sp-pass.pnone.test", "bounce@sp-pass.pnone.test", f"bounce@sp-fail.{OTHER}"):
        code, _ = send(srv, mail_from, message("pnone.test", uuid.uuid4().hex[:10]))
        assert code == 250
    p = srv.cli.run("dmarc", "send", check=True)
    assert "1 DMARC report(s) sent" in p.stdout, p.stdout + p.stderr
    [m] = srv.cli.export("dmarc@example.test", "INBOX")
    import email.policy

    msg = email.message_from_bytes(m["raw"], policy=email.policy.default)
    assert "Report Domain: pnone.test" in str(msg["Subject"]), msg["Subject"]
    [gz] = [part for part in msg.walk() if part.get_filename() and part.get_filename().endswith(".xml.gz")]
    root = ET.fromstring(gzip.decompress(gz.get_payload(decode=True)))

    def child(el, name):
        """The first child named `name`, whatever the XML namespace."""
        return next(c for c in el if c.tag.rsplit("}", 1)[-1] == name)

    def children(el, name):
        return [c for c in el if c.tag.rsplit("}", 1)[-1] == name]

    pol = child(root, "policy_published")
    assert child(pol, "domain").text == "pnone.test"
    assert child(pol, "p").text == "none"
    rows = []
    for rec in children(root, "record"):
        row = child(rec, "row")
        spf = child(child(row, "policy_evaluated"), "spf").text
        rows.append((child(row, "source_ip").text, int(child(row, "count").text), spf))
    assert sorted(rows) == [(CLIENT, 1, "fail"), (CLIENT, 2, "pass")], rows
    out = jsonlib.loads(srv.cli.run("dmarc", "report", "dmarc@example.test", "--json", check=True).stdout)
    assert len(out) == 1 and out[0]["domain"] == "pnone.test" and out[0]["org"] == "localhost", out
    assert sorted((r["source_ip"], r["count"], r["spf"]) for r in out[0]["rows"]) == sorted(rows)
    # Reported results are forgotten: nothing more to send.
    assert "0 DMARC report(s) sent" in srv.cli.run("dmarc", "send", check=True).stdout


def test_dns_lists_score_and_the_reject_threshold_refuses(server_factory, dns):
    """RFC 5782 lists: a listing adds its score (here enough for Junk), a
    high-scoring list pushes the shared score past reject_score (550 before
    any 250), an allow list takes score away, and a 127.255.255.x answer
    (a list's error code) is not a listing."""
    dns.zone["2.0.0.127.junk-bl.test"] = {"A": ["127.0.0.2"]}
    dns.zone["2.0.0.127.hard-bl.test"] = {"A": ["127.0.0.4"]}
    dns.zone["2.0.0.127.err-bl.test"] = {"A": ["127.255.255.254"]}
    dns.zone["2.0.0.127.wl.test"] = {"A": ["127.0.0.1"]}
    srv = start(server_factory, dns, 'dnsbl = ["junk-bl.test=7", "err-bl.test=20"]\ndnswl = ["wl.test=-0.5"]')
    token = uuid.uuid4().hex[:10]
    code, _ = send(srv, "bounce@sp-pass.pnone.test", message("pnone.test", token))
    assert code == 250
    where, stored = find(srv, token)
    assert where == "Junk", stored[:800]
    [status] = header_fields(stored, "X-Spam-Status")
    assert "RBL_JUNK_BL_TEST=7.0" in status and "DNSWL_WL_TEST=-0.5" in status, status
    assert "ERR_BL" not in status, status
    srv.stop()
    hard = start(server_factory, dns, 'dnsbl = ["hard-bl.test=16"]', sub="hard")
    token = uuid.uuid4().hex[:10]
    code, text = send(hard, "bounce@sp-pass.pnone.test", message("pnone.test", token))
    assert code == 550 and text.startswith("5.7.1") and "RBL_HARD_BL_TEST" in text, (code, text)
    assert find(hard, token) is None
