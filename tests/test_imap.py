"""IMAP end to end: greeting and capabilities, LOGIN/AUTHENTICATE/STARTTLS
and implicit TLS, plaintext refusal, mailbox commands, FETCH/STORE/COPY/
MOVE/EXPUNGE/APPEND with exact responses, untagged updates between two
sessions, literals (synchronising, LITERAL+, too big) and bad input."""

import base64
import imaplib
import re
import socket
import ssl
import time

import pytest

USER = "alice@example.test"
PW = "alice-pw"
BASE_CAPS = "IMAP4rev1 IMAP4rev2 LITERAL+ SASL-IR ID ENABLE"
AUTH_CAPS = BASE_CAPS + (
    " NAMESPACE UNSELECT CHILDREN SPECIAL-USE CREATE-SPECIAL-USE UIDPLUS MULTIAPPEND MOVE IDLE"
    " LIST-EXTENDED LIST-STATUS ESEARCH SEARCHRES STATUS=SIZE BINARY OBJECTID CONDSTORE QRESYNC"
    " QUOTA QUOTA=RES-STORAGE QUOTA=RES-MESSAGE PREVIEW UNAUTHENTICATE UTF8=ACCEPT SORT SORT=DISPLAY ESORT"
    " THREAD=ORDEREDSUBJECT THREAD=REFERENCES COMPRESS=DEFLATE APPENDLIMIT=67108864"
)


def msg(i, body="body"):
    return f"From: sender@example.test\r\nTo: {USER}\r\nSubject: message {i}\r\n\r\n{body} {i}\r\n"


def cafile_context(srv):
    ctx = ssl.create_default_context(cafile=str(srv.cli.data_dir / "tls" / "cert.pem"))
    ctx.check_hostname = True
    return ctx


@pytest.fixture
def srv(server_factory):
    s = server_factory("[auth]\nfailure_delay_ms = 10")
    s.cli.add_user(USER, PW)
    return s.start()


def imap(srv):
    c = imaplib.IMAP4("127.0.0.1", srv.ports["imap"], timeout=30)
    c.login(USER, PW)
    return c


class Raw:
    """Line-level IMAP client, for asserting on exact bytes."""

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

    def until(self, tag):
        """Lines up to and including the tagged response for `tag`."""
        out = []
        while True:
            line = self.line()
            assert line, "connection closed: " + repr(out)
            out.append(line)
            if line.startswith(tag.encode() + b" "):
                return out

    def cmd(self, tag, text):
        self.send(f"{tag} {text}\r\n".encode())
        return self.until(tag)

    def close(self):
        self.sock.close()


def login_raw(srv):
    r = Raw(srv.ports["imap"])
    assert r.cmd("l", f"LOGIN {USER} {PW}")[-1].startswith(b"l OK")
    return r


def test_greeting_capability_noop_logout(srv):
    r = Raw(srv.ports["imap"])
    assert r.greeting == (
        f"* OK [CAPABILITY {BASE_CAPS} STARTTLS AUTH=PLAIN AUTH=LOGIN AUTH=OAUTHBEARER AUTH=XOAUTH2] localhost Letterbox IMAP ready\r\n"
    ).encode()
    assert r.cmd("a", "CAPABILITY") == [
        f"* CAPABILITY {BASE_CAPS} STARTTLS AUTH=PLAIN AUTH=LOGIN AUTH=OAUTHBEARER AUTH=XOAUTH2\r\n".encode(),
        b"a OK CAPABILITY completed\r\n",
    ]
    assert r.cmd("b", "NOOP") == [b"b OK NOOP completed\r\n"]
    assert r.cmd("c", f"LOGIN {USER} {PW}") == [f"c OK [CAPABILITY {AUTH_CAPS}] logged in\r\n".encode()]
    assert r.cmd("d", "LOGOUT") == [b"* BYE logging out\r\n", b"d OK LOGOUT completed\r\n"]
    assert r.line() == b""


def test_login_failures_and_wrong_state(srv):
    r = Raw(srv.ports["imap"])
    assert r.cmd("a", f"LOGIN {USER} wrong") == [b"a NO [AUTHENTICATIONFAILED] invalid credentials\r\n"]
    assert r.cmd("b", "SELECT INBOX") == [b"b BAD log in first\r\n"]
    assert r.cmd("c", "FETCH 1 FLAGS") == [b"c BAD FETCH needs a selected mailbox\r\n"]
    assert r.cmd("d", "ENABLE IMAP4rev2") == [b"d BAD ENABLE is only valid after login and before SELECT\r\n"]
    assert r.cmd("e", f'LOGIN "{USER}" "{PW}"')[-1].startswith(b"e OK")
    assert r.cmd("f", f"LOGIN {USER} {PW}") == [b"f BAD LOGIN is only valid before login\r\n"]
    assert r.cmd("g", "FETCH 1 FLAGS") == [b"g BAD FETCH needs a selected mailbox\r\n"]


def test_logindisabled_without_tls_then_starttls(server_factory):
    s = server_factory("[auth]\nallow_plaintext = false\nfailure_delay_ms = 10")
    s.cli.add_user(USER, PW)
    s.start()
    r = Raw(s.ports["imap"])
    assert f"{BASE_CAPS} STARTTLS LOGINDISABLED]".encode() in r.greeting
    assert r.cmd("a", f"LOGIN {USER} {PW}") == [b"a NO [PRIVACYREQUIRED] use STARTTLS first\r\n"]
    assert r.cmd("b", "AUTHENTICATE PLAIN") == [b"b NO [PRIVACYREQUIRED] use STARTTLS first\r\n"]
    c = imaplib.IMAP4("127.0.0.1", s.ports["imap"], timeout=30)
    c.starttls(cafile_context(s))
    typ, caps = c.capability()
    assert caps == [f"{BASE_CAPS} AUTH=PLAIN AUTH=LOGIN AUTH=OAUTHBEARER AUTH=XOAUTH2".encode()]
    assert c.login(USER, PW)[0] == "OK"
    c.logout()
    # Implicit TLS.
    c = imaplib.IMAP4_SSL("127.0.0.1", s.ports["imaps"], ssl_context=cafile_context(s), timeout=30)
    assert c.login(USER, PW)[0] == "OK"
    c.logout()


def test_starttls_refuses_pipelined_plaintext(srv):
    r = Raw(srv.ports["imap"])
    r.send(b"a STARTTLS\r\nb NOOP\r\n")
    assert r.until("a") == [b"a BAD no commands may follow STARTTLS before the handshake\r\n"]
    assert r.line() == b"* BYE protocol violation\r\n"
    assert r.line() == b""


def test_authenticate_plain_login_and_sasl_ir(srv):
    ir = base64.b64encode(f"\0{USER}\0{PW}".encode()).decode()
    r = Raw(srv.ports["imap"])
    assert r.cmd("a", f"AUTHENTICATE PLAIN {ir}")[-1].startswith(b"a OK [CAPABILITY")
    r = Raw(srv.ports["imap"])
    r.send(b"a AUTHENTICATE PLAIN\r\n")
    assert r.line() == b"+ \r\n"
    r.send(ir.encode() + b"\r\n")
    assert r.until("a")[-1].startswith(b"a OK")
    r = Raw(srv.ports["imap"])
    r.send(b"a AUTHENTICATE LOGIN\r\n")
    assert r.line() == b"+ VXNlcm5hbWU6\r\n"
    r.send(base64.b64encode(USER.encode()) + b"\r\n")
    assert r.line() == b"+ UGFzc3dvcmQ6\r\n"
    r.send(base64.b64encode(PW.encode()) + b"\r\n")
    assert r.until("a")[-1].startswith(b"a OK")
    r = Raw(srv.ports["imap"])
    r.send(b"a AUTHENTICATE PLAIN\r\n")
    assert r.line() == b"+ \r\n"
    r.send(b"*\r\n")
    assert r.until("a") == [b"a BAD authentication cancelled\r\n"]
    assert r.cmd("b", "AUTHENTICATE CRAM-MD5") == [b"b NO unsupported SASL mechanism CRAM-MD5\r\n"]
    # imaplib's own AUTHENTICATE.
    c = imaplib.IMAP4("127.0.0.1", srv.ports["imap"], timeout=30)
    assert c.authenticate("PLAIN", lambda _: f"\0{USER}\0{PW}".encode())[0] == "OK"


