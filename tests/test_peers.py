"""The delivery test peers themselves (tests/peers.py), exercised with
smtplib, raw sockets and dnslib's client. No letterbox binary needed."""

import smtplib
import socket
import ssl
import threading
import time

import dnslib
import pytest

from peers import DnsServer, ScriptedSmtp


def raw(port, payload, host="127.0.0.1", wait=2.0):
    s = socket.create_connection((host, port), timeout=10)
    s.settimeout(wait)
    out = b""
    try:
        out += s.recv(4096)
        s.sendall(payload)
        while True:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                break
            out += chunk
    finally:
        s.close()
    return out


def codes(out):
    return [l[:3] for l in out.split(b"\r\n") if l[:3].isdigit() and l[3:4] == b" "]


def test_smtplib_plain_with_dot_unstuffing():
    with ScriptedSmtp() as peer:
        body = b"Subject: t\r\n\r\n.leading dot\r\n..two\r\nend\r\n"
        with smtplib.SMTP("127.0.0.1", peer.port, timeout=10) as c:
            c.ehlo("client.test")
            for ext in ("pipelining", "size", "8bitmime", "smtputf8", "dsn", "enhancedstatuscodes"):
                assert c.has_extn(ext), ext
            assert not c.has_extn("chunking") and not c.has_extn("starttls") and not c.has_extn("auth")
            assert c.esmtp_features["size"] == "52428800"
            assert c.sendmail("a@x.test", ["b@y.test", "c@y.test"], body, mail_options=["BODY=8BITMIME"],
                              rcpt_options=["NOTIFY=FAILURE"]) == {}
        [t] = peer.wait_for(1, timeout=5)
        assert t.mail_from == "a@x.test" and t.mail_params == {"BODY": "8BITMIME", "SIZE": str(len(body))}
        assert t.rcpts == ["b@y.test", "c@y.test"]
        assert t.rcpt_params["b@y.test"] == {"NOTIFY": "FAILURE"}
        assert t.data == body and t.via == "DATA" and not t.tls and t.helo == "client.test"
        assert t.reply[0] == 250 and t.accepted
        assert peer.connections == 1


def test_scripted_replies_change_while_running():
    with ScriptedSmtp(rcpt_reply=lambda a: (550, "5.1.1 no " + a) if a.startswith("bad") else (250, "2.1.5 OK")) as peer:
        with smtplib.SMTP("127.0.0.1", peer.port, timeout=10) as c:
            refused = c.sendmail("a@x.test", ["bad@y.test", "good@y.test"], b"Subject: s\r\n\r\nx\r\n")
            assert refused == {"bad@y.test": (550, b"5.1.1 no bad@y.test")}
        [t] = peer.wait_for(1, timeout=5)
        assert t.rcpts == ["good@y.test"] and t.rejected == [("bad@y.test", 550)]
        peer.rcpt_reply = (451, "4.3.0 later")
        with smtplib.SMTP("127.0.0.1", peer.port, timeout=10) as c:
            with pytest.raises(smtplib.SMTPRecipientsRefused):
                c.sendmail("a@x.test", ["good@y.test"], b"x\r\n")
        assert [r[3] for r in peer.rcpt_log] == [550, 250, 451]
        peer.rcpt_reply = (250, "ok")
        peer.data_reply = lambda txn: (554, "5.7.1 rejected\nsecond line")
        with smtplib.SMTP("127.0.0.1", peer.port, timeout=10) as c:
            with pytest.raises(smtplib.SMTPDataError) as e:
                c.sendmail("a@x.test", ["good@y.test"], b"x\r\n")
            assert e.value.smtp_code == 554 and e.value.smtp_error == b"5.7.1 rejected\nsecond line"
        assert len(peer.transactions) == 2 and len(peer.accepted) == 1
        assert peer.connections == 3


def test_greeting_421_and_drop():
    with ScriptedSmtp(greeting=(421, "4.3.2 go away")) as peer:
        with pytest.raises(smtplib.SMTPConnectError):
            smtplib.SMTP("127.0.0.1", peer.port, timeout=10)
        peer.greeting = (220, "back")
        peer.mail_reply = None  # drop the connection at MAIL
        with smtplib.SMTP("127.0.0.1", peer.port, timeout=10) as c:
            c.ehlo("c.test")
            with pytest.raises(smtplib.SMTPServerDisconnected):
                c.mail("a@x.test")
        assert peer.connections == 2 and peer.transactions == []


def test_pipelined_whole_transaction_in_one_write():
    with ScriptedSmtp(rcpt_reply=lambda a: (550, "5.1.1 no") if a == "no@y.test" else (250, "2.1.5 OK")) as peer:
        out = raw(peer.port, b"EHLO c.test\r\nMAIL FROM:<a@x.test> SMTPUTF8\r\nRCPT TO:<b@y.test> NOTIFY=NEVER\r\n"
                             b"RCPT TO:<no@y.test>\r\nDATA\r\nSubject: p\r\n\r\n..x\r\n.\r\n"
                             b"MAIL FROM:<>\r\nRCPT TO:<c@y.test>\r\nDATA\r\nsecond\r\n.\r\nRSET\r\nNOOP\r\nQUIT\r\n")
        assert codes(out) == [b"220", b"250", b"250", b"250", b"550", b"354", b"250",
                              b"250", b"250", b"354", b"250", b"250", b"250", b"221"], out
        t1, t2 = peer.wait_for(2, timeout=5)
        assert t1.mail_params == {"SMTPUTF8": None} and t1.rcpts == ["b@y.test"] and t1.data == b"Subject: p\r\n\r\n.x\r\n"
        assert t2.mail_from == "" and t2.rcpts == ["c@y.test"] and t2.data == b"second\r\n"


