"""Account settings over the HTTP API, with real clients: Identity/set
(names and signatures kept per address, RFC 8621 §6.3), and changing the
password at /api/password (only the account password may authorise it;
every old credential stops working on every protocol; a webmail session
continues with fresh cookies). Clients: urllib, imaplib, http.cookiejar."""

import base64
import http.cookiejar
import imaplib
import json
import urllib.request

import pytest

from test_jmap import Jmap, srv  # noqa: F401 (fixture)


def test_identity_names_and_signatures_are_kept(srv):
    alice = Jmap(srv.ports["http"], "alice@example.test", "pw-alice")
    [ident] = alice.call("Identity/get", ids=None)["list"]
    assert ident["name"] == "alice" and ident["textSignature"] == "" and ident["mayDelete"] is False
    state = alice.call("Identity/get", ids=[])["state"]

    r = alice.call("Identity/set", update={ident["id"]: {
        "name": "Alice Liddell",
        "textSignature": "-- \nAlice",
        "htmlSignature": "<p>Alice</p>",
        "replyTo": [{"name": None, "email": "alice@example.test"}],
    }})
    assert ident["id"] in r["updated"] and r["oldState"] == state and r["newState"] != state, r
    [got] = alice.call("Identity/get", ids=[ident["id"]])["list"]
    assert got["name"] == "Alice Liddell" and got["textSignature"] == "-- \nAlice"
    assert got["htmlSignature"] == "<p>Alice</p>" and got["replyTo"][0]["email"] == "alice@example.test"
    ch = alice.call("Identity/changes", sinceState=state)
    assert ch["updated"] == [ident["id"]] and ch["created"] == [] and ch["newState"] == r["newState"]

    r = alice.call("Identity/set", update={ident["id"]: {"email": "bob@example.test"}},
                   create={"n": {"email": "alice@example.test"}}, destroy=[ident["id"]])
    assert r["notUpdated"][ident["id"]]["type"] == "invalidProperties"
    assert r["notCreated"]["n"]["type"] == "forbidden" and r["notDestroyed"][ident["id"]]["type"] == "forbidden"
    r = alice.call("Identity/set", update={ident["id"]: {"name": "x" * 300}})
    assert r["notUpdated"][ident["id"]]["type"] == "invalidProperties"
    [(name, err, _)] = alice.request([["Identity/set", {"accountId": alice.account, "ifInState": "nope",
                                                         "update": {ident["id"]: {"name": "y"}}}, "c"]])
    assert name == "error" and err["type"] == "stateMismatch"

    bob = Jmap(srv.ports["http"], "bob@example.test", "pw-bob")
    r = bob.call("Identity/set", update={ident["id"]: {"name": "Mallory"}})
    assert r["notUpdated"][ident["id"]]["type"] == "notFound"
    assert alice.call("Identity/get", ids=[ident["id"]])["list"][0]["name"] == "Alice Liddell"


def post_password(client, old, new, extra=None):
    return client.http("POST", "/api/password", json.dumps({"old": old, "new": new}).encode(),
                       dict({"Content-Type": "application/json"}, **(extra or {})))


def imap_ok(srv, user, pw):
    c = imaplib.IMAP4("127.0.0.1", srv.ports["imap"])
    try:
        c.login(user, pw)
        c.logout()
        return True
    except imaplib.IMAP4.error:
        return False


def test_password_change_needs_the_account_password_and_ends_old_credentials(srv):
    alice = Jmap(srv.ports["http"], "alice@example.test", "pw-alice")
    status, _, body = alice.http("POST", "/api/app-passwords", json.dumps({"name": "phone"}).encode(),
                                 {"Content-Type": "application/json"})
    assert status == 201, body
    app_pw = json.loads(body)["password"]
    assert imap_ok(srv, "alice@example.test", app_pw)

    status, _, body = post_password(alice, "wrong", "a-new-password")
    assert status == 403 and "wrong" in json.loads(body)["error"]
    status, _, _ = post_password(alice, app_pw, "a-new-password")
    assert status == 403, "an app password cannot change the account password"
    status, _, _ = post_password(alice, "pw-alice", "short")
    assert status == 400
    status, _, body = post_password(alice, "pw-alice", "a-new-password")
    assert status == 204, body

    assert not imap_ok(srv, "alice@example.test", "pw-alice")
    assert not imap_ok(srv, "alice@example.test", app_pw), "app passwords end with the old password"
    assert imap_ok(srv, "alice@example.test", "a-new-password")
    assert alice.http("GET", "/jmap/session")[0] == 401
    alice2 = Jmap(srv.ports["http"], "alice@example.test", "a-new-password")
    assert alice2.http("GET", "/jmap/session")[0] == 200


def test_webmail_session_survives_its_own_password_change(srv):
    base = f"http://127.0.0.1:{srv.ports['http']}"
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))

    def call(method, path, body=None, headers=None):
        req = urllib.request.Request(base + path, data=body, method=method, headers=headers or {})
        try:
            with opener.open(req, timeout=30) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    status, body = call("POST", "/auth/session", json.dumps({"username": "bob@example.test", "password": "pw-bob"}).encode(),
                        {"Content-Type": "application/json"})
    assert status == 200, body
    csrf = json.loads(body)["csrf"]
    old_session = next(c.value for c in jar if c.name == "lbx_session")
    status, _ = call("POST", "/api/password", json.dumps({"old": "pw-bob", "new": "bobs-new-pw"}).encode(),
                     {"Content-Type": "application/json"})
    assert status == 403, "no CSRF token, no change"
    status, body = call("POST", "/api/password", json.dumps({"old": "pw-bob", "new": "bobs-new-pw"}).encode(),
                        {"Content-Type": "application/json", "X-CSRF-Token": csrf})
    assert status == 200, body
    new_csrf = json.loads(body)["csrf"]
    new_session = next(c.value for c in jar if c.name == "lbx_session")
    assert new_session != old_session and new_csrf != csrf
    assert call("GET", "/jmap/session")[0] == 200, "the new cookie works"
    stale = urllib.request.Request(base + "/jmap/session", headers={"Cookie": f"lbx_session={old_session}"})
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(stale, timeout=30)
    assert e.value.code == 401, "the old session is revoked"
    assert imap_ok(srv, "bob@example.test", "bobs-new-pw")
    basic = "Basic " + base64.b64encode(b"bob@example.test:pw-bob").decode()
    with pytest.raises(urllib.error.HTTPError):
        urllib.request.urlopen(urllib.request.Request(base + "/jmap/session", headers={"Authorization": basic}), timeout=30)
