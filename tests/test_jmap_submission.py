"""JMAP EmailSubmission objects over real HTTP (RFC 8621 §7): a send held
with RFC 4865 FUTURERELEASE is pending and can be undone (nothing arrives),
a short hold is released by the server on time, every submission keeps its
state (get, changes, query), and deliveryStatus follows the outbound queue's
real outcomes against a scripted remote SMTP server. IMAP/JMAP of the
recipient check what arrived."""

import json
import time

from test_delivery import delivery_config, dns, peer, wait_until  # noqa: F401 (fixtures)
from test_jmap import SUBMISSION, Jmap, srv  # noqa: F401 (fixture)


def draft(client, to, subject, sender):
    boxes = client.mailboxes()
    res = client.call(
        "Email/set",
        create={
            "d": {
                "mailboxIds": {boxes["drafts"]["id"]: True},
                "keywords": {"$draft": True},
                "from": [{"email": sender}],
                "to": [{"email": a} for a in to],
                "subject": subject,
                "textBody": [{"partId": "t", "type": "text/plain"}],
                "bodyValues": {"t": {"value": f"{subject}: body"}},
            }
        },
    )
    return res["created"]["d"]["id"]


def identity_of(client, address):
    return next(i["id"] for i in client.call("Identity/get", ids=None)["list"] if i["email"] == address)


def subjects(client):
    ids = client.call("Email/query", filter={})["ids"]
    if not ids:
        return []
    return [e["subject"] for e in client.call("Email/get", ids=ids, properties=["subject"])["list"]]


def test_held_submission_is_pending_can_be_undone_and_is_sent_when_due(srv):
    alice = Jmap(srv.ports["http"], "alice@example.test", "pw-alice")
    bob = Jmap(srv.ports["http"], "bob@example.test", "pw-bob")
    caps = alice.session["accounts"][alice.account]["accountCapabilities"][SUBMISSION]
    assert "FUTURERELEASE" in caps["submissionExtensions"] and caps["maxDelayedSend"] >= 60
    ident = identity_of(alice, "alice@example.test")
    state0 = alice.call("EmailSubmission/get", ids=[])["state"]

    # Held for a minute: pending, nothing delivered, then undone.
    undone = draft(alice, ["bob@example.test"], "Undo me", "alice@example.test")
    env = {"mailFrom": {"email": "alice@example.test", "parameters": {"HOLDFOR": "60"}},
           "rcptTo": [{"email": "bob@example.test"}]}
    r = alice.call("EmailSubmission/set", create={"s": {"identityId": ident, "emailId": undone, "envelope": env}})
    held = r["created"]["s"]
    assert held["undoStatus"] == "pending", r
    [got] = alice.call("EmailSubmission/get", ids=[held["id"]])["list"]
    assert got["undoStatus"] == "pending" and got["emailId"] == undone and got["deliveryStatus"] is None
    assert got["envelope"]["mailFrom"]["parameters"] == {"HOLDFOR": "60"}
    r = alice.call("EmailSubmission/set", update={held["id"]: {"undoStatus": "canceled"}})
    assert held["id"] in r["updated"], r
    assert alice.call("EmailSubmission/get", ids=[held["id"]])["list"][0]["undoStatus"] == "canceled"
    r = alice.call("EmailSubmission/set", update={held["id"]: {"undoStatus": "canceled"}})
    assert r["notUpdated"][held["id"]]["type"] == "cannotUnsend"

    # Held for one second: the server sends it by itself, once.
    later = draft(alice, ["bob@example.test"], "Sent later", "alice@example.test")
    env["mailFrom"]["parameters"] = {"HOLDFOR": "1"}
    r = alice.call("EmailSubmission/set", create={"s": {"identityId": ident, "emailId": later, "envelope": env}})
    sub = r["created"]["s"]
    assert sub["undoStatus"] == "pending"
    wait_until(lambda: "Sent later" in subjects(bob), what="the held message in bob's mailbox", timeout=15)
    [got] = alice.call("EmailSubmission/get", ids=[sub["id"]])["list"]
    assert got["undoStatus"] == "final"
    assert got["deliveryStatus"]["bob@example.test"]["delivered"] == "yes"
    r = alice.call("EmailSubmission/set", update={sub["id"]: {"undoStatus": "canceled"}})
    assert r["notUpdated"][sub["id"]]["type"] == "cannotUnsend"

    # An immediate send is final at once.
    now = draft(alice, ["bob@example.test"], "Right away", "alice@example.test")
    r = alice.call("EmailSubmission/set", create={"s": {"identityId": ident, "emailId": now}})
    assert r["created"]["s"]["undoStatus"] == "final"

    time.sleep(1.5)  # absence check: the undone one must never arrive
    got = subjects(bob)
    assert "Undo me" not in got and got.count("Sent later") == 1 and "Right away" in got

    ch = alice.call("EmailSubmission/changes", sinceState=state0)
    assert set(ch["created"]) == {held["id"], sub["id"], r["created"]["s"]["id"]}
    q = alice.call("EmailSubmission/query", filter={"undoStatus": "canceled"})
    assert q["ids"] == [held["id"]]
    q = alice.call("EmailSubmission/query", filter={"emailIds": [later]}, sort=[{"property": "sentAt"}])
    assert q["ids"] == [sub["id"]]

    # Holds past maxDelayedSend are refused; destroy forgets the record.
    env["mailFrom"]["parameters"] = {"HOLDFOR": str(caps["maxDelayedSend"] + 1)}
    r = alice.call("EmailSubmission/set", create={"x": {"identityId": ident, "emailId": undone, "envelope": env}})
    assert r["notCreated"]["x"]["type"] == "invalidProperties"
    r = alice.call("EmailSubmission/set", destroy=[held["id"]])
    assert r["destroyed"] == [held["id"]]
    assert alice.call("EmailSubmission/get", ids=[held["id"]])["notFound"] == [held["id"]]
    # Bob cannot see or cancel alice's submissions.
    assert bob.call("EmailSubmission/get", ids=[sub["id"]])["notFound"] == [sub["id"]]


