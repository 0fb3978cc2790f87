"""POP3 end to end: every command over STLS and implicit TLS, plaintext
refusal, UPDATE semantics (QUIT deletes exactly the marked messages, a
dropped connection deletes nothing), maildrop locking, stable UIDLs,
byte-exact RETR, SASL, bad input, pipelining, shutdown, and fetchmail."""

import base64
import os
import poplib
import re
import signal
import socket
import ssl
import subprocess
import time

import pytest

USER = "alice@example.test"
PW = "alice-pw"


def cafile_context(srv):
    ctx = ssl.create_default_context(cafile=str(srv.cli.data_dir / "tls" / "cert.pem"))
    ctx.check_hostname = True
    return ctx


def msg(i, body="body"):
    return f"From: sender@example.test\r\nTo: {USER}\r\nSubject: message {i}\r\n\r\n{body} {i}\r\n"


@pytest.fixture
def srv(server_factory):
    s = server_factory("[auth]\nfailure_delay_ms = 10")
    s.cli.add_user(USER, PW)
    return s.start()


def pop(srv, user=USER, pw=PW):
    p = poplib.POP3("127.0.0.1", srv.ports["pop3"], timeout=30)
    p.user(user)
    p.pass_(pw)
    return p


def login_retrying(srv):
    """Log in, waiting for a just-closed session to release the maildrop."""
    deadline = time.time() + 10
    while True:
        try:
            return pop(srv)
        except poplib.error_proto as e:
            if b"[IN-USE]" not in e.args[0] or time.time() > deadline:
                raise


class Raw:
    """Line-level POP3 client for what poplib hides."""

    def __init__(self, port, tls=None):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        if tls:
            self.sock = tls.wrap_socket(self.sock, server_hostname="localhost")
        self.f = self.sock.makefile("rwb")
        self.greeting = self.line()

    def line(self):
        return self.f.readline()

    def send(self, data):
        self.f.write(data)
        self.f.flush()

    def cmd(self, text):
        self.send(text.encode() + b"\r\n")
        return self.line()

    def multi(self):
        """Raw bytes of a multi-line body, terminator included."""
        out = b""
        while not out.endswith(b"\r\n.\r\n") and out != b".\r\n":
            line = self.line()
            assert line, "connection closed inside a multi-line response"
            out += line
        return out

    def close(self):
        self.sock.close()


def unstuff(body):
    assert body.endswith(b".\r\n")
    lines = body[:-3].split(b"\r\n")[:-1] if body != b".\r\n" else []
    return b"".join((l[1:] if l.startswith(b".") else l) + b"\r\n" for l in lines)


def test_greeting_and_capa_in_each_state(srv):
    p = poplib.POP3("127.0.0.1", srv.ports["pop3"], timeout=30)
    assert p.getwelcome().startswith(b"+OK")
    caps = p.capa()
    for cap in ["TOP", "USER", "UIDL", "SASL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING",
                "EXPIRE", "LOGIN-DELAY", "STLS", "IMPLEMENTATION"]:
        assert cap in caps, caps
    assert caps["SASL"] == ["PLAIN", "LOGIN", "OAUTHBEARER", "XOAUTH2"]
    assert caps["EXPIRE"] == ["NEVER"] and caps["LOGIN-DELAY"] == ["0"]
    assert caps["IMPLEMENTATION"] == ["Letterbox"]
    p.stls(cafile_context(srv))
    caps = p.capa()
    assert "STLS" not in caps and "USER" in caps
    p.user(USER)
    p.pass_(PW)
    caps = p.capa()
    assert "STLS" not in caps and "TOP" in caps and "UIDL" in caps
    p.quit()


