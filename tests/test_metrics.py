"""Operations endpoints: /metrics in the Prometheus text format (checked by
Debian prometheus's `promtool check metrics`) with connection, command,
authentication, delivery, queue and store-commit figures that move with
real traffic, and /healthz and /readyz (a durable store write and free
disk). Clients: Python's http.client, imaplib, smtplib; promtool."""

import http.client
import imaplib
import re
import shutil
import smtplib
import subprocess

import pytest


def get(srv, path, headers=None):
    c = http.client.HTTPConnection("127.0.0.1", srv.ports["http"], timeout=30)
    c.request("GET", path, headers=headers or {})
    r = c.getresponse()
    body = r.read()
    c.close()
    return r.status, r.headers, body.decode()


def samples(text):
    """{(name, frozenset(labels)): value} of an exposition."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$', line)
        assert m, line
        labels = frozenset(re.findall(r'(\w+)="([^"]*)"', m.group(2) or ""))
        out[(m.group(1), labels)] = float(m.group(3))
    return out


def value(s, name, **labels):
    want = set(labels.items())
    return sum(v for (n, l), v in s.items() if n == name and want <= set(l))


@pytest.fixture
def srv(server_factory):
    s = server_factory().start()
    s.cli.add_user("alice@example.test", "pw-alice")
    return s


def test_metrics_move_with_traffic_and_pass_promtool(srv):
    _, _, before = get(srv, "/metrics")
    b = samples(before)
    c = imaplib.IMAP4("127.0.0.1", srv.ports["imap"])
    with pytest.raises(imaplib.IMAP4.error):
        c.login("alice@example.test", "wrong")
    c.logout()
    c = imaplib.IMAP4("127.0.0.1", srv.ports["imap"])
    c.login("alice@example.test", "pw-alice")
    c.select("INBOX")
    c.logout()
    with smtplib.SMTP("127.0.0.1", srv.ports["smtp"]) as s:
        s.sendmail("bob@remote.test", ["alice@example.test"], b"Subject: m\r\n\r\nbody\r\n")
    status, headers, text = get(srv, "/metrics")
    assert status == 200 and headers["Content-Type"].startswith("text/plain; version=0.0.4")
    a = samples(text)
    assert value(a, "letterbox_connections_total", listener="imap") >= value(b, "letterbox_connections_total", listener="imap") + 2
    assert value(a, "letterbox_commands_total", protocol="imap", command="LOGIN") >= 2
    assert value(a, "letterbox_commands_total", protocol="smtp", command="DATA") >= 1
    assert value(a, "letterbox_auth_attempts_total", result="failure") >= 1
    assert value(a, "letterbox_auth_attempts_total", result="success") >= 1
    assert value(a, "letterbox_messages_accepted_total", protocol="smtp") >= 1
    assert value(a, "letterbox_store_commit_duration_seconds_count") >= 1
    assert value(a, "letterbox_command_duration_seconds_bucket", protocol="imap", le="+Inf") >= 2
    assert ("letterbox_queue_messages", frozenset()) in a
    assert "# HELP letterbox_commands_total" in text
    check = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr


def test_health_and_readiness(srv, server_factory):
    assert get(srv, "/healthz")[0] == 200
    status, _, body = get(srv, "/readyz")
    assert status == 200, body
    # A node that cannot keep what it accepts is not ready.
    full = server_factory("[http]\nready_min_free_mb = 1000000000", sub="full").start()
    status, _, body = get(full, "/readyz")
    assert status == 503 and "disk space low" in body
