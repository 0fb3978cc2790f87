"""The vacation responder: VacationResponse (RFC 8621 §8) set over JMAP,
replies sent under RFC 3834 rules to mail arriving over SMTP: once per
sender, never to lists, automatic mail, null senders, or mail that does not
name the user; from a null return path with Auto-Submitted. Clients:
Python's urllib (JMAP), smtplib, and the CLI's export and queue list."""

import json
import smtplib
import time

import pytest

from conftest import free_port
from test_delivery import delivery_config
from test_jmap import Jmap

VACATION = "urn:ietf:params:jmap:vacationresponse"
USING = ["urn:ietf:params:jmap:core", VACATION]


@pytest.fixture
def srv(server_factory):
    # remote.test's mail goes to a closed port: a reply to it stays queued.
    s = server_factory(delivery_config(routes={"remote.test": f"127.0.0.1:{free_port()}"})).start()
    for u in ("alice", "bob", "carol"):
        s.cli.add_user(f"{u}@example.test", f"pw-{u}")
    return s


def vac(j, method, **args):
    args.setdefault("accountId", j.account)
    [(name, res, _)] = j.request([[method, args, "v"]], using=USING)
    assert name == method, res
    return res


def send(srv, sender, rcpt, subject, extra="", to=None):
    msg = (
        f"From: {sender or 'daemon@example.test'}\r\nTo: {to or rcpt}\r\nSubject: {subject}\r\n"
        f"Message-ID: <{subject.replace(' ', '-')}@example.test>\r\n{extra}\r\nHello\r\n"
    )
    with smtplib.SMTP("127.0.0.1", srv.ports["smtp"]) as s:
        s.sendmail(sender, [rcpt], msg.encode())


def inbox(srv, address):
    return [m["raw"] for m in srv.cli.export(address, "INBOX")]


def replies(srv, address):
    return [r for r in inbox(srv, address) if b"Auto-Submitted: auto-replied" in r]


def wait_for(pred, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return True
        time.sleep(0.2)
    return False


def test_vacation_response_object_and_replies(srv):
    alice = Jmap(srv.ports["http"], "alice@example.test", "pw-alice")
    assert VACATION in alice.session["capabilities"]
    got = vac(alice, "VacationResponse/get", ids=None)
    assert got["list"] == [{"id": "singleton", "isEnabled": False, "fromDate": None, "toDate": None,
                            "subject": None, "textBody": None, "htmlBody": None}]
    state = got["state"]
    r = vac(alice, "VacationResponse/set", create={"x": {"isEnabled": True}}, destroy=["singleton"])
    assert r["notCreated"]["x"]["type"] == "singleton" and r["notDestroyed"]["singleton"]["type"] == "singleton"
    r = vac(alice, "VacationResponse/set", update={"singleton": {"isEnabled": "yes"}})
    assert r["notUpdated"]["singleton"]["type"] == "invalidProperties"
    r = vac(alice, "VacationResponse/set", update={"singleton": {
        "isEnabled": True, "subject": "Out of office", "textBody": "Back on Monday 7 December.",
        "fromDate": "2026-01-01T00:00:00Z"}})
    assert "singleton" in r["updated"] and r["newState"] != state
    assert vac(alice, "VacationResponse/get", ids=["singleton"], properties=["isEnabled"])["list"] == [
        {"id": "singleton", "isEnabled": True}]

    # A person writing to Alice gets one reply, however often they write.
    send(srv, "bob@example.test", "alice@example.test", "Lunch")
    assert wait_for(lambda: replies(srv, "bob@example.test"))
    [reply] = replies(srv, "bob@example.test")
    head = reply.split(b"\r\n\r\n")[0]
    assert b"Return-Path: <>" in head
    assert b"Subject: Out of office" in head and b"alice@example.test" in head
    assert b"In-Reply-To: <Lunch@example.test>" in head
    assert b"Back on Monday 7 December." in reply
    send(srv, "bob@example.test", "alice@example.test", "Lunch again")

    # No reply to lists, automatic mail, null senders, or mail not naming Alice.
    send(srv, "carol@example.test", "alice@example.test", "Digest", "List-Id: <news.example.test>\r\n")
    send(srv, "carol@example.test", "alice@example.test", "Auto", "Auto-Submitted: auto-generated\r\n")
    send(srv, "carol@example.test", "alice@example.test", "Bulk", "Precedence: bulk\r\n")
    send(srv, "carol@example.test", "alice@example.test", "Bcc", to="team@example.test")
    send(srv, "", "alice@example.test", "Bounce")
    # A remote sender's reply goes through the queue, with a null sender.
    send(srv, "dana@remote.test", "alice@example.test", "Hello from afar")

    seen = []

    def queued():
        p = srv.cli.run("queue", "list", "--json")
        seen.extend(e for e in json.loads(p.stdout)
                    if any(r["address"] == "dana@remote.test" for r in e["recipients"]))
        return seen

    assert wait_for(queued)
    assert seen[0]["sender"] == ""
    # Everything reached Alice; only Bob's first message was answered.
    assert wait_for(lambda: len(inbox(srv, "alice@example.test")) == 8)
    time.sleep(1)
    assert len(replies(srv, "bob@example.test")) == 1
    assert replies(srv, "carol@example.test") == []

    # Turned off (or out of its dates): no more replies, even to new senders.
    vac(alice, "VacationResponse/set", update={"singleton": {"toDate": "2026-01-02T00:00:00Z"}})
    send(srv, "carol@example.test", "alice@example.test", "After the dates")
    assert wait_for(lambda: len(inbox(srv, "alice@example.test")) == 9)
    time.sleep(1)
    assert replies(srv, "carol@example.test") == []


def test_mail_sent_over_jmap_gets_the_vacation_reply_too(srv):
    bob = Jmap(srv.ports["http"], "bob@example.test", "pw-bob")
    vac(bob, "VacationResponse/set", update={"singleton": {"isEnabled": True, "subject": "Away",
                                                          "textBody": "Back on Monday."}})
    alice = Jmap(srv.ports["http"], "alice@example.test", "pw-alice")
    drafts = alice.mailboxes()["drafts"]["id"]
    created = alice.call("Email/set", create={"d": {
        "mailboxIds": {drafts: True}, "from": [{"email": "alice@example.test"}],
        "to": [{"email": "bob@example.test"}], "subject": "Lunch over JMAP",
        "textBody": [{"partId": "t", "type": "text/plain"}], "bodyValues": {"t": {"value": "Noon?"}}}})
    email = created["created"]["d"]["id"]
    ident = next(i["id"] for i in alice.call("Identity/get", ids=None)["list"] if i["email"] == "alice@example.test")
    r = alice.call("EmailSubmission/set", create={"s": {"identityId": ident, "emailId": email}})
    assert "s" in r["created"], r
    assert wait_for(lambda: len(replies(srv, "alice@example.test")) == 1), "the vacation reply reaches alice"
    [reply] = replies(srv, "alice@example.test")
    assert b"Subject: Away" in reply and b"Back on Monday." in reply