def test_id_enable_namespace(srv):
    r = login_raw(srv)
    assert r.cmd("a", 'ID ("name" "test")') == [
        b'* ID ("name" "Letterbox" "version" "0.1.0")\r\n',
        b"a OK ID completed\r\n",
    ]
    # Unknown capabilities are ignored; enabling twice reports nothing new.
    assert r.cmd("b", "ENABLE IMAP4rev2 FOO") == [b"* ENABLED IMAP4rev2\r\n", b"b OK ENABLE completed\r\n"]
    assert r.cmd("b2", "ENABLE IMAP4rev2") == [b"* ENABLED\r\n", b"b2 OK ENABLE completed\r\n"]
    assert r.cmd("c", "NAMESPACE") == [b'* NAMESPACE (("" "/")) NIL NIL\r\n', b"c OK completed\r\n"]


def test_bad_commands_and_bye_after_too_many(srv):
    r = Raw(srv.ports["imap"])
    cases = [
        (b"a FROB\r\n", b"a BAD unknown command FROB\r\n"),
        (b"b NOOP extra\r\n", b"b BAD syntax error: unexpected text at end of command\r\n"),
        (b"c LOGIN \"unterminated\r\n", b"c BAD syntax error: unterminated quoted string\r\n"),
        (b"\r\n", b"* BAD syntax error: missing or invalid tag\r\n"),
        (b"d FETCH 1 (FLAGS\r\n", b"d BAD syntax error: expected ' '\r\n"),
    ]
    for line, want in cases:
        r.send(line)
        assert r.line() == want
    for i in range(4):
        r.send(b"x BOGUS\r\n")
        assert r.line() == b"x BAD unknown command BOGUS\r\n"
    r.send(b"y BOGUS\r\n")
    assert r.line() == b"y BAD unknown command BOGUS\r\n"
    assert r.line() == b"* BYE too many invalid commands\r\n"
    assert r.line() == b""


def test_literals_sync_nonsync_and_too_big(srv):
    r = Raw(srv.ports["imap"])
    r.send(f"a LOGIN {{{len(USER)}}}\r\n".encode())
    assert r.line() == b"+ Ready\r\n"
    r.send(f"{USER} {{{len(PW)}+}}\r\n{PW}\r\n".encode())
    assert r.until("a")[-1].startswith(b"a OK")
    # A synchronising literal over the limit is refused before it is sent.
    r.send(b"b APPEND INBOX {999999999999}\r\n")
    assert r.line() == b"b NO [TOOBIG] literal too large (limit 67108864 octets)\r\n"
    assert r.cmd("c", "NOOP") == [b"c OK NOOP completed\r\n"]
    # A non-synchronising one over the limit is on its way: BAD and BYE.
    r.send(b"d LOGIN {100000+}\r\n")
    assert r.line() == b"d BAD [TOOBIG] literal too large\r\n"
    assert r.line() == b"* BYE [TOOBIG] literal too large; closing\r\n"


def test_select_examine_close_unselect(srv):
    for i in range(1, 4):
        srv.cli.deliver(USER, msg(i))
    r = login_raw(srv)
    lines = r.cmd("a", "SELECT inbox")
    assert lines[0] == b"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n"
    assert lines[1] == b"* 3 EXISTS\r\n"
    # The first session to select the mailbox holds \\Recent for its messages.
    assert lines[2] == b"* 3 RECENT\r\n"
    assert lines[3] == b"* OK [UNSEEN 1] first unseen\r\n"
    assert lines[4] == b"* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)] flags permitted\r\n"
    assert re.fullmatch(rb"\* OK \[UIDVALIDITY \d+\] UIDs valid\r\n", lines[5])
    assert lines[6] == b"* OK [UIDNEXT 4] predicted next UID\r\n"
    assert re.fullmatch(rb"\* OK \[MAILBOXID \(M\d+\)\] mailbox id\r\n", lines[7])
    # RFC 7162 §3.1.2.1: every mailbox keeps mod-sequences.
    assert re.fullmatch(rb"\* OK \[HIGHESTMODSEQ \d+\] highest mod-sequence\r\n", lines[8])
    assert lines[9] == b"a OK [READ-WRITE] SELECT completed\r\n"
    assert r.cmd("b", "STORE 1 +FLAGS (\\Deleted)")[-1] == b"b OK STORE completed\r\n"
    assert r.cmd("c", "UNSELECT") == [b"c OK UNSELECT completed\r\n"]
    lines = r.cmd("d", "EXAMINE INBOX")
    assert lines[1] == b"* 3 EXISTS\r\n"
    assert b"* OK [PERMANENTFLAGS ()] flags permitted\r\n" in lines
    assert lines[-1] == b"d OK [READ-ONLY] EXAMINE completed\r\n"
    assert r.cmd("e", "STORE 1 +FLAGS (\\Seen)") == [b"e NO [READ-ONLY] mailbox is read-only\r\n"]
    assert r.cmd("f", "CLOSE") == [b"f OK CLOSE completed\r\n"]  # read-only: no expunge
    assert r.cmd("g", "SELECT INBOX")[1] == b"* 3 EXISTS\r\n"
    assert r.cmd("h", "CLOSE") == [b"h OK CLOSE completed\r\n"]
    assert r.cmd("i", "SELECT INBOX")[1] == b"* 2 EXISTS\r\n"
    # RFC 7162 §3.2.11: the selected mailbox is closed even when the new one fails.
    assert r.cmd("j", "SELECT nosuch") == [
        b"* OK [CLOSED] previous mailbox closed\r\n",
        b"j NO [NONEXISTENT] no such mailbox\r\n",
    ]
    assert r.cmd("k", "FETCH 1 FLAGS") == [b"k BAD FETCH needs a selected mailbox\r\n"]


