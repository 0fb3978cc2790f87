"""Mail loss after a 250 (issue #18): once the server has said 250 at the end
of DATA it must deliver or bounce (RFC 5321 §6.1). Local copies, queue
entries for remote and forwarded recipients, and bounces for recipients
over quota are committed in one transaction before the reply; a failure
anywhere is a 4xx and nothing of the message is kept.

Observed only through SMTP and the command line (`letterbox export`,
`queue list --json`), never by reading the database."""

import email
import json
import os
import smtplib
import subprocess
import time
import uuid

import pytest

from conftest import BIN
from peers import DnsServer, ScriptedSmtp, free_port

TIMEOUT = 60

ALICE, BOB, CAROL = "alice@a.test", "bob@a.test", "carol@a.test"


def message(sender, rcpts, token, size=70_000):
    """A message of about `size` bytes whose Subject carries `token`."""
    line = ("lorem ipsum dolor sit amet " * 3)[:74] + "\r\n"
    body = line * (size // len(line) + 1)
    return (
        f"From: <{sender}>\r\nTo: {', '.join(rcpts)}\r\nSubject: test {token}\r\n"
        f"Message-ID: <{token}@a.test>\r\nDate: Mon, 01 Jan 2024 10:00:00 +0000\r\n\r\n{body}"
    ).encode()


def tokens_in(srv, address):
    """Subjects tokens of the messages in an account's INBOX, by UID."""
    out = []
    for m in srv.cli.export(address, "INBOX"):
        msg = email.message_from_bytes(m["raw"])
        out.append(((msg["Subject"] or ""), msg))
    return out


def has_token(srv, address, token):
    return sum(1 for s, _ in tokens_in(srv, address) if s == f"test {token}")


def queue(srv):
    p = srv.cli.run("queue", "list", "--json")
    assert p.returncode == 0, p.stdout + p.stderr
    return json.loads(p.stdout)


def bounces_for(srv, sender, failed):
    """Reports in `sender`'s INBOX with a failed block for `failed`."""
    found = []
    for subject, msg in tokens_in(srv, sender):
        if msg.get_content_type() != "multipart/report":
            continue
        text = msg.as_string()
        if f"rfc822; {failed}".lower() in text.lower() or f"rfc822;{failed}".lower() in text.lower():
            found.append(msg)
    return found


def wait_until(predicate, timeout=TIMEOUT, what="condition"):
    deadline = time.time() + timeout
    while True:
        v = predicate()
        if v:
            return v
        if time.time() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.3)


def send(srv, sender, rcpts, raw):
    """One transaction on port 25; returns the DATA reply code (RCPTs must all be accepted)."""
    with smtplib.SMTP("127.0.0.1", srv.ports["smtp"], timeout=60) as c:
        c.ehlo("client.test")
        assert c.mail(sender)[0] == 250
        for r in rcpts:
            code, text = c.rcpt(r)
            assert code == 250, (r, code, text)
        code, text = c.data(raw)
        return code, text


@pytest.fixture
def dns():
    with DnsServer({}) as d:
        yield d


def config(dns, routes=None, **delivery):
    delivery.setdefault("poll_secs", 1)
    lines = ["[delivery]", f'dns = "{dns.address}"']
    lines += [f"{k} = {json.dumps(v)}" for k, v in delivery.items()]
    if routes:
        lines.append("[delivery.routes]")
        lines += [f'"{d}" = "{t}"' for d, t in routes.items()]
    return "\n".join(lines)


@pytest.fixture
def quota_server(server_factory, dns):
    """a.test with alice (a sender of ours), carol, and bob, whose 100 KB
    quota has room for a small message but not for one of 70 KB more."""
    srv = server_factory(config(dns))
    for u in (ALICE, BOB, CAROL):
        srv.cli.add_user(u, "pw")
    srv.cli.deliver(BOB, message(ALICE, [BOB], "earlier", size=40_000))
    srv.cli.run("user", "quota", BOB, "--quota-bytes", "100000", check=True)
    return srv.start()


# ---- over quota at the end of DATA ---------------------------------------------------


