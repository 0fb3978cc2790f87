"""`letterbox serve`: first run in dev mode, TLS on implicit-TLS ports,
authentication and throttling through a real protocol, management commands
against a running server, graceful shutdown, and restart after kill -9."""

import poplib
import re
import signal
import socket
import ssl
import subprocess
import time

import pytest

from conftest import BIN


def tls_context(server):
    ctx = ssl.create_default_context(cafile=str(server.cli.data_dir / "tls" / "cert.pem"))
    ctx.check_hostname = True
    return ctx


def test_dev_first_run_creates_demo_account_and_prints_credentials(server_factory):
    srv = server_factory().start()
    out = "".join(srv.output)
    assert f"data directory {srv.cli.data_dir}" in out
    m = re.search(r"address:\s+(\S+)\s+password:\s+(\S+)", out)
    assert m, out
    address, password = m.groups()
    assert address == "demo@example.test"
    for svc in srv.listening_services():
        assert f"{svc} listening on 127.0.0.1:{srv.ports[svc]}" in out
    # The printed credentials work.
    p = poplib.POP3("127.0.0.1", srv.ports["pop3"], timeout=10)
    p.user(address)
    assert p.pass_(password).startswith(b"+OK")
    p.quit()
    # A second start keeps the account and prints no new password.
    srv.stop()
    srv.output.clear()
    srv.start()
    assert "password:" not in "".join(srv.output)


def test_implicit_tls_handshake_with_generated_certificate(server_factory):
    srv = server_factory().start()
    ctx = tls_context(srv)
    with socket.create_connection(("127.0.0.1", srv.ports["pop3s"]), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as tls:
            assert tls.version() in ("TLSv1.2", "TLSv1.3")
            assert tls.recv(100).startswith(b"+OK")
    # TLS 1.1 and older are refused.
    old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    old.check_hostname = False
    old.verify_mode = ssl.CERT_NONE
    try:
        old.maximum_version = ssl.TLSVersion.TLSv1_1
        old.minimum_version = ssl.TLSVersion.TLSv1
    except (ValueError, AttributeError):
        return
    with socket.create_connection(("127.0.0.1", srv.ports["pop3s"]), timeout=10) as raw:
        try:
            with old.wrap_socket(raw, server_hostname="localhost") as tls:
                tls.recv(10)
            handshake_ok = True
        except (ssl.SSLError, OSError):
            handshake_ok = False
    assert not handshake_ok


def test_openssl_s_client_completes_handshake(server_factory):
    srv = server_factory().start()
    p = subprocess.run(
        ["openssl", "s_client", "-connect", f"127.0.0.1:{srv.ports['pop3s']}", "-servername", "localhost",
         "-CAfile", str(srv.cli.data_dir / "tls" / "cert.pem"), "-verify_return_error", "-brief", "-ign_eof"],
        input="QUIT\r\n", capture_output=True, text=True, timeout=30,
    )
    assert "Verification: OK" in p.stderr or "Verify return code: 0" in p.stdout + p.stderr, p.stderr
    assert "+OK" in p.stdout


def login(srv, user, password):
    p = poplib.POP3("127.0.0.1", srv.ports["pop3"], timeout=30)
    try:
        p.user(user)
        p.pass_(password)
        return p
    except poplib.error_proto as e:
        p.close()
        raise e


def test_auth_right_wrong_unknown_and_rate_limit(server_factory):
    srv = server_factory("[auth]\nfailure_delay_ms = 10\nmax_failures_per_account = 3\nmax_failures_per_ip = 6")
    srv.cli.add_user("alice@example.test", "right-pw")
    srv.start()
    login(srv, "Alice@Example.test", "right-pw").quit()
    for _ in range(3):
        try:
            login(srv, "alice@example.test", "wrong")
            raise AssertionError("wrong password accepted")
        except poplib.error_proto as e:
            assert b"[AUTH]" in e.args[0]
    # Account locked now: even the right password is refused, as temporary.
    try:
        login(srv, "alice@example.test", "right-pw")
        raise AssertionError("rate limit did not kick in")
    except poplib.error_proto as e:
        assert b"[SYS/TEMP]" in e.args[0] or b"[AUTH]" in e.args[0]
    # Unknown users count against the IP: after the per-IP limit, everything is refused.
    for i in range(3):
        try:
            login(srv, f"ghost{i}@example.test", "x")
        except poplib.error_proto:
            pass
    srv.cli.add_user("bob@example.test", "bob-pw")
    try:
        login(srv, "bob@example.test", "bob-pw")
        raise AssertionError("per-IP limit did not kick in")
    except poplib.error_proto:
        pass


def test_management_while_running_takes_effect_at_once(server_factory):
    srv = server_factory().start()
    srv.cli.add_user("carol@example.test", "pw1")
    login(srv, "carol@example.test", "pw1").quit()
    srv.cli.run("user", "passwd", "carol@example.test", input="pw2\n", check=True)
    login(srv, "carol@example.test", "pw2").quit()
    srv.cli.run("user", "remove", "carol@example.test", check=True)
    try:
        login(srv, "carol@example.test", "pw2")
        raise AssertionError("removed account can still log in")
    except poplib.error_proto:
        pass


def test_sigterm_shuts_down_gracefully(server_factory):
    srv = server_factory().start()
    p = poplib.POP3("127.0.0.1", srv.ports["pop3"], timeout=30)
    started = time.time()
    assert srv.stop(signal.SIGTERM) == 0
    assert time.time() - started < 25
    # The open session was told goodbye or closed, and the port is free.
    try:
        p.noop()
        said = True
    except (poplib.error_proto, OSError, EOFError):
        said = False
    assert not said
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", srv.ports["pop3"])) != 0


def test_restart_after_kill_9_keeps_delivered_mail(server_factory):
    srv = server_factory().start()
    srv.cli.add_user("dave@example.test", "pw")
    for i in range(5):
        msg = f"From: x@example.test\r\nSubject: {i}\r\n\r\nbody {i}\r\n"
        srv.cli.run("deliver", "dave@example.test", input=msg, check=True)
    srv.stop(signal.SIGKILL)
    srv.output.clear()
    srv.start()
    p = login(srv, "dave@example.test", "pw")
    count, _ = p.stat()
    assert count == 5
    assert b"body 4" in b"\r\n".join(p.retr(5)[1])
    p.quit()


def test_refuses_to_start_on_a_data_directory_it_cannot_write(server_factory):
    """Issue 18: a read-only data directory is an error at start, not a
    server answering 451 forever. Needs a non-root user (root writes anyway)."""
    import os
    import shutil

    if os.geteuid() != 0 or not shutil.which("runuser"):
        pytest.skip("needs root to run the server as another user")
    srv = server_factory()
    srv.cli.add_user("alice@example.test", "pw")
    for root, dirs, files in os.walk(srv.tmp):
        os.chmod(root, 0o755)
        for f in files:
            os.chmod(os.path.join(root, f), 0o644)
    # Every directory above must be traversable by the other user.
    d = os.path.dirname(os.path.abspath(srv.tmp))
    while d != "/":
        os.chmod(d, os.stat(d).st_mode | 0o005)
        d = os.path.dirname(d)
    p = subprocess.run(
        ["runuser", "-u", "nobody", "--", BIN, "--config", str(srv.config), "--data", str(srv.cli.data_dir),
         "--dev", "serve"],
        capture_output=True, text=True, timeout=60,
    )
    assert p.returncode != 0, p.stdout
    assert "letterbox: ready" not in p.stdout
    assert "is not writable" in p.stderr, p.stderr[-2000:]