def test_list_lsub_create_rename_delete_subscribe_status(srv):
    c = imap(srv)
    typ, data = c.list()
    assert data == [
        b'(\\HasNoChildren) "/" INBOX',
        b'(\\HasNoChildren \\Archive) "/" Archive',
        b'(\\HasNoChildren \\Drafts) "/" Drafts',
        b'(\\HasNoChildren \\Junk) "/" Junk',
        b'(\\HasNoChildren \\Sent) "/" Sent',
        b'(\\HasNoChildren \\Trash) "/" Trash',
    ]
    assert c.list('""', '""')[1] == [b'(\\Noselect) "/" ""']
    assert c.create("Work/Projects")[0] == "OK"
    assert c.create('"My Box"')[0] == "OK"
    assert c.create("INBOX")[0] == "NO"
    assert c.create("Sent") == ("NO", [b"[ALREADYEXISTS] mailbox Sent already exists"])
    assert c.list('""', "W%")[1] == [b'(\\Noselect \\HasChildren) "/" Work']
    assert c.list('""', "Work/%")[1] == [b'(\\HasNoChildren) "/" Work/Projects']
    assert c.list('""', '"My Box"')[1] == [b'(\\HasNoChildren) "/" "My Box"']
    assert c.rename("Work/Projects", "Done")[0] == "OK"
    assert c.list('""', "Done")[1] == [b'(\\HasNoChildren) "/" Done']
    assert c.list('""', "Work*")[1] == [None]
    assert c.subscribe("Done")[0] == "OK"
    assert c.subscribe("Ghost")[0] == "OK"
    typ, data = c.lsub('""', "*")
    assert b'() "/" Done' in data and b'(\\Noselect) "/" Ghost' in data
    assert c.unsubscribe("Ghost")[0] == "OK"
    assert b'(\\Noselect) "/" Ghost' not in c.lsub('""', "*")[1]
    srv.cli.deliver(USER, msg(1))
    typ, data = c.status("INBOX", "(MESSAGES UIDNEXT UNSEEN DELETED SIZE RECENT)")
    assert data == [f"INBOX (MESSAGES 1 UIDNEXT 2 UNSEEN 1 DELETED 0 SIZE {len(msg(1))} RECENT 1)".encode()]
    assert c.status("nosuch", "(MESSAGES)")[0] == "NO"
    assert c.delete("Done")[0] == "OK"
    assert c.delete("INBOX")[0] == "NO"
    assert c.list('""', "Done")[1] == [None]
    typ, data = c._simple_command("CREATE", "Old", "(USE (\\Archive))"), None
    assert typ[0] == "OK"
    assert c.list('""', "Old")[1] == [b'(\\HasNoChildren \\Archive) "/" Old']
    typ = c._simple_command("CREATE", "Bad", "(USE (\\Bogus))")
    assert typ[0] == "NO"


def test_fetch_items_and_seen(srv):
    body = "From: Sender <sender@example.test>\r\nTo: alice@example.test\r\nSubject: hello\r\n" \
           "Date: Mon, 4 Mar 2024 10:00:00 +0000\r\nMessage-ID: <m1@example.test>\r\n\r\nline one\r\nline two\r\n"
    srv.cli.deliver(USER, body)
    r = login_raw(srv)
    r.cmd("s", "SELECT INBOX")
    raw = r.cmd("a", "FETCH 1 (UID FLAGS RFC822.SIZE BODY.PEEK[HEADER.FIELDS (Subject)])")
    assert raw[0] == f"* 1 FETCH (UID 1 FLAGS (\\Recent) RFC822.SIZE {len(body)} BODY[HEADER.FIELDS (Subject)] {{18}}\r\n".encode()
    assert raw[1] == b"Subject: hello\r\n"
    assert raw[2] == b"\r\n"
    assert raw[3] == b")\r\n"
    assert raw[4] == b"a OK FETCH completed\r\n"
    lines = r.cmd("b", "FETCH 1 (ENVELOPE BODYSTRUCTURE)")
    assert lines[0] == (
        b'* 1 FETCH (ENVELOPE ("Mon, 4 Mar 2024 10:00:00 +0000" "hello" (("Sender" NIL "sender" "example.test")) '
        b'(("Sender" NIL "sender" "example.test")) (("Sender" NIL "sender" "example.test")) '
        b'((NIL NIL "alice" "example.test")) NIL NIL NIL "<m1@example.test>") '
        b'BODYSTRUCTURE ("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 20 2 NIL NIL NIL NIL))\r\n'
    )
    lines = r.cmd("c", "UID FETCH 1 (BODY[TEXT]<5.8>)")
    assert lines == [b"* 1 FETCH (UID 1 BODY[TEXT]<5> {8}\r\n", b"one\r\n", b"lin FLAGS (\\Seen \\Recent))\r\n",
                     b"c OK FETCH completed\r\n"]
    # The non-PEEK fetch set \Seen and reported it.
    assert r.cmd("d", "FETCH 1 FLAGS") == [b"* 1 FETCH (FLAGS (\\Seen \\Recent))\r\n", b"d OK FETCH completed\r\n"]
    r.cmd("e", "STORE 1 -FLAGS.SILENT (\\Seen)")
    lines = r.cmd("f", "FETCH 1 BINARY[1]")
    assert lines == [b"* 1 FETCH (BINARY[1] {20}\r\n", b"line one\r\n", b"line two\r\n",
                     b" FLAGS (\\Seen \\Recent))\r\n", b"f OK FETCH completed\r\n"]
    assert r.cmd("g", "FETCH 1 BINARY.SIZE[1]") == [b"* 1 FETCH (BINARY.SIZE[1] 20)\r\n", b"g OK FETCH completed\r\n"]
    c = imap(srv)
    c.select("INBOX")
    typ, data = c.fetch("1", "(RFC822)")
    assert data[0][1] == body.encode()
    typ, data = c.fetch("1", "(INTERNALDATE)")
    assert re.fullmatch(rb'1 \(INTERNALDATE "\d\d-\w{3}-\d{4} \d\d:\d\d:\d\d \+0000"\)', data[0])
    assert r.cmd("h", "FETCH 2 FLAGS") == [b"h BAD invalid message sequence number\r\n"]
    assert r.cmd("i", "UID FETCH 2:* FLAGS") == [b"* 1 FETCH (UID 1 FLAGS (\\Seen \\Recent))\r\n", b"i OK FETCH completed\r\n"]


def test_store_copy_move_expunge_append(srv):
    for i in range(1, 5):
        srv.cli.deliver(USER, msg(i))
    r = login_raw(srv)
    r.cmd("s", "SELECT INBOX")
    assert r.cmd("a", "STORE 1:2 +FLAGS (\\Flagged $Work)") == [
        b"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Work)\r\n",
        b"* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Work \\*)] flags permitted\r\n",
        b"* 1 FETCH (FLAGS ($Work \\Flagged \\Recent))\r\n",
        b"* 2 FETCH (FLAGS ($Work \\Flagged \\Recent))\r\n",
        b"a OK STORE completed\r\n",
    ]
    assert r.cmd("b", "UID STORE 2 FLAGS.SILENT (\\Deleted)") == [b"b OK STORE completed\r\n"]
    lines = r.cmd("c", "COPY 1:2 Archive")
    assert re.fullmatch(rb"c OK \[COPYUID \d+ 1:2 1:2\] COPY completed\r\n", lines[-1])
    lines = r.cmd("d", "UID MOVE 3 Trash")
    assert re.fullmatch(rb"\* OK \[COPYUID \d+ 3 1\] moved\r\n", lines[0])
    # Each removal of a \\Recent message updates the count (RFC 3501 §7.3.2).
    assert lines[1:] == [b"* 3 EXPUNGE\r\n", b"* 3 RECENT\r\n", b"d OK MOVE completed\r\n"]
    assert r.cmd("e", "EXPUNGE") == [b"* 2 EXPUNGE\r\n", b"* 2 RECENT\r\n", b"e OK EXPUNGE completed\r\n"]
    assert r.cmd("f", "UID FETCH 1:* FLAGS") == [
        b"* 1 FETCH (UID 1 FLAGS ($Work \\Flagged \\Recent))\r\n",
        b"* 2 FETCH (UID 4 FLAGS (\\Recent))\r\n",
        b"f OK FETCH completed\r\n",
    ]
    r.cmd("g", "STORE 1:2 +FLAGS.SILENT (\\Deleted)")
    assert r.cmd("h", "UID EXPUNGE 4") == [b"* 2 EXPUNGE\r\n", b"* 1 RECENT\r\n", b"h OK EXPUNGE completed\r\n"]
    assert r.cmd("i", "COPY 1 Nosuch") == [b"i NO [TRYCREATE] no such mailbox\r\n"]
    r.send(b"j APPEND INBOX (\\Seen) \"05-Mar-2024 10:00:00 +0100\" {12}\r\n")
    assert r.line() == b"+ Ready\r\n"
    r.send(b"Subject: x\r\n\r\n")
    lines = r.until("j")
    # The appending session sees the new message first, so it is \\Recent there.
    assert lines[:2] == [b"* 2 EXISTS\r\n", b"* 2 RECENT\r\n"]
    assert re.fullmatch(rb"j OK \[APPENDUID \d+ 5\] APPEND completed\r\n", lines[2])
    assert r.cmd("k", "FETCH 2 (UID FLAGS INTERNALDATE)") == [
        b'* 2 FETCH (UID 5 FLAGS (\\Seen \\Recent) INTERNALDATE "05-Mar-2024 09:00:00 +0000")\r\n',
        b"k OK FETCH completed\r\n",
    ]
    assert r.cmd("l", "APPEND Nosuch {1+}\r\nx") == [b"l NO [TRYCREATE] no such mailbox\r\n"]
    c = imap(srv)
    typ, data = c.append("Drafts", "(\\Draft)", None, b"Subject: draft\r\n\r\nhi\r\n")
    assert typ == "OK" and re.fullmatch(rb"\[APPENDUID \d+ 1\] APPEND completed", data[0])
    c.select("Archive")
    # Copies are new to the target mailbox: \\Recent for its first reader.
    assert c.fetch("1:*", "(FLAGS)")[1] == [
        b"1 (FLAGS ($Work \\Flagged \\Recent))", b"2 (FLAGS (\\Deleted \\Recent))"
    ]
    # A second session sees them, but not as \\Recent.
    d = imap(srv)
    d.select("Archive")
    assert d.fetch("1:*", "(FLAGS)")[1] == [b"1 (FLAGS ($Work \\Flagged))", b"2 (FLAGS (\\Deleted))"]
    assert d.search(None, "RECENT") == ("OK", [b""]) and c.search(None, "RECENT") == ("OK", [b"1 2"])