def test_every_command_over_stls_with_verified_certificate(srv):
    for i in range(1, 4):
        srv.cli.deliver(USER, msg(i))
    p = poplib.POP3("127.0.0.1", srv.ports["pop3"], timeout=30)
    assert p.stls(cafile_context(srv)).startswith(b"+OK")
    assert p.sock.version() in ("TLSv1.2", "TLSv1.3")
    assert p.user(USER).startswith(b"+OK")
    assert p.pass_(PW).startswith(b"+OK")
    sizes = [len(msg(i).encode()) for i in range(1, 4)]
    assert p.stat() == (3, sum(sizes))
    resp, lines, _ = p.list()
    assert resp.startswith(b"+OK")
    assert lines == [f"{i} {s}".encode() for i, s in enumerate(sizes, 1)]
    assert p.list(2) == f"+OK 2 {sizes[1]}".encode()
    _, uidls, _ = p.uidl()
    assert [u.split()[0] for u in uidls] == [b"1", b"2", b"3"]
    assert p.uidl(3).split()[2] == uidls[2].split()[1]
    _, lines, _ = p.retr(1)
    assert b"\r\n".join(lines) + b"\r\n" == msg(1).encode()
    _, lines, _ = p.top(2, 0)
    assert lines[-1] == b"" and b"Subject: message 2" in lines and b"body 2" not in lines
    _, lines, _ = p.top(2, 1)
    assert lines[-1] == b"body 2"
    assert p.dele(2).startswith(b"+OK")
    assert p.stat() == (2, sizes[0] + sizes[2])
    with pytest.raises(poplib.error_proto):
        p.retr(2)
    assert p.noop().startswith(b"+OK")
    assert p.rset().startswith(b"+OK")
    assert p.stat() == (3, sum(sizes))
    assert p.dele(3).startswith(b"+OK")
    assert p.quit().startswith(b"+OK")
    p = login_retrying(srv)
    assert p.stat()[0] == 2
    _, lines, _ = p.retr(2)
    assert b"body 2" in lines
    p.quit()


def test_implicit_tls_port_995(srv):
    srv.cli.deliver(USER, msg(1))
    p = poplib.POP3_SSL("127.0.0.1", srv.ports["pop3s"], context=cafile_context(srv), timeout=30)
    assert p.sock.version() in ("TLSv1.2", "TLSv1.3")
    assert "STLS" not in p.capa()
    with pytest.raises(poplib.error_proto):
        p.stls()
    p.user(USER)
    p.pass_(PW)
    assert p.stat()[0] == 1
    assert b"body 1" in p.retr(1)[1]
    p.quit()


def test_plaintext_auth_refused_before_stls(server_factory):
    s = server_factory("[auth]\nallow_plaintext = false\nfailure_delay_ms = 10")
    s.cli.add_user(USER, PW)
    s.start()
    r = Raw(s.ports["pop3"])
    assert r.cmd("CAPA").startswith(b"+OK")
    caps = r.multi()
    assert b"STLS\r\n" in caps and b"USER\r\n" not in caps and b"SASL" not in caps
    assert r.cmd(f"USER {USER}").startswith(b"-ERR [AUTH]")
    assert r.cmd(f"PASS {PW}").startswith(b"-ERR")
    plain = base64.b64encode(f"\0{USER}\0{PW}".encode()).decode()
    assert r.cmd(f"AUTH PLAIN {plain}").startswith(b"-ERR [AUTH]")
    assert r.cmd("AUTH") == b"+OK SASL mechanisms follow\r\n" and r.multi() == b".\r\n"
    r.close()
    # After STLS the same credentials work.
    p = poplib.POP3("127.0.0.1", s.ports["pop3"], timeout=30)
    p.stls(cafile_context(s))
    assert "USER" in p.capa()
    p.user(USER)
    assert p.pass_(PW).startswith(b"+OK")
    p.quit()


def test_dropped_connection_deletes_nothing(srv):
    for i in range(1, 3):
        srv.cli.deliver(USER, msg(i))
    p = pop(srv)
    p.dele(1)
    p.dele(2)
    p.sock.shutdown(socket.SHUT_RDWR)
    p.sock.close()
    p = login_retrying(srv)
    assert p.stat()[0] == 2
    p.quit()


def test_quit_deletes_exactly_the_marked_messages(srv):
    for i in range(1, 6):
        srv.cli.deliver(USER, msg(i))
    p = pop(srv)
    _, before, _ = p.uidl()
    p.dele(1)
    p.dele(3)
    p.dele(5)
    p.rset()
    p.dele(2)
    p.dele(4)
    assert b"2 messages deleted" in p.quit()
    p = login_retrying(srv)
    _, after, _ = p.uidl()
    kept = [before[i].split()[1] for i in (0, 2, 4)]
    assert [u.split()[1] for u in after] == kept
    assert [l.split()[0] for l in p.list()[1]] == [b"1", b"2", b"3"]
    p.quit()


def test_second_session_gets_in_use(srv):
    first = pop(srv)
    with pytest.raises(poplib.error_proto) as e:
        pop(srv)
    assert e.value.args[0].startswith(b"-ERR [IN-USE]")
    first.quit()
    login_retrying(srv).quit()


