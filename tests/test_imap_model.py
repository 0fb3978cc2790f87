"""The Store v2 model as IMAP clients see it: COPY adds the email to the
target mailbox, so keywords are shared between the mailboxes holding it,
while \\Deleted and EXPUNGE stay per mailbox; COPY into the same mailbox
makes an independent copy."""

import imaplib
import re

import pytest


@pytest.fixture
def two(server_factory):
    srv = server_factory().start()
    srv.cli.add_user("alice@example.test", "pw")
    srv.cli.deliver("alice@example.test", "From: b@example.test\r\nSubject: one\r\n\r\nbody\r\n")
    conns = []
    for box in ("INBOX", "Archive"):
        c = imaplib.IMAP4("127.0.0.1", srv.ports["imap"])
        c.login("alice@example.test", "pw")
        conns.append(c)
    yield conns
    for c in conns:
        c.logout()


def flags(c, uid):
    _, data = c.uid("FETCH", uid, "(FLAGS)")
    return set(re.search(rb"FLAGS \(([^)]*)\)", data[0]).group(1).decode().split()) - {"\\Recent"}


def test_copy_shares_keywords_but_not_deleted(two):
    inbox, archive = two
    inbox.select("INBOX")
    typ, data = inbox.uid("COPY", "1", "Archive")
    assert typ == "OK", data
    archive.select("Archive")
    # A keyword set in INBOX shows in Archive, announced to the session there.
    inbox.uid("STORE", "1", "+FLAGS", "(\\Seen $Work)")
    archive.noop()
    _, fetched = archive.response("FETCH")  # untagged FETCH the NOOP brought
    assert any(d and b"\\Seen" in d for d in fetched), fetched
    assert flags(archive, "1") == {"\\Seen", "$Work"}
    # \Deleted and EXPUNGE in INBOX leave the Archive copy alone.
    inbox.uid("STORE", "1", "+FLAGS", "(\\Deleted)")
    assert "\\Deleted" not in flags(archive, "1")
    inbox.expunge()
    _, st = inbox.status("INBOX", "(MESSAGES)")
    assert b"MESSAGES 0" in st[0]
    assert flags(archive, "1") == {"\\Seen", "$Work"}
    _, body = archive.uid("FETCH", "1", "(BODY.PEEK[TEXT])")
    assert body[0][1] == b"body\r\n"


def test_copy_into_the_same_mailbox_is_independent(two):
    inbox, _ = two
    inbox.select("INBOX")
    inbox.uid("COPY", "1", "INBOX")
    inbox.uid("STORE", "1", "+FLAGS", "(\\Flagged)")
    assert "\\Flagged" in flags(inbox, "1")
    assert "\\Flagged" not in flags(inbox, "2")