def test_multiappend_is_all_or_nothing(srv):
    r = login_raw(srv)
    r.cmd("s", "SELECT Drafts")
    one, two, three = (f"Subject: m{i}\r\n\r\nbody {i}\r\n".encode() for i in (1, 2, 3))
    # RFC 3502: messages follow one another, each with its own flags and date.
    r.send(b"a APPEND Drafts (\\Seen) {%d}\r\n" % len(one))
    assert r.line() == b"+ Ready\r\n"
    r.send(one + b' "05-Mar-2024 10:00:00 +0100" {%d+}\r\n' % len(two) + two + b" (\\Draft $X) {%d}\r\n" % len(three))
    assert r.line() == b"+ Ready\r\n"
    r.send(three + b"\r\n")
    lines = r.until("a")
    # The new keyword is announced before anything shows it (RFC 9051 §7.3.5).
    assert lines[:3] == [
        b"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $X)\r\n",
        b"* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $X \\*)] flags permitted\r\n",
        b"* 3 EXISTS\r\n",
    ]
    assert re.fullmatch(rb"a OK \[APPENDUID \d+ 1:3\] APPEND completed\r\n", lines[-1]), lines
    assert r.cmd("b", "FETCH 1:3 (UID FLAGS INTERNALDATE RFC822.SIZE)")[:3] == [
        b'* 1 FETCH (UID 1 FLAGS (\\Seen \\Recent) INTERNALDATE "%s" RFC822.SIZE %d)\r\n'
        % (lines_date(r, 1), len(one)),
        b'* 2 FETCH (UID 2 FLAGS (\\Recent) INTERNALDATE "05-Mar-2024 09:00:00 +0000" RFC822.SIZE %d)\r\n'
        % len(two),
        b'* 3 FETCH (UID 3 FLAGS ($X \\Draft \\Recent) INTERNALDATE "%s" RFC822.SIZE %d)\r\n'
        % (lines_date(r, 3), len(three)),
    ]
    # A bad date in the second message: nothing is stored.
    r.send(b"c APPEND Drafts {%d+}\r\n" % len(one) + one + b' "31-Foo-2024 10:00:00 +0100" {1+}\r\nx\r\n')
    assert r.until("c")[-1].startswith(b"c BAD")
    # Over quota on the last message: nothing is stored either.
    srv.cli.run("user", "quota", USER, "--quota-bytes", "4000", check=True)
    big = b"Subject: big\r\n\r\n" + b"x" * 1500 + b"\r\n"
    r.send(b"d APPEND Drafts {%d+}\r\n%s {%d+}\r\n%s {%d+}\r\n%s\r\n" % (len(big), big, len(big), big, len(big), big))
    last = r.until("d")[-1]
    assert last.startswith(b"d NO [OVERQUOTA]"), last
    assert r.cmd("e", "STATUS Drafts (MESSAGES UIDNEXT)")[0] == b"* STATUS Drafts (MESSAGES 3 UIDNEXT 4)\r\n"


def lines_date(r, seq):
    """INTERNALDATE the server gave message `seq` (set at APPEND time)."""
    line = r.cmd("t%d" % seq, f"FETCH {seq} INTERNALDATE")[0]
    return re.search(rb'INTERNALDATE "([^"]+)"', line).group(1)


def test_updates_between_sessions(srv):
    for i in range(1, 4):
        srv.cli.deliver(USER, msg(i))
    a = login_raw(srv)
    b = login_raw(srv)
    a.cmd("s", "SELECT INBOX")
    b.cmd("s", "SELECT INBOX")
    b.cmd("x", "STORE 2 +FLAGS.SILENT (\\Deleted \\Seen)")
    assert b.cmd("y", "EXPUNGE") == [b"* 2 EXPUNGE\r\n", b"y OK EXPUNGE completed\r\n"]
    srv.cli.deliver(USER, msg(4))
    b.cmd("z", "STORE 1 +FLAGS.SILENT (\\Answered)")
    # FETCH must not report the expunge; the flag change and new message may go out.
    lines = a.cmd("a", "FETCH 1:3 (UID)")
    assert lines[:3] == [b"* 1 FETCH (UID 1)\r\n", b"* 2 FETCH (UID 2)\r\n", b"* 3 FETCH (UID 3)\r\n"]
    assert b"* 2 EXPUNGE\r\n" not in lines
    assert lines[-1] == b"a OK FETCH completed\r\n"
    assert b"* 1 FETCH (UID 1 FLAGS (\\Answered \\Recent))\r\n" in lines and b"* 4 EXISTS\r\n" in lines
    # The expunged message was \\Recent to `a`: the count drops to 2.
    assert a.cmd("n", "NOOP") == [b"* 2 EXPUNGE\r\n", b"* 2 RECENT\r\n", b"n OK NOOP completed\r\n"]
    assert a.cmd("f", "FETCH 1:* (UID)") == [
        b"* 1 FETCH (UID 1)\r\n", b"* 2 FETCH (UID 3)\r\n", b"* 3 FETCH (UID 4)\r\n", b"f OK FETCH completed\r\n"
    ]


