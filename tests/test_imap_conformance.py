"""IMAP behaviour that Dovecot's imaptest checks (groups search-date, atoms,
fetch-binary-mime, append-binary and move), with exact responses, and the
per-address connection slot under login churn."""

import re
import socket
import time

import pytest

USER = "alice@example.test"
PW = "alice-pw"


@pytest.fixture
def srv(server_factory):
    s = server_factory("[auth]\nfailure_delay_ms = 10")
    s.cli.add_user(USER, PW)
    return s.start()


class Raw:
    """Byte-level IMAP client."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.f = self.sock.makefile("rwb")
        self.greeting = self.f.readline()

    def send(self, data):
        self.f.write(data)
        self.f.flush()

    def until(self, tag):
        """Everything up to and including the tagged response, literals
        read by their announced size."""
        out = b""
        while True:
            line = self.f.readline()
            assert line, "connection closed: " + repr(out)
            out += line
            m = re.search(rb"\{(\d+)\}\r\n$", line)
            if m:
                out += self.f.read(int(m.group(1)))
                continue
            if line.startswith(tag.encode() + b" "):
                return out

    def cmd(self, tag, text):
        if isinstance(text, str):
            text = text.encode()
        self.send(tag.encode() + b" " + text + b"\r\n")
        return self.until(tag)

    def close(self):
        # The socket only closes once its file object is closed too.
        self.f.close()
        self.sock.close()


def login(srv):
    r = Raw(srv.ports["imap"])
    assert r.cmd("l", f"LOGIN {USER} {PW}").startswith(b"l OK")
    return r


def dated(date, n):
    return f"From: a@example.test\r\nSubject: {n}\r\nDate: {date}\r\n\r\nbody\r\n"


def test_sent_dates_compare_the_date_as_written(srv):
    # RFC 9051 §6.4.4: the Date header's date, ignoring time and timezone.
    for n, date in enumerate(
        [
            "Sun, 25 Mar 2007 00:00:00 +0200",  # 24 Mar 22:00 UTC
            "Sat, 24 Mar 2007 23:00:00 -0800",  # 25 Mar 07:00 UTC
            "26 Mar 07 00:30 (obsolete year) +0300",
            "Sun, 25 Mar 2007 23:59:59 -1200",  # 26 Mar UTC
        ]
    ):
        srv.cli.deliver(USER, dated(date, n))
    r = login(srv)
    r.cmd("s", "SELECT INBOX")
    assert r.cmd("a", "SEARCH SENTON 25-Mar-2007") == b"* SEARCH 1 4\r\na OK SEARCH completed\r\n"
    assert r.cmd("b", "SEARCH SENTON 24-mar-2007") == b"* SEARCH 2\r\nb OK SEARCH completed\r\n"
    assert r.cmd("c", "SEARCH SENTBEFORE 25-Mar-2007") == b"* SEARCH 2\r\nc OK SEARCH completed\r\n"
    assert r.cmd("d", "SEARCH SENTSINCE 26-Mar-2007") == b"* SEARCH 3\r\nd OK SEARCH completed\r\n"
    assert r.cmd("e", "SEARCH NOT SENTSINCE 25-Mar-2007") == b"* SEARCH 2\r\ne OK SEARCH completed\r\n"


def test_list_pattern_that_is_not_modified_utf7_matches_nothing(srv):
    r = login(srv)
    # imaptest's atoms group: every atom-char, `&` included; Dovecot answers OK.
    assert r.cmd("a", "LIST \"\" !#$&'+,-.0123456789:;<=>?@^_`|[}%*") == b"a OK LIST completed\r\n"
    assert r.cmd("b", 'LIST "&" *') == b"b OK LIST completed\r\n"
    assert r.cmd("c", 'LSUB "" Foo&bar*') == b"c OK LSUB completed\r\n"
    # Only the bad pattern of several is dropped.
    assert r.cmd("d", 'LIST "" (INBOX "&bad")') == b'* LIST (\\HasNoChildren) "/" INBOX\r\nd OK LIST completed\r\n'
    # A mailbox *name* that is not modified UTF-7 is still refused.
    assert r.cmd("e", "SELECT !#$&'+,-.").startswith(b"e NO [CANNOT] ")
