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


def test_binary_of_the_empty_section_is_the_whole_message(srv):
    plain = (
        "From: a@example.test\r\nSubject: plain\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\ncaf\u00e9\r\n"
    ).encode()
    srv.cli.deliver(USER, plain)
    srv.cli.deliver(
        USER,
        "From: a@example.test\r\nSubject: mixed\r\nMIME-Version: 1.0\r\n"
        "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nhello\r\n"
        "--b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        "aGk=\r\n--b--\r\n",
    )
    r = login(srv)
    r.cmd("s", "SELECT INBOX")
    full = r.cmd("a", "FETCH 1 BODY.PEEK[]")
    whole = full[full.index(b"}\r\n") + 3 : full.rindex(b")\r\n")]
    assert whole.endswith(plain)
    # RFC 3516 §4.2: BINARY[] is the whole message, header included.
    n = len(whole)
    assert r.cmd("b", "FETCH 1 (BINARY.SIZE[] BINARY.PEEK[])") == (
        b"* 1 FETCH (BINARY.SIZE[] %d BINARY[] {%d}\r\n" % (n, n) + whole + b")\r\nb OK FETCH completed\r\n"
    )
    # Encoded parts are decoded, and their header says so.
    full = r.cmd("c", "FETCH 2 BODY.PEEK[]")
    whole = full[full.index(b"}\r\n") + 3 : full.rindex(b")\r\n")]
    want = whole.replace(
        b"Content-Transfer-Encoding: base64\r\n\r\naGk=", b"Content-Transfer-Encoding: binary\r\n\r\nhi"
    )
    assert want != whole
    n = len(want)
    assert r.cmd("d", "FETCH 2 (BINARY.SIZE[] BINARY.PEEK[])") == (
        b"* 2 FETCH (BINARY.SIZE[] %d BINARY[] {%d}\r\n" % (n, n) + want + b")\r\nd OK FETCH completed\r\n"
    )
    # The part sections are unchanged.
    assert r.cmd("e", "FETCH 2 (BINARY.SIZE[2] BINARY.PEEK[2])") == (
        b"* 2 FETCH (BINARY.SIZE[2] 2 BINARY[2] {2}\r\nhi)\r\ne OK FETCH completed\r\n"
    )


BINARY_PART = b"\0-\xe4\n\r\n\n"
BINARY_MSG = (
    b"From: user@example.test\r\nDate: Sat, 24 Mar 2007 23:00:00 +0200\r\nMime-Version: 1.0\r\n"
    b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\n" + BINARY_PART
)


def test_append_literal8_keeps_binary_part_bytes(srv):
    r = login(srv)
    r.send(b"a APPEND INBOX ~{%d}\r\n" % len(BINARY_MSG))
    assert r.f.readline() == b"+ Ready\r\n"
    r.send(BINARY_MSG + b"\r\n")
    assert re.fullmatch(rb"a OK \[APPENDUID \d+ 1\] APPEND completed\r\n", r.until("a"))
    r.cmd("s", "SELECT INBOX")
    # RFC 3516 §4.4: the bytes survive, bare LFs and NUL included.
    assert r.cmd("b", "FETCH 1 (BINARY.SIZE[1] BINARY.PEEK[1])") == (
        b"* 1 FETCH (BINARY.SIZE[1] 7 BINARY[1] ~{7}\r\n" + BINARY_PART + b")\r\nb OK FETCH completed\r\n"
    )
    # Stored re-encoded as base64, so BODY[] never carries a NUL (RFC 9051 §4.3).
    header = BINARY_MSG[: BINARY_MSG.index(b"\r\n\r\n") + 4].replace(b": binary", b": base64")
    assert r.cmd("c", "FETCH 1 (BODY.PEEK[1] BODY.PEEK[HEADER])") == (
        b"* 1 FETCH (BODY[1] {14}\r\nAC3kCg0KCg==\r\n BODY[HEADER] {%d}\r\n" % len(header)
        + header
        + b")\r\nc OK FETCH completed\r\n"
    )
    got = r.cmd("d", "FETCH 1 BODY.PEEK[]")
    assert b"\0" not in got and b"Content-Transfer-Encoding: base64\r\n\r\nAC3kCg0KCg==\r\n)" in got
    # An ordinary literal is stored as before: bare LF becomes CRLF.
    r.send(b"e APPEND INBOX {20+}\r\nSubject: y\n\nline\0 x\n\r\n")
    assert r.until("e").startswith(b"* 2 EXISTS")
    assert r.cmd("f", "FETCH 2 BODY.PEEK[TEXT]") == (
        b"* 2 FETCH (BODY[TEXT] ~{9}\r\nline\0 x\r\n)\r\nf OK FETCH completed\r\n"
    )


def test_move_into_the_selected_mailbox_expunges_before_exists(srv):
    for i in range(2):
        srv.cli.deliver(USER, dated("Mon, 1 Jan 2024 00:00:00 +0000", i))
    r = login(srv)
    r.cmd("s", "SELECT INBOX")
    lines = r.cmd("a", "MOVE 1 INBOX").split(b"\r\n")
    # RFC 6851 §3.3's example order (and Dovecot's): EXPUNGE, then EXISTS.
    assert re.fullmatch(rb"\* OK \[COPYUID \d+ 1 3\] moved", lines[0])
    assert lines[1:] == [b"* 1 EXPUNGE", b"* 1 RECENT", b"* 2 EXISTS", b"* 2 RECENT", b"a OK MOVE completed", b""]
    assert r.cmd("b", "FETCH 1:* UID") == b"* 1 FETCH (UID 2)\r\n* 2 FETCH (UID 3)\r\nb OK FETCH completed\r\n"


def test_reconnect_right_after_close_gets_the_freed_slot(server_factory):
    # One slot per address: every new connection must find the slot of the
    # one just closed, whether the client said LOGOUT or just hung up.
    srv = server_factory("[auth]\nfailure_delay_ms = 10\n[limits]\nmax_connections_per_ip = 1")
    srv.cli.add_user(USER, PW)
    srv.start()
    time.sleep(0.6)  # the start-up probes' sessions end
    for i in range(20):
        r = Raw(srv.ports["imap"])
        assert r.greeting.startswith(b"* OK "), (i, r.greeting)
        if i % 2:
            assert r.cmd("l", "LOGOUT").endswith(b"l OK LOGOUT completed\r\n")
        r.close()
    # Still a cap: a second connection while one is open is refused.
    held = Raw(srv.ports["imap"])
    assert held.greeting.startswith(b"* OK ")
    extra = Raw(srv.ports["imap"])
    assert extra.greeting == b"* BYE [UNAVAILABLE] too many connections, try again later\r\n"
    extra.close()
    held.close()