def test_keywords_announced_recent_after_expunge_and_expunged_fetch(srv):
    """Behaviours a stress tester (Dovecot's imaptest) checks between sessions."""
    for i in range(1, 4):
        srv.cli.deliver(USER, msg(i))
    a = login_raw(srv)
    b = login_raw(srv)
    a.cmd("s", "SELECT INBOX")  # a holds \Recent for all three
    b.cmd("s", "SELECT INBOX")
    # A keyword another session sets reaches FLAGS before the FETCH using it.
    b.cmd("x", "STORE 1 +FLAGS.SILENT ($Todo)")
    assert a.cmd("n", "NOOP") == [
        b"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Todo)\r\n",
        b"* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Todo \\*)] flags permitted\r\n",
        b"* 1 FETCH (UID 1 FLAGS ($Todo \\Recent))\r\n",
        b"n OK NOOP completed\r\n",
    ]
    # A keyword a STORE names joins FLAGS even when no message keeps it.
    assert b.cmd("y", "STORE 2 -FLAGS ($Never)")[:2] == [
        b"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Never $Todo)\r\n",
        b"* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Never $Todo \\*)] flags permitted\r\n",
    ]
    b.cmd("z", "STORE 2 +FLAGS.SILENT (\\Deleted)")
    b.cmd("e", "EXPUNGE")
    # A message expunged elsewhere stays readable for this session until it
    # is told (RFC 2180 §4.1.1).
    body = msg(2).encode()
    assert a.cmd("g", "FETCH 2 (UID FLAGS RFC822.SIZE)") == [
        b"* 2 FETCH (UID 2 FLAGS (\\Recent) RFC822.SIZE %d)\r\n" % len(body),
        b"g OK FETCH completed\r\n",
    ]
    assert a.cmd("s", "SEARCH LARGER 1") == [b"* SEARCH 1 2 3\r\n", b"s OK SEARCH completed\r\n"]
    assert b"".join(a.cmd("f", "FETCH 2 BODY.PEEK[]")) == (
        b"* 2 FETCH (BODY[] {%d}\r\n" % len(body) + body + b")\r\nf OK FETCH completed\r\n"
    )
    # The expunge lowers the \Recent count: RFC 3501 §7.3.2 says report it.
    assert a.cmd("h", "NOOP") == [b"* 2 EXPUNGE\r\n", b"* 2 RECENT\r\n", b"h OK NOOP completed\r\n"]
    # `<start>` without a length reads to the end, as Dovecot allows.
    line = a.cmd("i", "FETCH 1 BODY.PEEK[TEXT]<3>")[0]
    assert line == b"* 1 FETCH (BODY[TEXT]<3> {5}\r\n", line


def test_lsub_percent_returns_unsubscribed_parents_and_search_finds_groups(srv):
    r = login_raw(srv)
    for name in ["P", "P/a", "P/b", "P/b/c", "Q/x"]:
        r.cmd("c", f"CREATE {name}")
    for name in ["P/a", "P/b/c", "Q/x"]:
        r.cmd("s", f"SUBSCRIBE {name}")
    # RFC 3501 §6.3.9: with `%`, the unsubscribed parent of a subscribed
    # mailbox is listed, \Noselect (even when it exists).
    assert r.cmd("a", 'LSUB "" P/%') == [
        b'* LSUB () "/" P/a\r\n',
        b'* LSUB (\\Noselect) "/" P/b\r\n',
        b"a OK LSUB completed\r\n",
    ]
    lines = r.cmd("b", 'LSUB "" %')
    assert b'* LSUB (\\Noselect) "/" P\r\n' in lines and b'* LSUB () "/" INBOX\r\n' in lines, lines
    # RFC 5258 §3 (b): no CHILDINFO parent when the pattern returns the child itself.
    assert r.cmd("d", 'LIST (SUBSCRIBED RECURSIVEMATCH) "" (P/b P/b/c)') == [
        b'* LIST (\\HasNoChildren \\Subscribed) "/" P/b/c\r\n',
        b"d OK LIST completed\r\n",
    ]
    assert r.cmd("e", 'LIST (SUBSCRIBED RECURSIVEMATCH) "" (P/b)') == [
        b'* LIST (\\HasChildren) "/" P/b ("CHILDINFO" ("SUBSCRIBED"))\r\n',
        b"e OK LIST completed\r\n",
    ]
    # SEARCH TO finds a group by its name.
    srv.cli.deliver(USER, "From: a@example.test\r\nTo: team: x@example.test, y@example.test;\r\nSubject: g\r\n\r\nhi\r\n")
    srv.cli.deliver(USER, msg(2))
    r.cmd("s", "SELECT INBOX")
    assert r.cmd("f", "SEARCH TO team") == [b"* SEARCH 1\r\n", b"f OK SEARCH completed\r\n"]


def test_shutdown_says_bye(srv):
    r = login_raw(srv)
    srv.stop()
    assert r.line() == b"* BYE [UNAVAILABLE] server shutting down\r\n"


def read_until(r, pattern, timeout=3.0):
    """Lines until one matches `pattern` (bytes regex), within `timeout` seconds."""
    import time

    r.sock.settimeout(timeout)
    seen = []
    deadline = time.time() + timeout
    try:
        while time.time() < deadline:
            line = r.line()
            if not line:
                break
            seen.append(line)
            if re.search(pattern, line):
                return seen
    except (socket.timeout, OSError):
        pass
    finally:
        r.sock.settimeout(30)
    raise AssertionError(f"{pattern!r} not seen within {timeout}s: {seen!r}")


def test_idle_pushes_new_mail_flags_and_expunges(srv):
    srv.cli.deliver(USER, msg(1))
    srv.cli.deliver(USER, msg(2))
    r = login_raw(srv)
    r.cmd("s", "SELECT INBOX")
    r.send(b"i IDLE\r\n")
    assert r.line() == b"+ idling\r\n"
    # New mail from another process (the CLI) arrives within about a second.
    srv.cli.deliver(USER, msg(3))
    read_until(r, rb"^\* 3 EXISTS\r\n$")
    # A flag set by another session.
    other = imap(srv)
    other.select("INBOX")
    other.store("1", "+FLAGS", "\\Flagged")
    read_until(r, rb"^\* 1 FETCH \(UID 1 FLAGS \(\\Flagged \\Recent\)\)\r\n$")
    # An expunge by another session is allowed during IDLE.
    other.store("2", "+FLAGS", "\\Deleted")
    other.expunge()
    read_until(r, rb"^\* 2 EXPUNGE\r\n$")
    other.logout()
    r.send(b"DONE\r\n")
    assert r.until("i")[-1] == b"i OK IDLE terminated\r\n"
    # The session goes on normally afterwards.
    assert r.cmd("n", "NOOP")[-1].startswith(b"n OK")
    r.close()


def test_idle_ends_with_bad_on_other_input(srv):
    r = login_raw(srv)
    r.cmd("s", "SELECT INBOX")
    r.send(b"i IDLE\r\n")
    assert r.line() == b"+ idling\r\n"
    r.send(b"NOT-DONE\r\n")
    assert r.until("i")[-1].startswith(b"i BAD")
    r.close()


