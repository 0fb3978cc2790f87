"""Smaller IMAP extensions end to end, with exact responses: QUOTA
(RFC 9208), APPENDLIMIT (RFC 7889), PREVIEW (RFC 8970), UNAUTHENTICATE
(RFC 8437) and UTF8=ACCEPT (RFC 6855)."""

import re

import pytest

from test_imap import PW, USER, Raw, msg


@pytest.fixture
def srv(server_factory):
    s = server_factory("[auth]\nfailure_delay_ms = 10")
    s.cli.add_user(USER, PW)
    s.cli.run("user", "quota", USER, "--quota-bytes", str(10 * 1024 * 1024), "--quota-messages", "1000", check=True)
    s.cli.deliver(USER, msg(1, "Hello there, this is the first line of the body."))
    s.cli.deliver(USER, msg(2, "x" * 400))
    return s.start()


def login(srv):
    r = Raw(srv.ports["imap"])
    assert r.cmd("l", f"LOGIN {USER} {PW}")[-1].startswith(b"l OK")
    return r


def caps(r):
    line = r.cmd("c", "CAPABILITY")[0].decode()
    return set(line.split()[2:])


def test_quota_and_appendlimit(srv):
    r = login(srv)
    c = caps(r)
    assert {"QUOTA", "QUOTA=RES-STORAGE", "QUOTA=RES-MESSAGE", "PREVIEW", "UNAUTHENTICATE", "UTF8=ACCEPT"} <= c
    assert "QUOTASET" not in c
    assert f"APPENDLIMIT={64 * 1024 * 1024}" in c
    out = r.cmd("g", "GETQUOTAROOT INBOX")
    assert out[0] == b'* QUOTAROOT INBOX ""\r\n'
    m = re.fullmatch(rb'\* QUOTA "" \(STORAGE (\d+) 10240 MESSAGE 2 1000\)\r\n', out[1])
    assert m and int(m.group(1)) >= 1, out
    assert out[2] == b"g OK quota reported\r\n"
    # The mailbox need not exist (§4.1.2); the root is the account's.
    assert r.cmd("g2", "GETQUOTAROOT Nosuch")[0] == b'* QUOTAROOT Nosuch ""\r\n'
    assert r.cmd("g3", 'GETQUOTA ""')[0] == out[1]
    assert r.cmd("g4", 'GETQUOTA "other"') == [b"g4 NO [NONEXISTENT] no such quota root\r\n"]
    assert r.cmd("s", 'SETQUOTA "" (STORAGE 1)') == [b"s NO [NOPERM] quotas are set by the administrator\r\n"]
    # Usage follows the mail: one more message counts.
    r.cmd("sel", "SELECT INBOX")
    r.cmd("cp", "COPY 1 INBOX")
    assert b"MESSAGE 3 1000" in r.cmd("g5", "GETQUOTAROOT INBOX")[1]
    # STATUS DELETED-STORAGE (§4.2) and APPENDLIMIT (RFC 7889 §3).
    r.cmd("d", "STORE 2 +FLAGS.SILENT (\\Deleted)")
    size2 = int(re.search(rb"RFC822.SIZE (\d+)", r.cmd("f", "FETCH 2 RFC822.SIZE")[0]).group(1))
    out = r.cmd("st", "STATUS INBOX (DELETED DELETED-STORAGE APPENDLIMIT)")
    assert out[0] == f"* STATUS INBOX (DELETED 1 DELETED-STORAGE {size2} APPENDLIMIT {64 * 1024 * 1024})\r\n".encode()
    r.close()


def test_preview(srv):
    r = login(srv)
    r.cmd("s", "EXAMINE INBOX")
    out = r.cmd("p", "FETCH 1:2 (PREVIEW)")
    assert out[0] == b'* 1 FETCH (PREVIEW "Hello there, this is the first line of the body. 1")\r\n'
    assert out[1].startswith(b'* 2 FETCH (PREVIEW "xxxx')
    # LAZY: computed at delivery, so the text comes at once (§4.1).
    out = r.cmd("q", "UID FETCH 1 (UID PREVIEW (LAZY))")
    assert out[0] == b'* 1 FETCH (UID 1 PREVIEW "Hello there, this is the first line of the body. 1")\r\n'
    r.close()


def test_unauthenticate(srv):
    r = login(srv)
    r.cmd("e", "ENABLE CONDSTORE")
    r.cmd("s", "SELECT INBOX")
    assert r.cmd("u", "UNAUTHENTICATE") == [b"u OK UNAUTHENTICATE completed\r\n"]
    # Not authenticated again: mailbox commands need a login.
    assert r.cmd("n", "STATUS INBOX (MESSAGES)")[-1].startswith(b"n BAD")
    assert "UNAUTHENTICATE" not in caps(r)
    assert r.cmd("l", f"LOGIN {USER} {PW}")[-1].startswith(b"l OK")
    # ENABLE state was reset: CONDSTORE can be turned on again.
    assert r.cmd("e2", "ENABLE CONDSTORE")[0] == b"* ENABLED CONDSTORE\r\n"
    assert r.cmd("u2", "UNAUTHENTICATE")[0] == b"u2 OK UNAUTHENTICATE completed\r\n"
    assert r.cmd("u3", "UNAUTHENTICATE")[0].startswith(b"u3 BAD")
    r.close()


def test_utf8_accept(srv):
    r = login(srv)
    assert r.cmd("e", "ENABLE UTF8=ACCEPT") == [b"* ENABLED UTF8=ACCEPT\r\n", b"e OK ENABLE completed\r\n"]
    name = "Entwürfe/日本"
    out = r.cmd("c", f'CREATE "{name}"')
    assert out[-1].startswith(b"c OK"), out
    out = r.cmd("l", 'LIST "" "Entw*"')
    assert f'* LIST (\\HasNoChildren) "/" "{name}"\r\n'.encode() in out, out
    # RFC 6855 §4: a message with UTF-8 header fields comes as UTF8 (~{n}).
    data = "From: Jörg <j@example.test>\r\nSubject: Grüße\r\n\r\nHallo\r\n".encode()
    r.send(f'a APPEND "{name}" UTF8 (~{{{len(data)}+}}\r\n'.encode() + data + b")\r\n")
    out = r.until("a")
    assert re.match(rb"a OK \[APPENDUID \d+ 1\]", out[-1]), out
    r.cmd("s", f'SELECT "{name}"')
    out = r.cmd("f", "FETCH 1 (BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert "Subject: Grüße".encode() in b"".join(out)
    # No CHARSET once UTF-8 is the only one (§3).
    assert r.cmd("x", "SEARCH CHARSET UTF-8 ALL")[-1].startswith(b"x BAD")
    # A rev1 client without UTF8=ACCEPT sees the same name in modified UTF-7.
    other = login(srv)
    out = other.cmd("l", 'LIST "" "Entw*"')
    assert b'* LIST (\\HasNoChildren) "/" Entw&APw-rfe/&ZeVnLA-\r\n' in out, out
    other.close()
    r.close()