def test_bdat_over_raw_socket():
    with ScriptedSmtp(chunking=True) as peer:
        p1, p2 = b"Subject: c\r\n\r\nfirst ", b"second\r\n.\r\nbare\nlf\r\n"
        out = raw(peer.port, b"EHLO c.test\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\n"
                             + b"BDAT %d\r\n" % len(p1) + p1 + b"BDAT %d LAST\r\n" % len(p2) + p2 + b"QUIT\r\n")
        assert b"CHUNKING" in out
        assert codes(out) == [b"220", b"250", b"250", b"250", b"250", b"250", b"221"], out
        [t] = peer.wait_for(1, timeout=5)
        assert t.via == "BDAT" and t.data == p1 + p2


def test_starttls_and_auth_plain():
    with ScriptedSmtp(starttls=True, auth=True, auth_required=True) as peer:
        ctx = ssl.create_default_context(cafile=str(peer.cert))
        with smtplib.SMTP("127.0.0.1", peer.port, timeout=10) as c:
            c.ehlo("c.test")
            assert c.has_extn("starttls") and "PLAIN" in c.esmtp_features["auth"]
            assert c.mail("a@x.test")[0] == 530
            c.starttls(context=ctx)
            c.ehlo("c.test")
            assert not c.has_extn("starttls")
            c.login("user@x.test", "s3cret")
            assert c.sendmail("a@x.test", ["b@y.test"], b"x\r\n") == {}
        [t] = peer.wait_for(1, timeout=5)
        assert t.tls and t.auth == ("user@x.test", "s3cret")
        assert peer.auths == [("user@x.test", "s3cret")]


def test_implicit_tls_and_other_loopback_address():
    with ScriptedSmtp(host="127.0.0.3", implicit_tls=True) as peer:
        ctx = ssl.create_default_context(cafile=str(peer.cert))
        ctx.check_hostname = False
        with smtplib.SMTP_SSL("127.0.0.3", peer.port, context=ctx, timeout=10) as c:
            c.sendmail("a@x.test", ["b@y.test"], b"x\r\n")
        [t] = peer.wait_for(1, timeout=5)
        assert t.tls
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", peer.port), timeout=2).close()


def test_blocking_data_reply_does_not_stall_other_connections():
    release = threading.Event()
    with ScriptedSmtp(data_reply=lambda txn: (release.wait(10), (250, "late"))[1]) as peer:
        done = []

        def slow():
            with smtplib.SMTP("127.0.0.1", peer.port, timeout=20) as c:
                c.sendmail("a@x.test", ["b@y.test"], b"slow\r\n")
                done.append(time.time())

        th = threading.Thread(target=slow)
        th.start()
        peer.wait_for(1, timeout=5)
        with smtplib.SMTP("127.0.0.1", peer.port, timeout=5) as c:
            assert c.noop()[0] == 250
        assert not done
        release.set()
        th.join(10)
        assert done and peer.transactions[0].reply == (250, "late")


def test_stop_closes_port_and_restart_on_same_port():
    peer = ScriptedSmtp()
    port = peer.port
    peer.stop()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    with ScriptedSmtp(port=port) as again:
        assert again.port == port
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as c:
            assert c.noop()[0] == 250


ZONE = {
    "b.test": {"MX": [(10, "mx1.b.test"), (20, "mx2.b.test.")], "TXT": ["v=spf1 -all"]},
    "mx1.b.test": {"A": ["127.0.0.2"], "AAAA": ["::1"]},
    "nullmx.test.": {"MX": [(0, ".")]},
    "long.test": {"TXT": ["v=DKIM1; k=rsa; p=" + "A" * 400]},
    "www.b.test": {"CNAME": "mx1.b.test"},
}


@pytest.mark.parametrize("tcp", [False, True])
def test_dns_answers(tcp):
    with DnsServer(dict(ZONE)) as dns:
        def ask(name, qtype):
            return dnslib.DNSRecord.parse(dnslib.DNSRecord.question(name, qtype).send("127.0.0.1", dns.port, tcp=tcp, timeout=5))

        r = ask("b.test", "MX")
        assert r.header.rcode == dnslib.RCODE.NOERROR and r.header.aa
        assert sorted((rr.rdata.preference, str(rr.rdata.label)) for rr in r.rr) == [(10, "mx1.b.test."), (20, "mx2.b.test.")]
        r = ask("MX1.B.test.", "A")
        assert [str(rr.rdata) for rr in r.rr] == ["127.0.0.2"]
        assert [str(rr.rdata) for rr in ask("mx1.b.test", "AAAA").rr] == ["::1"]
        r = ask("nullmx.test", "MX")
        assert [(rr.rdata.preference, str(rr.rdata.label)) for rr in r.rr] == [(0, ".")]
        r = ask("nullmx.test", "A")  # NODATA
        assert r.header.rcode == dnslib.RCODE.NOERROR and r.rr == [] and r.auth
        r = ask("nothere.test", "MX")
        assert r.header.rcode == dnslib.RCODE.NXDOMAIN and r.rr == []
        r = ask("long.test", "TXT")
        [rr] = r.rr
        assert b"".join(rr.rdata.data).decode() == ZONE["long.test"]["TXT"][0]
        assert len(rr.rdata.data) == 2
        r = ask("www.b.test", "A")
        assert [str(rr.rdata) for rr in r.rr] == ["mx1.b.test.", "127.0.0.2"]
        dns.zone["new.test"] = {"A": ["127.0.0.7"]}
        assert [str(rr.rdata) for rr in ask("new.test", "A").rr] == ["127.0.0.7"]
        assert ("b.test", "MX") in dns.queries