def test_search_and_uid_search(srv):
    srv.cli.deliver(USER, "From: Ann Smith <ann@example.test>\r\nTo: bob@x.test\r\nSubject: Quarterly report\r\n"
                          "Date: Mon, 7 Feb 1994 21:52:25 -0800\r\nX-Priority: 1\r\n\r\nNumbers inside.\r\n")
    srv.cli.deliver(USER, "From: carol@example.test\r\nSubject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\n\r\n"
                          "hello " + "x" * 3000 + "\r\n")
    srv.cli.deliver(USER, msg(3))
    r = login_raw(srv)
    r.cmd("s", "SELECT INBOX")
    r.cmd("f", "STORE 2 +FLAGS (\\Flagged $Work)")
    r.cmd("d", "STORE 3 +FLAGS (\\Deleted)")

    def search(q):
        lines = r.cmd("q", q)
        assert lines[-1].startswith(b"q OK"), lines
        [res] = [l for l in lines if l.startswith(b"* SEARCH")]
        return res.strip().decode()

    assert search("SEARCH ALL") == "* SEARCH 1 2 3"
    assert search("SEARCH FROM smith") == "* SEARCH 1"
    assert search("SEARCH SUBJECT REPORT") == "* SEARCH 1"
    assert search('SEARCH CHARSET UTF-8 SUBJECT "grüSSe"') == "* SEARCH"
    assert search('SEARCH CHARSET UTF-8 SUBJECT "GRÜßE"') == "* SEARCH 2"
    assert search("SEARCH FLAGGED") == "* SEARCH 2"
    assert search("SEARCH KEYWORD $Work") == "* SEARCH 2"
    assert search("SEARCH UNDELETED") == "* SEARCH 1 2"
    assert search("SEARCH OR DELETED FLAGGED") == "* SEARCH 2 3"
    assert search("SEARCH NOT OR DELETED FLAGGED") == "* SEARCH 1"
    assert search("SEARCH LARGER 2000") == "* SEARCH 2"
    assert search("SEARCH SMALLER 2000 NOT DELETED") == "* SEARCH 1"
    assert search("SEARCH BODY numbers") == "* SEARCH 1"
    assert search("SEARCH TEXT x-priority") == "* SEARCH 1"
    assert search("SEARCH HEADER X-Priority 1") == "* SEARCH 1"
    assert search('SEARCH HEADER X-Priority ""') == "* SEARCH 1"
    assert search("SEARCH SENTBEFORE 1-Jan-2000") == "* SEARCH 1"
    # The date as written (RFC 9051 §6.4.4), not the UTC day (8 Feb).
    assert search("SEARCH SENTON 7-Feb-1994") == "* SEARCH 1"
    assert search("SEARCH SENTON 8-Feb-1994") == "* SEARCH"
    assert search("SEARCH SINCE 1-Jan-2020") == "* SEARCH 1 2 3"
    assert search("SEARCH BEFORE 1-Jan-2020") == "* SEARCH"
    assert search("SEARCH 2:*") == "* SEARCH 2 3"
    assert search("UID SEARCH UID 2:3 UNFLAGGED") == "* SEARCH 3"
    assert search("SEARCH (FROM carol) (SEEN)") == "* SEARCH"
    assert r.cmd("b", "SEARCH FROBNICATE")[-1].startswith(b"b BAD")
    assert r.cmd("c", "SEARCH CHARSET KOI8-R ALL")[-1].startswith(b"c NO [BADCHARSET")
    r.close()


# ---- IMAP4rev2, LIST-EXTENDED/LIST-STATUS, ESEARCH/SEARCHRES, names, BINARY errors ----


def test_list_extended_subscribed_recursivematch_special_use_and_status(srv):
    srv.cli.deliver(USER, msg(1))
    srv.cli.deliver(USER, msg(2), mailbox="Archive")
    r = login_raw(srv)
    for name in ["Lists", "Lists/Rust", "Lists/Go", "Work"]:
        assert re.fullmatch(rb"c OK \[MAILBOXID \(M\d+\)\] CREATE completed\r\n", r.cmd("c", f"CREATE {name}")[-1])
    for name in ["Lists/Rust", "Work", "Gone"]:
        assert r.cmd("s", f"SUBSCRIBE {name}")[-1] == b"s OK completed\r\n"
    # Subscribed names, existing or not, with \Subscribed (RFC 5258 §3.1).
    # (The default mailboxes are subscribed too; the patterns leave them out.)
    lines = r.cmd("a", 'LIST (SUBSCRIBED) "" (G* L* W*)')
    assert lines == [
        b'* LIST (\\NonExistent \\Subscribed) "/" Gone\r\n',
        b'* LIST (\\HasNoChildren \\Subscribed) "/" Lists/Rust\r\n',
        b'* LIST (\\HasNoChildren \\Subscribed) "/" Work\r\n',
        b"a OK LIST completed\r\n",
    ]
    # RECURSIVEMATCH: a parent whose child is subscribed gets CHILDINFO (§3.5).
    lines = r.cmd("b", 'LIST (SUBSCRIBED RECURSIVEMATCH) "" (G% L% W%)')
    assert lines == [
        b'* LIST (\\NonExistent \\Subscribed) "/" Gone\r\n',
        b'* LIST (\\HasChildren) "/" Lists ("CHILDINFO" ("SUBSCRIBED"))\r\n',
        b'* LIST (\\HasNoChildren \\Subscribed) "/" Work\r\n',
        b"b OK LIST completed\r\n",
    ]
    assert r.cmd("c", 'LIST (RECURSIVEMATCH) "" "*"')[-1].startswith(b"c BAD")
    # SPECIAL-USE selection (RFC 6154 §3).
    lines = r.cmd("d", 'LIST (SPECIAL-USE) "" "*"')
    names = [l.rsplit(b" ", 1)[1].strip() for l in lines[:-1]]
    assert names == [b"Archive", b"Drafts", b"Junk", b"Sent", b"Trash"], lines
    assert all(re.search(rb"\\(Archive|Drafts|Junk|Sent|Trash)\b", l) for l in lines[:-1])
    # LIST-STATUS (RFC 5819): STATUS right after each selectable mailbox.
    lines = r.cmd("e", 'LIST "" (INBOX Archive Lists) RETURN (SUBSCRIBED STATUS (MESSAGES UNSEEN))')
    assert lines == [
        b'* LIST (\\HasNoChildren \\Subscribed) "/" INBOX\r\n',
        b"* STATUS INBOX (MESSAGES 1 UNSEEN 1)\r\n",
        b'* LIST (\\HasNoChildren \\Archive \\Subscribed) "/" Archive\r\n',
        b"* STATUS Archive (MESSAGES 1 UNSEEN 1)\r\n",
        b'* LIST (\\HasChildren) "/" Lists\r\n',
        b"* STATUS Lists (MESSAGES 0 UNSEEN 0)\r\n",
        b"e OK LIST completed\r\n",
    ]
    # imaplib's own LIST still works (the plain form).
    c = imap(srv)
    assert b'(\\HasChildren) "/" Lists' in c.list('""', "*")[1]


def test_modified_utf7_for_rev1_and_utf8_for_rev2(srv):
    r = login_raw(srv)
    assert r.cmd("a", "CREATE Entw&APw-rfe")[-1].endswith(b"] CREATE completed\r\n")
    assert r.cmd("b", 'LIST "" Entw*') == [b'* LIST (\\HasNoChildren) "/" Entw&APw-rfe\r\n', b"b OK LIST completed\r\n"]
    assert r.cmd("c", "CREATE A&-B")[-1].endswith(b"] CREATE completed\r\n")
    assert r.cmd("d", 'LIST "" A*') == [
        b'* LIST (\\HasNoChildren) "/" A&-B\r\n',
        b'* LIST (\\HasNoChildren \\Archive) "/" Archive\r\n',
        b"d OK LIST completed\r\n",
    ]
    assert r.cmd("e", "CREATE Bad&Zm9v")[-1].startswith(b"e NO [CANNOT]")
    assert r.cmd("f", "STATUS Entw&APw-rfe (MESSAGES)")[0] == b"* STATUS Entw&APw-rfe (MESSAGES 0)\r\n"
    # The same mailbox for an IMAP4rev2 client is UTF-8 (RFC 9051 §5.1).
    v2 = login_raw(srv)
    assert v2.cmd("g", "ENABLE IMAP4rev2")[0] == b"* ENABLED IMAP4rev2\r\n"
    assert v2.cmd("h", 'LIST "" Entw*') == [
        '* LIST (\\HasNoChildren) "/" "Entwürfe"\r\n'.encode(), b"h OK LIST completed\r\n"
    ]
    assert v2.cmd("i", 'SELECT "Entwürfe"')[-1] == b"i OK [READ-WRITE] SELECT completed\r\n"