def test_delivery_status_follows_the_queue(server_factory, dns, peer):  # noqa: F811
    peer.rcpt_reply = lambda a: (550, f"5.1.1 <{a}>: no such user") if a.startswith("gone") else (250, "2.1.5 OK")
    cfg = delivery_config(dns=dns, routes={"c.test": f"127.0.0.1:{peer.port}"}, retry_schedule_secs=[1, 1])
    a = server_factory(cfg, sub="a")
    a.cli.add_user("alice@a.test", "alice-pw")
    a.start()
    alice = Jmap(a.ports["http"], "alice@a.test", "alice-pw")
    ident = identity_of(alice, "alice@a.test")
    email = draft(alice, ["ok@c.test", "gone@c.test"], "Status", "alice@a.test")
    r = alice.call("EmailSubmission/set", create={"s": {"identityId": ident, "emailId": email}})
    sid = r["created"]["s"]["id"]

    def final():
        ds = alice.call("EmailSubmission/get", ids=[sid])["list"][0]["deliveryStatus"]
        return ds if all(v["delivered"] != "queued" for v in ds.values()) else None

    ds = wait_until(final, what="final delivery statuses", timeout=20)
    assert ds["ok@c.test"]["delivered"] == "yes" and ds["ok@c.test"]["smtpReply"].startswith("250"), ds
    assert ds["gone@c.test"]["delivered"] == "no" and "550" in ds["gone@c.test"]["smtpReply"], ds
    [txn] = peer.wait_for(1)
    assert txn.rcpts == ["ok@c.test"]
    assert json.dumps(ds)  # plain JSON all the way


def test_read_receipt_is_sent_once_and_parses_back(srv):  # noqa: F811
    import smtplib

    alice = Jmap(srv.ports["http"], "alice@example.test", "pw-alice")
    bob = Jmap(srv.ports["http"], "bob@example.test", "pw-bob")
    msg = ("From: Bob <bob@example.test>\r\nTo: alice@example.test\r\nSubject: Did you get it?\r\n"
           "Message-ID: <receipt-1@example.test>\r\nDisposition-Notification-To: bob@example.test\r\n"
           "\r\nPlease confirm.\r\n")
    with smtplib.SMTP("127.0.0.1", srv.ports["smtp"]) as s:
        s.sendmail("bob@example.test", ["alice@example.test"], msg)
    [eid] = wait_until(lambda: alice.call("Email/query", filter={"subject": "Did you get it?"})["ids"], what="delivery")
    ident = identity_of(alice, "alice@example.test")
    mdn = {"forEmailId": eid, "disposition": {"actionMode": "manual-action", "sendingMode": "mdn-sent-manually",
                                              "type": "displayed"}}
    using = ["urn:ietf:params:jmap:core", "urn:ietf:params:jmap:mail", "urn:ietf:params:jmap:mdn"]
    [(name, res, _)] = alice.request([["MDN/send", {"accountId": alice.account, "identityId": ident,
                                                    "send": {"k": mdn}}, "0"]], using=using)
    assert name == "MDN/send" and "k" in (res["sent"] or {}), res
    assert res["sent"]["k"]["originalMessageId"] == "<receipt-1@example.test>"
    kw = alice.call("Email/get", ids=[eid], properties=["keywords"])["list"][0]["keywords"]
    assert kw.get("$mdnsent") is True
    [(name, res, _)] = alice.request([["MDN/send", {"accountId": alice.account, "identityId": ident,
                                                    "send": {"k": mdn}}, "0"]], using=using)
    assert res["notSent"]["k"]["type"] == "mdnAlreadySent", res

    [rid] = wait_until(lambda: bob.call("Email/query", filter={"subject": "Read: Did you get it?"})["ids"],
                       what="the receipt in bob's mailbox")
    blob = bob.call("Email/get", ids=[rid], properties=["blobId"])["list"][0]["blobId"]
    [(name, res, _)] = bob.request([["MDN/parse", {"accountId": bob.account, "blobIds": [blob]}, "0"]], using=using)
    got = res["parsed"][blob]
    assert got["disposition"] == {"actionMode": "manual-action", "sendingMode": "mdn-sent-manually", "type": "displayed"}
    assert got["originalMessageId"] == "<receipt-1@example.test>"
    assert got["finalRecipient"] == "rfc822; alice@example.test"
    assert assert_only_one(bob, "Read: Did you get it?")


def assert_only_one(client, subject):
    return len(client.call("Email/query", filter={"subject": subject})["ids"]) == 1
