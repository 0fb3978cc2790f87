"""IMAP SEARCH through the store's full-text index: decoded bodies (QP,
base64, legacy charsets, HTML), substrings rather than words, header fields
decoded, and short terms answered by the scan."""

import imaplib

import pytest

QP = (
    "From: Jörg <j@example.test>\r\nTo: alice@example.test\r\nSubject: =?utf-8?q?Men=C3=BC?=\r\n"
    "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=iso-8859-1\r\n"
    "Content-Transfer-Encoding: quoted-printable\r\n\r\nCr=E8me br=FBl=E9e for dessert\r\n"
)
B64_HTML = (
    "From: bob@example.test\r\nTo: alice@example.test\r\nSubject: invitation\r\nX-Ticket: ZX-4411\r\n"
    "MIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    "PHA+UGxlYXNlIGpvaW4gdXMgZm9yIDxiPmRpbm5lcjwvYj48L3A+\r\n"
)
PLAIN = "From: carol@example.test\r\nTo: alice@example.test\r\nSubject: hi\r\n\r\nab cd\r\n"


@pytest.fixture
def imap(server_factory):
    srv = server_factory().start()
    srv.cli.add_user("alice@example.test", "pw")
    for m in (QP, B64_HTML, PLAIN):
        srv.cli.deliver("alice@example.test", m)
    c = imaplib.IMAP4("127.0.0.1", srv.ports["imap"])
    c.login("alice@example.test", "pw")
    c.select("INBOX")
    yield c
    c.logout()


def search(c, *criteria, literal=None):
    if literal is not None:
        c.literal = literal  # sent as the last argument, in a literal
    typ, data = c.uid("SEARCH", *criteria)
    assert typ == "OK", data
    return data[0].split()


def test_bodies_are_searched_decoded(imap):
    # Latin-1 quoted-printable, searched for in UTF-8.
    assert search(imap, "CHARSET", "UTF-8", "BODY", literal="crème brûlée".encode()) == [b"1"]
    assert search(imap, "CHARSET", "UTF-8", "SUBJECT", literal="menü".encode()) == [b"1"]
    assert search(imap, "BODY", "dinner") == [b"2"]  # base64 HTML, inside <b>
    assert search(imap, "BODY", "<b>") == []  # markup is not text
    assert search(imap, "TEXT", "zx-4411") == [b"2"]  # header as written
    assert search(imap, "BODY", "zx-4411") == []


def test_substrings_and_fields(imap):
    assert search(imap, "BODY", "ESSER") == [b"1"]  # inside a word, any case
    assert search(imap, "FROM", "bob@") == [b"2"]
    assert search(imap, "TO", "alice") == [b"1", b"2", b"3"]
    assert search(imap, "OR", "SUBJECT", "invit", "BODY", "dessert") == [b"1", b"2"]
    assert search(imap, "NOT", "BODY", "dessert") == [b"2", b"3"]


def test_short_terms_still_match(imap):
    assert search(imap, "BODY", "cd") == [b"3"]
    assert search(imap, "SUBJECT", "hi") == [b"3"]