def test_uidl_stable_and_snapshot_at_login(srv):
    srv.cli.deliver(USER, msg(1))
    srv.cli.deliver(USER, msg(2))
    p = pop(srv)
    _, first, _ = p.uidl()
    for line in first:
        uid = line.split()[1]
        assert 1 <= len(uid) <= 70 and all(0x21 <= b <= 0x7E for b in uid)
    # Mail arriving during the session is not seen until the next login.
    srv.cli.deliver(USER, msg(3))
    assert p.stat()[0] == 2
    with pytest.raises(poplib.error_proto):
        p.retr(3)
    p.quit()
    p = login_retrying(srv)
    _, second, _ = p.uidl()
    assert second[:2] == first and len(second) == 3
    p.dele(1)
    p.quit()
    p = login_retrying(srv)
    _, third, _ = p.uidl()
    assert [u.split()[1] for u in third] == [u.split()[1] for u in second[1:]]
    p.quit()


def test_retr_is_byte_exact_with_dots_and_8bit(srv):
    raw = (b"From: a@example.test\r\nSubject: =?utf-8?q?caf=C3=A9?=\r\n\r\n"
           b".leading dot\r\n..two dots\r\n.\r\n\xc3\xa9t\xc3\xa9 \xff\xfe raw 8-bit\r\n"
           b"\r\n.\r\nlast line")
    srv.cli.deliver(USER, raw)
    r = Raw(srv.ports["pop3"])
    r.cmd(f"USER {USER}")
    assert r.cmd(f"PASS {PW}").startswith(b"+OK")
    size_line = r.cmd("LIST 1")
    assert r.cmd("RETR 1").startswith(b"+OK")
    body = r.multi()
    assert b"\r\n..leading dot\r\n...two dots\r\n..\r\n" in body
    # Byte-exact after unstuffing; the unterminated last line gets a CRLF.
    assert unstuff(body) == raw + b"\r\n"
    assert int(size_line.split()[2]) == len(raw)
    assert r.cmd("TOP 1 0").startswith(b"+OK")
    assert r.multi() == raw.split(b"\r\n\r\n")[0] + b"\r\n\r\n.\r\n"
    assert r.cmd("TOP 1 2").startswith(b"+OK")
    assert unstuff(r.multi()) == raw.split(b"\r\n\r\n")[0] + b"\r\n\r\n.leading dot\r\n..two dots\r\n"
    assert r.cmd("QUIT").startswith(b"+OK")
    r.close()


def test_wrong_password_and_unknown_user_get_auth_code(srv):
    for user, pw in [(USER, "wrong"), ("nobody@example.test", "x")]:
        with pytest.raises(poplib.error_proto) as e:
            pop(srv, user, pw)
        assert e.value.args[0].startswith(b"-ERR [AUTH]")
    pop(srv).quit()


def test_sasl_plain_and_login(srv):
    srv.cli.deliver(USER, msg(1))
    b64 = lambda s: base64.b64encode(s.encode()).decode()
    r = Raw(srv.ports["pop3"])
    assert r.cmd("AUTH").startswith(b"+OK") and r.multi() == b"PLAIN\r\nLOGIN\r\nOAUTHBEARER\r\nXOAUTH2\r\n.\r\n"
    assert r.cmd("AUTH CRAM-MD5").startswith(b"-ERR")
    assert r.cmd("AUTH PLAIN").rstrip(b"\r\n") == b"+ "
    assert r.cmd("*").startswith(b"-ERR")
    assert r.cmd("AUTH PLAIN").rstrip(b"\r\n") == b"+ "
    assert r.cmd("not base64!").startswith(b"-ERR")
    assert r.cmd("AUTH PLAIN " + b64(f"\0{USER}\0wrong")).startswith(b"-ERR [AUTH]")
    assert r.cmd("AUTH LOGIN") == b"+ VXNlcm5hbWU6\r\n"
    assert r.cmd(b64(USER)) == b"+ UGFzc3dvcmQ6\r\n"
    assert r.cmd(b64(PW)).startswith(b"+OK")
    assert r.cmd("AUTH PLAIN " + b64(f"\0{USER}\0{PW}")).startswith(b"-ERR")
    assert r.cmd("STAT").startswith(b"+OK 1 ")
    assert r.cmd("QUIT").startswith(b"+OK")
    r.close()
    # PLAIN with initial response, then LOGIN with the user name as initial response.
    r = Raw(srv.ports["pop3"])
    assert r.cmd("AUTH PLAIN " + b64(f"{USER}\0{USER}\0{PW}")).startswith(b"+OK")
    r.cmd("QUIT")
    r.close()
    time.sleep(0.2)
    r = Raw(srv.ports["pop3"])
    assert r.cmd("AUTH LOGIN " + b64(USER)) == b"+ UGFzc3dvcmQ6\r\n"
    assert r.cmd(b64(PW)).startswith(b"+OK")
    r.cmd("QUIT")
    r.close()