def test_rev2_select_and_esearch(srv):
    for i in range(1, 6):
        srv.cli.deliver(USER, msg(i, body="apple" if i % 2 else "pear"))
    r = login_raw(srv)
    r.cmd("e", "ENABLE IMAP4rev2")
    lines = r.cmd("a", "SELECT INBOX")
    assert b'* LIST (\\HasNoChildren) "/" INBOX\r\n' in lines
    assert not any(b"RECENT" in l for l in lines), lines
    assert not any(b"[UNSEEN" in l for l in lines), lines
    # RFC 9051 §6.4.4: rev2 SEARCH answers with ESEARCH.
    assert r.cmd("b", "SEARCH BODY apple") == [b'* ESEARCH (TAG "b") ALL 1,3,5\r\n', b"b OK SEARCH completed\r\n"]
    assert r.cmd("c", "UID SEARCH RETURN (MIN MAX COUNT) 2:*") == [
        b'* ESEARCH (TAG "c") UID MIN 2 MAX 5 COUNT 4\r\n', b"c OK UID SEARCH completed\r\n"
    ]
    assert r.cmd("d", "SEARCH RETURN (COUNT) BODY kiwi") == [
        b'* ESEARCH (TAG "d") COUNT 0\r\n', b"d OK SEARCH completed\r\n"
    ]
    # SEARCHRES (RFC 5182): SAVE alone answers nothing; $ is the result.
    assert r.cmd("f", "SEARCH RETURN (SAVE) BODY pear") == [b"f OK SEARCH completed\r\n"]
    assert r.cmd("g", "FETCH $ (UID)") == [
        b"* 2 FETCH (UID 2)\r\n", b"* 4 FETCH (UID 4)\r\n", b"g OK FETCH completed\r\n"
    ]
    assert r.cmd("h", "UID SEARCH UID $ SUBJECT 4") == [
        b'* ESEARCH (TAG "h") UID ALL 4\r\n', b"h OK UID SEARCH completed\r\n"
    ]
    r.cmd("i", "STORE $ +FLAGS.SILENT (\\Deleted)")
    assert r.cmd("j", "EXPUNGE") == [b"* 4 EXPUNGE\r\n", b"* 2 EXPUNGE\r\n", b"j OK EXPUNGE completed\r\n"]
    # Expunged messages leave the saved result.
    assert r.cmd("k", "FETCH $ (UID)") == [b"k OK FETCH completed\r\n"]


def test_rev1_esearch_on_request_and_classic_search_otherwise(srv):
    for i in range(1, 4):
        srv.cli.deliver(USER, msg(i))
    r = login_raw(srv)
    r.cmd("s", "SELECT INBOX")
    assert r.cmd("a", "SEARCH ALL") == [b"* SEARCH 1 2 3\r\n", b"a OK SEARCH completed\r\n"]
    assert r.cmd("b", "SEARCH RETURN () 2:3") == [b'* ESEARCH (TAG "b") ALL 2:3\r\n', b"b OK SEARCH completed\r\n"]
    assert r.cmd("c", "SEARCH RETURN (MIN SAVE) 2:3") == [b'* ESEARCH (TAG "c") MIN 2\r\n', b"c OK SEARCH completed\r\n"]
    # With MIN only, only the minimum is saved (RFC 5182 §2.1).
    assert r.cmd("d", "SEARCH $") == [b"* SEARCH 2\r\n", b"d OK SEARCH completed\r\n"]
    assert r.cmd("e", "SEARCH RETURN (BOGUS) ALL")[-1].startswith(b"e BAD")
    assert r.cmd("f", "SEARCH RECENT") == [b"* SEARCH 1 2 3\r\n", b"f OK SEARCH completed\r\n"]


def test_binary_of_unknown_encoding_is_no_unknown_cte(srv):
    srv.cli.deliver(
        USER,
        "From: a@example.test\r\nSubject: x\r\nMIME-Version: 1.0\r\nContent-Type: text/plain\r\n"
        "Content-Transfer-Encoding: x-uuencode\r\n\r\nbegin 644 f\r\nend\r\n",
    )
    r = login_raw(srv)
    r.cmd("s", "SELECT INBOX")
    assert r.cmd("a", "FETCH 1 BINARY.PEEK[1]")[-1].startswith(b"a NO [UNKNOWN-CTE]")
    # BODY[] still works: it returns the raw content.
    assert r.cmd("b", "FETCH 1 BODY.PEEK[1]")[-1] == b"b OK FETCH completed\r\n"


def test_check_is_a_checkpoint_in_selected_state_only(srv):
    srv.cli.deliver(USER, msg(1))
    r = login_raw(srv)
    assert r.cmd("a", "CHECK") == [b"a BAD CHECK needs a selected mailbox\r\n"]
    r.cmd("s", "SELECT INBOX")
    srv.cli.deliver(USER, msg(2))
    lines = r.cmd("b", "CHECK")
    assert lines[-1] == b"b OK CHECK completed\r\n" and b"* 2 EXISTS\r\n" in lines


def test_imap_config_autologout_and_error_limit(server_factory):
    s = server_factory("[imap]\nidle_timeout_secs = 2\nmax_errors = 2\nmax_literal_size = 2048")
    s.cli.add_user(USER, PW)
    s.start()
    r = login_raw(s)
    r.sock.settimeout(10)
    # Autologout after the configured idle time, with a BYE first.
    line = r.line()
    assert line.startswith(b"* BYE"), line
    assert r.line() == b""
    r = login_raw(s)
    assert r.cmd("a", "FROB") == [b"a BAD unknown command FROB\r\n"]
    assert r.cmd("b", "FROB") == [b"b BAD unknown command FROB\r\n"]
    assert r.line() == b"* BYE too many invalid commands\r\n"
    r = login_raw(s)
    r.send(b"c APPEND INBOX {4096}\r\n")
    assert r.line().startswith(b"c NO [TOOBIG]")


