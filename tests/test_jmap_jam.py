"""npm's jmap-jam, a third-party JMAP client, against the running server with
a Bearer token from the OAuth flow: session discovery, mailbox list, query +
get of a thread through result references, keywords, blob upload, create and
submit an email with an attachment that arrives in another account's INBOX,
and an EventSource push for an SMTP delivery. IMAP checks what it did."""

import imaplib
import json
import os
import smtplib
import subprocess
import time
from pathlib import Path

from test_jmap import srv  # noqa: F401 (the fixture: alice and bob)
from test_oauth import login

JS = Path(__file__).parent / "js"

MESSAGE = (
    "From: Bob <bob@example.test>\r\nTo: alice@example.test\r\nSubject: Lunch on Friday\r\n"
    "Message-ID: <friday-1@example.test>\r\nDate: Thu, 03 Dec 2026 10:00:00 +0100\r\n"
    "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nNoon at the usual place?\r\n"
)


def test_jmap_jam_reads_organises_and_sends(srv):
    token = login(srv)["access_token"]
    env = dict(
        os.environ,
        SESSION_URL=f"http://127.0.0.1:{srv.ports['http']}/.well-known/jmap",
        TOKEN=token,
        TO="bob@example.test",
    )
    node = subprocess.Popen(
        ["node", str(JS / "jmap_jam.mjs")],
        cwd=JS,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = node.stdout.readline()
        assert line.strip() == "listening", line + node.stderr.read()
        with smtplib.SMTP("127.0.0.1", srv.ports["smtp"]) as s:
            s.sendmail("bob@example.test", ["alice@example.test"], MESSAGE)
        node.stdin.write("delivered\n")
        node.stdin.flush()
        stdout, stderr = node.communicate(timeout=60)
    finally:
        if node.poll() is None:
            node.kill()
    assert node.returncode == 0, stderr
    out = json.loads(stdout.strip().splitlines()[-1])

    assert out["username"] == "alice@example.test"
    assert {"INBOX", "Sent", "Drafts"} <= set(out["mailboxes"])
    assert out["pushType"] == "StateChange"
    assert out["queryIds"] == 1 and out["threadEmails"] == 1
    assert out["subjects"] == ["Lunch on Friday"]
    assert len(out["updated"]) == 1
    assert out["blobSize"] == len("Letterbox attachment from jmap-jam\n") * 50
    assert out["createdEmail"] and out["submitted"] and out["sessionState"]
    assert out["sentMailboxes"] == ["sent"]
    assert out["sentKeywords"] == ["$seen"]
    assert out["downloadMatches"] and out["downloadType"].startswith("text/plain")

    # IMAP sees jmap-jam's keywords on the delivered message.
    c = imaplib.IMAP4("127.0.0.1", srv.ports["imap"])
    c.login("alice@example.test", "pw-alice")
    c.select("INBOX")
    _, data = c.fetch("1", "(FLAGS)")
    assert b"\\Flagged" in data[0] and b"\\Seen" in data[0]
    c.logout()

    # The submitted reply with its attachment reached Bob's INBOX.
    c = imaplib.IMAP4("127.0.0.1", srv.ports["imap"])
    c.login("bob@example.test", "pw-bob")
    deadline = time.time() + 15
    while True:
        c.select("INBOX")
        _, data = c.search(None, "SUBJECT", '"Re: Lunch on Friday"')
        if data[0].split() or time.time() > deadline:
            break
        time.sleep(0.2)
    [n] = data[0].split()
    _, data = c.fetch(n, "(BODY.PEEK[])")
    raw = data[0][1]
    assert b"In-Reply-To: <friday-1@example.test>" in raw
    assert b'filename="notes.txt"' in raw or b"filename=notes.txt" in raw
    assert b"Noon works. Notes attached." in raw
    c.logout()