def test_over_quota_recipient_at_end_of_data_is_bounced(quota_server):
    srv = quota_server
    token = uuid.uuid4().hex[:10]
    # No SIZE=: both RCPTs get 250, only the end of DATA shows bob is full.
    code, text = send(srv, ALICE, [BOB, CAROL], message(ALICE, [BOB, CAROL], token))
    assert code == 250, text
    assert has_token(srv, CAROL, token) == 1
    assert has_token(srv, BOB, token) == 0
    # RFC 5321 §6.1: said 250, could not deliver to bob: a bounce to alice.
    [report] = wait_until(lambda: bounces_for(srv, ALICE, BOB), what="a bounce for bob")
    assert "mailer-daemon@" in (report["From"] or "").lower()
    assert [x.strip() for x in report.get_all("Return-Path") or ["<>"]] == ["<>"]
    text = report.as_string()
    assert "Action: failed" in text and "5.2.2" in text, text[:3000]
    assert f"Subject: test {token}" in text, "the report quotes the original header"
    assert not bounces_for(srv, ALICE, CAROL), "carol got the message: no report for her"
    wait_until(lambda: queue(srv) == [], what="the report's queue entry to be done")


def test_over_quota_with_null_sender_defers_the_whole_transaction(quota_server):
    srv = quota_server
    token = uuid.uuid4().hex[:10]
    # A bounce cannot be bounced (RFC 5321 §4.5.5): rather than lose bob's
    # copy, nobody gets it now and the sending server retries.
    code, text = send(srv, "", [BOB, CAROL], message("mailer-daemon@remote.test", [BOB, CAROL], token))
    assert code == 452 and b"4.2.2" in text, (code, text)
    assert has_token(srv, CAROL, token) == 0, "a 4xx must leave nothing behind (the retry would duplicate it)"
    assert has_token(srv, BOB, token) == 0
    assert queue(srv) == []


def test_every_recipient_over_quota_is_refused_and_not_bounced(quota_server):
    srv = quota_server
    srv.cli.deliver(CAROL, message(ALICE, [CAROL], "earlier", size=40_000))
    srv.cli.run("user", "quota", CAROL, "--quota-bytes", "100000", check=True)
    token = uuid.uuid4().hex[:10]
    code, text = send(srv, ALICE, [BOB, CAROL], message(ALICE, [BOB, CAROL], token))
    assert code == 452 and b"4.2.2" in text, (code, text)
    time.sleep(2)
    assert queue(srv) == [] and tokens_in(srv, ALICE) == [], "a refused message is the client's to report"


def test_cli_deliver_is_all_or_nothing_and_queues_forwards(server_factory, dns):
    srv = server_factory(config(dns, routes={"remote.test": f"127.0.0.1:{free_port()}"},
                                retry_schedule_secs=[3600]))
    for u in (BOB, CAROL):
        srv.cli.add_user(u, "pw")
    srv.cli.run("user", "quota", BOB, "--quota-bytes", "50000", check=True)
    srv.cli.run("alias", "add", "team@a.test", CAROL, BOB, "far@remote.test", check=True)
    token = uuid.uuid4().hex[:10]
    raw = message(ALICE, ["team@a.test"], token)
    p = subprocess.run([BIN, "--config", str(srv.config),
                        "--data", str(srv.cli.data_dir), "deliver", "team@a.test"],
                       input=raw, capture_output=True, timeout=60)
    assert p.returncode != 0, "bob is over quota: the caller must hear of it"
    assert has_token(srv, CAROL, token) == 0, "a failed deliver stores nothing (its caller will retry)"
    assert queue(srv) == []
    srv.cli.run("user", "quota", BOB, "--quota-bytes", "0", check=True)
    srv.cli.deliver("team@a.test", raw)
    assert has_token(srv, CAROL, token) == 1 and has_token(srv, BOB, token) == 1
    [entry] = queue(srv)
    assert [r["address"] for r in entry["recipients"]] == ["far@remote.test"], entry