def test_bad_input_is_answered_and_counted(srv):
    srv.cli.deliver(USER, msg(1))
    r = Raw(srv.ports["pop3"])
    for bad in ["XYZZY", "APOP a b", "STAT", "RETR 1", "PASS nouser", "USER", "USER a b", ""]:
        assert r.cmd(bad).startswith(b"-ERR"), bad
    r.close()
    for bads in (["RETR 0", "RETR 2", "RETR x", "RETR 99999999999999", "TOP 1", "TOP 1 -1"],
                 ["LIST 5", "UIDL 0", "DELE", "USER x", "STLS", "STAT 1", "AUTH PLAIN"]):
        r = Raw(srv.ports["pop3"])
        r.cmd(f"USER {USER}")
        assert r.cmd(f"PASS {PW}").startswith(b"+OK")
        for bad in bads:
            assert r.cmd(bad).startswith(b"-ERR"), bad
        assert r.cmd("QUIT").startswith(b"+OK")
        r.close()
        time.sleep(0.2)
    r = Raw(srv.ports["pop3"])
    r.cmd(f"USER {USER}")
    assert r.cmd(f"PASS {PW}").startswith(b"+OK")
    assert r.cmd("DELE 1").startswith(b"+OK")
    for bad in ["DELE 1", "RETR 1", "TOP 1 0", "LIST 1", "UIDL 1"]:
        assert r.cmd(bad).startswith(b"-ERR"), bad
    assert r.cmd("STAT") == b"+OK 0 0\r\n"
    assert r.cmd("QUIT").startswith(b"+OK")
    r.close()


def test_overlong_line_then_max_errors_closes(srv):
    r = Raw(srv.ports["pop3"])
    r.send(b"NOOP " + b"x" * 5000 + b"\r\n")
    assert b"too long" in r.line()
    assert r.cmd("CAPA").startswith(b"+OK")  # the session continues
    r.multi()
    closed = False
    for _ in range(20):
        resp = r.cmd("BOGUS")
        if not resp:
            closed = True
            break
        assert resp.startswith(b"-ERR")
        if b"closing" in resp:
            closed = r.line() == b""
            break
    assert closed
    r.close()


def test_pipelined_commands_answered_in_order(srv):
    for i in range(1, 4):
        srv.cli.deliver(USER, msg(i))
    r = Raw(srv.ports["pop3"])
    r.send(f"USER {USER}\r\nPASS {PW}\r\nSTAT\r\nRETR 1\r\nDELE 1\r\nLIST\r\nUIDL 2\r\nNOOP\r\nRSET\r\nSTAT\r\n".encode())
    assert r.line().startswith(b"+OK")
    assert r.line().startswith(b"+OK")
    assert r.line().startswith(b"+OK 3 ")
    assert r.line().startswith(b"+OK")
    assert unstuff(r.multi()) == msg(1).encode()
    assert r.line().startswith(b"+OK")
    assert r.line().startswith(b"+OK 2 messages")
    assert [l.split()[0] for l in r.multi().split(b"\r\n")[:-2]] == [b"2", b"3"]
    assert r.line().startswith(b"+OK 2 ")
    assert r.line() == b"+OK\r\n"
    assert r.line().startswith(b"+OK")
    assert r.line().startswith(b"+OK 3 ")
    r.cmd("QUIT")
    r.close()


def test_stls_with_pipelined_plaintext_is_refused(srv):
    r = Raw(srv.ports["pop3"])
    r.send(b"STLS\r\nUSER evil\r\n")
    assert r.line().startswith(b"-ERR")
    assert r.line() == b""
    r.close()


