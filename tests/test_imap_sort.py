"""SORT (RFC 5256, with RFC 5957 DISPLAYFROM/DISPLAYTO and RFC 5267 ESORT)
and THREAD (ORDEREDSUBJECT and REFERENCES) end to end, exact responses."""

import pytest

from test_imap import PW, USER, Raw

# (arrival, Date header, From, To, Cc, Subject, Message-ID, References, body)
MESSAGES = [
    ("01-Jan-2024 10:00:00 +0000", "Mon, 01 Jan 2024 09:00:00 +0000", '"Zed" <zed@example.test>',
     "bob@example.test", "", "Hello", "<m1@x>", "", "a" * 10),
    ("02-Jan-2024 10:00:00 +0000", "Sun, 31 Dec 2023 23:00:00 -0800", "amy@example.test",
     '"Carol" <carol@example.test>', "dan@example.test", "Re: Hello", "<m2@x>", "<m1@x>", "b" * 300),
    ("03-Jan-2024 10:00:00 +0000", "Tue, 02 Jan 2024 12:00:00 +0000", '"Bea" <bea@example.test>',
     "alf@example.test", "", "[list] Fwd: other", "<m3@x>", "", "c" * 50),
    ("04-Jan-2024 10:00:00 +0000", "", "Cy <cy@example.test>",
     "", "abe@example.test", "re: re: hello", "<m4@x>", "<m1@x> <m2@x>", "d" * 5),
    ("05-Jan-2024 10:00:00 +0000", "Wed, 03 Jan 2024 08:00:00 +0000", "amy@example.test",
     "bob@example.test", "", "other", "<m5@x>", "", "e" * 1000),
]


def message(m):
    _, date, frm, to, cc, subject, mid, refs, body = m
    head = [f"From: {frm}"]
    if to:
        head.append(f"To: {to}")
    if cc:
        head.append(f"Cc: {cc}")
    if date:
        head.append(f"Date: {date}")
    head += [f"Subject: {subject}", f"Message-ID: {mid}"]
    if refs:
        head.append(f"References: {refs}")
    return ("\r\n".join(head) + "\r\n\r\n" + body + "\r\n").encode()


@pytest.fixture
def r(server_factory):
    s = server_factory("[auth]\nfailure_delay_ms = 10")
    s.cli.add_user(USER, PW)
    s.start()
    c = Raw(s.ports["imap"])
    assert c.cmd("l", f"LOGIN {USER} {PW}")[-1].startswith(b"l OK")
    for i, m in enumerate(MESSAGES):
        data = message(m)
        c.send(f'a{i} APPEND INBOX "{m[0]}" {{{len(data)}+}}\r\n'.encode() + data + b"\r\n")
        assert c.until(f"a{i}")[-1].startswith(f"a{i} OK".encode())
    c.cmd("s", "SELECT INBOX")
    yield c
    c.close()


def first(r, tag, cmd):
    out = r.cmd(tag, cmd)
    assert out[-1].startswith(f"{tag} OK".encode()), out
    return out[0].decode().rstrip("\r\n")


def test_capabilities(r):
    caps = set(first(r, "c", "CAPABILITY").split())
    assert {"SORT", "SORT=DISPLAY", "ESORT", "THREAD=ORDEREDSUBJECT", "THREAD=REFERENCES"} <= caps