def test_queue_worker_keeps_a_bounce_a_full_sender_cannot_take_yet(server_factory, dns):
    with ScriptedSmtp(rcpt_reply=(550, "5.1.1 no such user")) as peer:
        srv = server_factory(config(dns, routes={"remote.test": f"127.0.0.1:{peer.port}"},
                                    retry_schedule_secs=[1]))
        srv.cli.add_user(ALICE, "pw")
        srv.cli.run("alias", "add", "fwd@a.test", "x@remote.test", check=True)
        srv.cli.deliver(ALICE, message(ALICE, [ALICE], "first", size=1000))
        srv.cli.run("user", "quota", ALICE, "--quota-messages", "1", check=True)
        srv.start()
        token = uuid.uuid4().hex[:10]
        code, text = send(srv, ALICE, ["fwd@a.test"], message(ALICE, ["fwd@a.test"], token, size=2000))
        assert code == 250, text
        wait_until(lambda: peer.rcpt_log, what="the refused attempt")
        # alice's mailbox is full: the report waits in the queue, it is not dropped.
        entry = wait_until(lambda: [e for e in queue(srv) if e["attempts"] >= 1], what="the report to be kept")
        assert entry, queue(srv)
        time.sleep(2)
        assert len(tokens_in(srv, ALICE)) == 1
        srv.cli.run("user", "quota", ALICE, "--quota-messages", "0", check=True)
        wait_until(lambda: bounces_for(srv, ALICE, "x@remote.test"), what="the bounce once alice has room")
        wait_until(lambda: queue(srv) == [], what="the entry to be done")
        assert len(bounces_for(srv, ALICE, "x@remote.test")) == 1


# ---- a nearly full disk at every step ---------------------------------------------


def free_bytes(path):
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def fill_to(path, leave):
    """Create a filler file so that about `leave` bytes stay free."""
    filler = path / "filler"
    want = max(0, free_bytes(path) - leave)
    with open(filler, "wb") as f:
        chunk = b"\0" * (1 << 20)
        while want > 0:
            n = min(want, len(chunk))
            try:
                f.write(chunk[:n])
                f.flush()
            except OSError:
                break
            want -= n
    return filler


def test_full_disk_at_every_step_never_loses_an_accepted_message(server_factory, dns, tmp_path):
    """A local recipient and an alias forwarding to a remote address, with
    the data directory on a small tmpfs filled to leave less and less room:
    every 250 means the local copy is stored and the forward is queued; every
    other reply means neither is."""
    srv = server_factory(config(dns, routes={"remote.test": f"127.0.0.1:{free_port()}"},
                                retry_schedule_secs=[3600]))
    data = srv.cli.data_dir
    data.mkdir(parents=True, exist_ok=True)
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", str(data)], capture_output=True)
    if p.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({p.stderr.decode().strip()}); needs root")
    try:
        srv.cli.add_user(ALICE, "pw")
        srv.cli.run("alias", "add", "fwd@a.test", "dave@remote.test", check=True)
        srv.start()

        def one(leave):
            token = uuid.uuid4().hex[:10]
            raw = message("x@client.test", [ALICE, "fwd@a.test"], token)
            filler = fill_to(data, leave) if leave is not None else None
            try:
                try:
                    code, text = send(srv, "x@client.test", [ALICE, "fwd@a.test"], raw)
                except smtplib.SMTPException as e:
                    code, text = getattr(e, "smtp_code", 0), str(e).encode()
            finally:
                if filler:
                    filler.unlink()
            return token, code, text

        # How much one transaction needs: measure it once with room to spare.
        before = free_bytes(data)
        token, code, text = one(None)
        assert code == 250, text
        need = max(before - free_bytes(data), 64 * 1024)
        accepted, refused = [token], 0
        steps = 24
        for i in range(steps + 1):
            token, code, text = one(need * i // steps)
            local = has_token(srv, ALICE, token)
            if 200 <= code < 300:
                accepted.append(token)
                assert local == 1, f"step {i}/{steps}: 250 but the local copy is missing ({text!r})"
            else:
                refused += 1
                assert code in (421, 451, 452), (i, code, text)
                assert local == 0, f"step {i}/{steps}: refused ({code}) but the local copy was kept"
            forwards = [e for e in queue(srv) if any(r["address"] == "dave@remote.test" for r in e["recipients"])]
            assert len(forwards) == len(accepted), (
                f"step {i}/{steps}: {len(accepted)} messages accepted, {len(forwards)} forwards queued "
                f"(reply {code} {text!r})"
            )
        print(f"disk sweep: {len(accepted)} accepted, {refused} refused, need={need}")
        assert refused > 0, "the disk never filled up: the test did not test anything"
        # The server is still healthy once there is room again.
        token, code, text = one(None)
        assert code == 250, text
        assert has_token(srv, ALICE, token) == 1
    finally:
        srv.stop()
        subprocess.run(["umount", "-l", str(data)], capture_output=True)