def test_shutdown_tells_sessions(srv):
    r = Raw(srv.ports["pop3"])
    r.cmd(f"USER {USER}")
    assert r.cmd(f"PASS {PW}").startswith(b"+OK")
    srv.proc.send_signal(signal.SIGTERM)
    assert r.line() == b"-ERR [SYS/TEMP] server shutting down\r\n"
    assert r.line() == b""
    assert srv.proc.wait(timeout=30) == 0


def run_fetchmail(srv, tmp, keep):
    rc = tmp / "fetchmailrc"
    out = tmp / "fetched.mbox"
    cert = srv.cli.data_dir / "tls" / "cert.pem"
    rc.write_text(
        f'poll localhost via 127.0.0.1 protocol POP3 port {srv.ports["pop3s"]} uidl\n'
        f'  user "{USER}" there with password "{PW}" is "localuser" here\n'
        f'  options {"keep" if keep else "fetchall nokeep"} ssl sslcertck sslcertfile "{cert}" sslcommonname localhost\n'
        f'  mda "cat >> {out}"\n'
    )
    os.chmod(rc, 0o600)
    env = dict(os.environ, FETCHMAILHOME=str(tmp), HOME=str(tmp))
    p = subprocess.run(
        ["fetchmail", "-f", str(rc), "-i", str(tmp / "fetchids"), "--nosyslog", "-v"],
        capture_output=True, text=True, timeout=120, env=env,
    )
    # 0: mail retrieved, 1: no new mail.
    assert p.returncode in (0, 1), p.stdout + p.stderr
    text = out.read_text(errors="replace") if out.exists() else ""
    return sorted(set(re.findall(r"Subject: message (\d+)", text))), p


def test_fetchmail_keep_then_fetch_and_delete(srv, tmp_path):
    fm = tmp_path / "fm"
    fm.mkdir()
    for i in range(1, 4):
        srv.cli.deliver(USER, msg(i))
    got, p = run_fetchmail(srv, fm, keep=True)
    assert got == ["1", "2", "3"], p.stdout + p.stderr
    (fm / "fetched.mbox").unlink()
    # Second run with keep: UIDL says nothing is new.
    got, p = run_fetchmail(srv, fm, keep=True)
    assert got == [] and p.returncode == 1, p.stdout + p.stderr
    srv.cli.deliver(USER, msg(4))
    got, p = run_fetchmail(srv, fm, keep=True)
    assert got == ["4"], p.stdout + p.stderr
    p = login_retrying(srv)
    assert p.stat()[0] == 4
    p.quit()
    # Without keep: everything is fetched and deleted on the server.
    (fm / "fetched.mbox").unlink()
    time.sleep(0.2)
    got, p = run_fetchmail(srv, fm, keep=False)
    assert got == ["1", "2", "3", "4"], p.stdout + p.stderr
    p = login_retrying(srv)
    assert p.stat() == (0, 0)
    p.quit()


def test_idle_timeout_from_config_logs_out(server_factory):
    srv = server_factory("[pop3]\nidle_timeout_secs = 2").start()
    s = socket.create_connection(("127.0.0.1", srv.ports["pop3"]), timeout=10)
    assert s.recv(200).startswith(b"+OK")
    started = time.time()
    data = b""
    while True:
        chunk = s.recv(200)
        if not chunk:
            break
        data += chunk
    assert time.time() - started < 8
    assert data == b"" or data.startswith(b"-ERR")
    s.close()


def test_pop3_delete_reaches_idling_imap_session(srv):
    for i in (1, 2):
        srv.cli.deliver(USER, msg(i))
    s = socket.create_connection(("127.0.0.1", srv.ports["imap"]), timeout=10)
    f = s.makefile("rwb")

    def until(prefix):
        while True:
            line = f.readline()
            assert line, "IMAP connection closed"
            if line.startswith(prefix):
                return line

    f.readline()
    f.write(f"a LOGIN {USER} {PW}\r\nb SELECT INBOX\r\nc IDLE\r\n".encode())
    f.flush()
    until(b"a OK")
    until(b"b OK")
    assert until(b"+") == b"+ idling\r\n"
    p = pop(srv)
    p.dele(1)
    started = time.time()
    p.quit()
    s.settimeout(3)
    assert until(b"* ") == b"* 1 EXPUNGE\r\n"
    assert time.time() - started < 3
    f.write(b"DONE\r\n")
    f.flush()
    assert until(b"c ").startswith(b"c OK")
    s.close()