def test_objectid_ids_match_jmap(server_factory):
    """RFC 8474: MAILBOXID on CREATE/SELECT/STATUS, EMAILID and THREADID in
    FETCH and SEARCH; the same ids JMAP uses, stable across COPY and MOVE."""
    import base64 as b64
    import json as js
    import re
    import urllib.request

    srv = server_factory().start()
    srv.cli.add_user("alice@example.test", "pw")
    parent = "From: a@x.test\r\nSubject: plan\r\nMessage-ID: <p@x.test>\r\n\r\nfirst\r\n"
    reply = "From: b@x.test\r\nSubject: Re: plan\r\nMessage-ID: <r@x.test>\r\nIn-Reply-To: <p@x.test>\r\n\r\nsecond\r\n"
    other = "From: c@x.test\r\nSubject: other\r\n\r\nthird\r\n"
    for m in (parent, reply, other):
        srv.cli.deliver("alice@example.test", m)
    c = imaplib.IMAP4("127.0.0.1", srv.ports["imap"])
    c.login("alice@example.test", "pw")
    assert b"OBJECTID" in c.capability()[1][0].split()
    tag = c._new_tag()
    c.send(tag + b" CREATE Keep\r\n")
    line = c.readline()
    assert line.startswith(tag + b" OK [MAILBOXID (M"), line
    typ, data = c.select("INBOX")
    inbox_id = re.search(rb"MAILBOXID \((M\d+)\)", b" ".join(c.untagged_responses.get("OK", []))).group(1)
    typ, data = c.fetch("1:3", "(EMAILID THREADID)")
    ids = [re.search(rb"EMAILID \((E\d+)\) THREADID \((T\d+)\)", d).groups() for d in data]
    assert ids[0][1] == ids[1][1] != ids[2][1]  # the reply joined its parent's thread
    typ, data = c.status("Keep", "(MAILBOXID MESSAGES)")
    keep_id = re.search(rb"MAILBOXID \((M\d+)\)", data[0]).group(1)
    # COPY keeps the email id (one email in two mailboxes).
    c.copy("1", "Keep")
    c.select("Keep")
    typ, data = c.fetch("1", "(EMAILID)")
    assert re.search(rb"EMAILID \((E\d+)\)", data[0]).group(1) == ids[0][0]
    c.select("INBOX")
    typ, data = c.uid("SEARCH", "THREADID", ids[0][1].decode())
    assert data[0].split() == [b"1", b"2"]
    typ, data = c.search(None, "EMAILID", ids[2][0].decode())
    assert data[0].split() == [b"3"]
    typ, data = c.search(None, "EMAILID", "E999999")
    assert data[0].split() == []
    # JMAP sees the same ids.
    auth = "Basic " + b64.b64encode(b"alice@example.test:pw").decode()
    body = js.dumps({"using": ["urn:ietf:params:jmap:core", "urn:ietf:params:jmap:mail"], "methodCalls": [
        ["Email/get", {"accountId": None, "ids": [ids[0][0].decode()], "properties": ["threadId", "mailboxIds"]}, "g"]]})
    sess = js.loads(urllib.request.urlopen(urllib.request.Request(
        f"http://127.0.0.1:{srv.ports['http']}/jmap/session", headers={"Authorization": auth})).read())
    body = body.replace("null", js.dumps(sess["primaryAccounts"]["urn:ietf:params:jmap:mail"]), 1)
    r = js.loads(urllib.request.urlopen(urllib.request.Request(
        f"http://127.0.0.1:{srv.ports['http']}/jmap/api", data=body.encode(), headers={"Authorization": auth})).read())
    e = r["methodResponses"][0][1]["list"][0]
    assert e["threadId"] == ids[0][1].decode()
    assert set(e["mailboxIds"]) == {inbox_id.decode(), keep_id.decode()}
    c.logout()


def test_error_texts_never_echo_line_breaks(srv):
    """Issue 18: a mailbox name sent as a literal with CR LF in it must not
    come back as a forged response line."""
    r = login_raw(srv)
    evil = b"x\r\n* OK [ALERT] forged"
    for tag, verb in (("c", "CREATE"), ("d", "DELETE"), ("s", "SELECT"), ("n", "RENAME")):
        extra = b" y" if verb == "RENAME" else b""
        r.send(f"{tag} {verb} {{{len(evil)}}}\r\n".encode())
        assert r.line().startswith(b"+")
        r.send(evil + extra + b"\r\n")
        lines = r.until(tag)
        assert not any(l.startswith(b"* OK [ALERT] forged") for l in lines), lines
        assert all(l.count(b"\r\n") == 1 and l.endswith(b"\r\n") for l in lines)
    assert r.cmd("z", "NOOP")[-1].startswith(b"z OK")
    r.close()


def test_unauthenticated_connections_time_out_sooner(server_factory):
    srv = server_factory("[imap]\npreauth_timeout_secs = 2\n").start()
    srv.cli.add_user(USER, PW)
    idle = Raw(srv.ports["imap"])
    logged = login_raw(srv)
    idle.sock.settimeout(10)
    t = time.time()
    assert idle.line().startswith(b"* BYE"), "autologout before authentication"
    assert time.time() - t < 8
    # A logged-in session keeps the long timeout.
    assert logged.cmd("n", "NOOP")[-1].startswith(b"n OK")
    idle.close()
    # Keeping busy does not keep an unauthenticated connection open: three
    # timeouts' worth in all.
    busy = Raw(srv.ports["imap"])
    busy.sock.settimeout(10)
    t = time.time()
    ended = False
    while time.time() - t < 15:
        busy.send(b"n NOOP\r\n")
        line = busy.line()
        if not line or line.startswith(b"* BYE"):
            ended = True
            break
        time.sleep(0.5)
    assert ended and 5 <= time.time() - t < 10, time.time() - t
    busy.close()
    assert logged.cmd("m", "NOOP")[-1].startswith(b"m OK")
    logged.close()


def test_no_big_literals_before_login(srv):
    """Issue 18 / RFC 7888 §9: before authentication only a LOGIN's worth of
    literal is accepted; a 64 MiB APPEND gets NO [TOOBIG], not `+ Ready`."""
    r = Raw(srv.ports["imap"])
    r.send(b"a APPEND INBOX {67108864}\r\n")
    assert r.line().startswith(b"a NO [TOOBIG]")
    r.send(b"b LOGIN {9000}\r\n")
    assert r.line().startswith(b"b NO [TOOBIG]")
    r.send(f"c LOGIN {{{len(USER)}}}\r\n".encode())
    assert r.line() == b"+ Ready\r\n"
    r.send(f"{USER} {PW}\r\n".encode())
    assert r.until("c")[-1].startswith(b"c OK")
    r.send(b"d APPEND INBOX {100000}\r\n")
    assert r.line() == b"+ Ready\r\n", "after login, messages are welcome"
    r.close()


def test_expensive_searches_do_not_slow_other_accounts(server_factory):
    """Issue 18: while one account runs the most expensive SEARCH it can (short
    BODY keys, which no index answers, over a large message, from two
    connections), another account's NOOP and a new connection's greeting
    still answer quickly: the scans run off the async workers."""
    import statistics
    import threading

    srv = server_factory().start()
    srv.cli.add_user("hog@example.test", "pw-hog")
    srv.cli.add_user(USER, PW)
    hog = imaplib.IMAP4("127.0.0.1", srv.ports["imap"])
    hog.login("hog@example.test", "pw-hog")
    big = b"From: a@b\r\nSubject: big\r\n\r\n" + (b"lorem ipsum dolor sit amet " * 40 + b"\r\n") * 2000
    for _ in range(2):
        hog.append("INBOX", None, None, big)
    hog.logout()
    keys = " ".join(f'NOT BODY "q{i % 10}"' for i in range(300))
    stop = threading.Event()
    ran = []

    def grind():
        c = imaplib.IMAP4("127.0.0.1", srv.ports["imap"])
        c.login("hog@example.test", "pw-hog")
        c.select("INBOX")
        while not stop.is_set():
            c.search(None, keys)
            ran.append(1)
        c.logout()

    threads = [threading.Thread(target=grind) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        time.sleep(1.0)
        r = login_raw(srv)
        noop, greet = [], []
        for _ in range(15):
            t0 = time.time()
            assert r.cmd("n", "NOOP")[-1].startswith(b"n OK")
            noop.append(time.time() - t0)
            t0 = time.time()
            g = Raw(srv.ports["imap"])
            assert g.greeting.startswith(b"* OK")
            greet.append(time.time() - t0)
            g.close()
            time.sleep(0.05)
        r.close()
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=120)
    assert ran, "the expensive searches ran"
    assert statistics.median(noop) < 0.1, noop
    assert statistics.median(greet) < 0.1, greet