def test_sort_criteria(r):
    # Base subjects: hello, hello, other, hello, other; ties by sequence.
    assert first(r, "a", "SORT (SUBJECT) UTF-8 ALL") == "* SORT 1 2 4 3 5"
    # Sent dates in UTC: 4 has none (its arrival, 4 Jan, counts); 2 is 1 Jan 07:00.
    assert first(r, "b", "SORT (DATE) UTF-8 ALL") == "* SORT 2 1 3 5 4"
    assert first(r, "c", "SORT (REVERSE DATE) UTF-8 ALL") == "* SORT 4 5 3 1 2"
    assert first(r, "d", "SORT (ARRIVAL) US-ASCII ALL") == "* SORT 1 2 3 4 5"
    assert first(r, "e", "SORT (SIZE) UTF-8 ALL") == "* SORT 4 1 3 2 5"
    # addr-mailbox of the first From: amy amy bea cy zed.
    assert first(r, "f", "SORT (FROM) UTF-8 ALL") == "* SORT 2 5 3 4 1"
    # To: bob carol alf (none) bob; the empty string sorts first.
    assert first(r, "g", "SORT (TO) UTF-8 ALL") == "* SORT 4 3 1 5 2"
    assert first(r, "h", "SORT (CC) UTF-8 ALL") == "* SORT 1 3 5 4 2"
    # DISPLAYFROM (RFC 5957): Zed, amy@..., Bea, Cy, amy@... compared case-insensitively.
    assert first(r, "i", "SORT (DISPLAYFROM) UTF-8 ALL") == "* SORT 2 5 3 4 1"
    assert first(r, "j", "SORT (DISPLAYTO) UTF-8 ALL") == "* SORT 4 3 1 5 2"
    # Several criteria, and a search.
    assert first(r, "k", "SORT (SUBJECT REVERSE SIZE) UTF-8 ALL") == "* SORT 2 1 4 5 3"
    assert first(r, "l", "UID SORT (REVERSE ARRIVAL) UTF-8 LARGER 170") == "* SORT 5 3 2"
    assert first(r, "m", 'SORT (SUBJECT) UTF-8 TEXT "not in mailbox"') == "* SORT"
    out = r.cmd("n", "SORT (SUBJECT) KOI8-R ALL")
    assert out == [b"n NO [BADCHARSET (UTF-8 US-ASCII)] unsupported charset\r\n"]
    assert r.cmd("o", "SORT (NOPE) UTF-8 ALL")[-1].startswith(b"o BAD")


def test_esort(r):
    assert first(r, "a", "SORT RETURN (MIN MAX COUNT) (DATE) UTF-8 ALL") == '* ESEARCH (TAG "a") MIN 2 MAX 4 COUNT 5'
    assert first(r, "b", "UID SORT RETURN () (REVERSE DATE) UTF-8 ALL") == '* ESEARCH (TAG "b") UID ALL 4:5,3,1:2'
    assert first(r, "c", "SORT RETURN (ALL) (ARRIVAL) UTF-8 ALL") == '* ESEARCH (TAG "c") ALL 1:5'
    assert first(r, "d", "SORT RETURN (COUNT) (ARRIVAL) UTF-8 SUBJECT nothing") == '* ESEARCH (TAG "d") COUNT 0'


def test_thread(r):
    # ORDEREDSUBJECT: hello (1, 2, 4 by sent date: 2 1 4), other (3 5).
    assert first(r, "a", "THREAD ORDEREDSUBJECT UTF-8 ALL") == "* THREAD (2 (1)(4))(3 5)"
    # REFERENCES: 1 <- 2 <- 4 by References; 5 "other" merged with
    # 3 "[list] Fwd: other" (3 is the forward, so it goes under 5).
    assert first(r, "b", "THREAD REFERENCES UTF-8 ALL") == "* THREAD (1 2 4)(5 3)"
    assert first(r, "c", "UID THREAD REFERENCES UTF-8 NOT UID 2") == "* THREAD (1 4)(5 3)"
    assert first(r, "d", "THREAD REFERENCES UTF-8 SUBJECT nothing") == "* THREAD"
    assert r.cmd("e", "THREAD NOPE UTF-8 ALL")[-1].startswith(b"e BAD")


def test_sort_follows_new_and_expunged_mail(r):
    """The store caches sort keys per mailbox state: a new message and an
    expunge must show in the next SORT, also from another session."""
    assert first(r, "a", "UID SORT (SUBJECT) UTF-8 ALL") == "* SORT 1 2 4 3 5"
    data = message(("06-Jan-2024 10:00:00 +0000", "", "x@example.test", "", "", "Aardvark", "<m6@x>", "", "f"))
    r.send(f'p APPEND INBOX {{{len(data)}+}}\r\n'.encode() + data + b"\r\n")
    assert r.until("p")[-1].startswith(b"p OK")
    assert first(r, "b", "UID SORT (SUBJECT) UTF-8 ALL") == "* SORT 6 1 2 4 3 5"
    r.cmd("d", "UID STORE 1 +FLAGS.SILENT (\\Deleted)")
    r.cmd("x", "UID EXPUNGE 1")
    assert first(r, "c", "UID SORT (SUBJECT) UTF-8 ALL") == "* SORT 6 2 4 3 5"
    # 1 gone: 2 keeps its place under 1's (now dummy, pruned) slot, 6 has no Date: its arrival.
    assert first(r, "e", "UID THREAD REFERENCES UTF-8 ALL") == "* THREAD (2 4)(5 3)(6)"
