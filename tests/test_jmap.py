"""JMAP (RFC 8620/8621) over real HTTP: the Session resource, method calls
with result references, Mailbox/Email/Thread on the same store as IMAP (a
change by one protocol is seen by the other), uploads, downloads, account
isolation, submission, EventSource push, request-level errors, and HTTPS
with HTTP/2 by ALPN. Clients: Python's urllib, imaplib, smtplib and curl."""

import base64
import imaplib
import json
import shutil
import smtplib
import socket
import ssl
import subprocess
import threading
import time
import urllib.error
import urllib.request

import pytest

CORE = "urn:ietf:params:jmap:core"
MAIL = "urn:ietf:params:jmap:mail"
SUBMISSION = "urn:ietf:params:jmap:submission"
USING = [CORE, MAIL, SUBMISSION]


class Jmap:
    def __init__(self, port, user, password, scheme="http"):
        self.base = f"{scheme}://127.0.0.1:{port}"
        self.auth = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        self.ctx = ssl._create_unverified_context() if scheme == "https" else None
        self._session = None

    def http(self, method, path, body=None, headers=None, auth=True):
        h = dict(headers or {})
        if auth:
            h["Authorization"] = self.auth
        url = path if path.startswith("http") else self.base + path
        req = urllib.request.Request(url, data=body, method=method, headers=h)
        try:
            with urllib.request.urlopen(req, timeout=30, context=self.ctx) as r:
                return r.status, r.headers, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.headers, e.read()

    @property
    def session(self):
        if self._session is None:
            status, _, body = self.http("GET", "/jmap/session")
            assert status == 200, body
            self._session = json.loads(body)
        return self._session

    @property
    def account(self):
        return self.session["primaryAccounts"][MAIL]

    def request(self, calls, using=USING):
        body = json.dumps({"using": using, "methodCalls": calls}).encode()
        status, _, out = self.http("POST", "/jmap/api", body, {"Content-Type": "application/json"})
        assert status == 200, out
        return json.loads(out)["methodResponses"]

    def call(self, name, **args):
        args.setdefault("accountId", self.account)
        [(n, res, _)] = self.request([[name, args, "c"]])
        assert n == name, res
        return res

    def mailboxes(self):
        return {m["role"] or m["name"]: m for m in self.call("Mailbox/get", ids=None)["list"]}


MESSAGE = (
    "From: Bob <bob@example.test>\r\nTo: alice@example.test\r\nSubject: Lunch?\r\n"
    "Message-ID: <lunch-1@example.test>\r\nDate: Tue, 01 Dec 2026 10:00:00 +0100\r\n"
    "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nShall we meet at noon?\r\n"
)


@pytest.fixture
def srv(server_factory):
    s = server_factory().start()
    s.cli.add_user("alice@example.test", "pw-alice")
    s.cli.add_user("bob@example.test", "pw-bob")
    return s


@pytest.fixture
def alice(srv):
    return Jmap(srv.ports["http"], "alice@example.test", "pw-alice")


def imap_login(srv, user="alice@example.test", pw="pw-alice"):
    c = imaplib.IMAP4("127.0.0.1", srv.ports["imap"])
    c.login(user, pw)
    return c


def test_session_resource_and_authentication(srv, alice):
    status, headers, _ = alice.http("GET", "/.well-known/jmap")
    # urllib follows the redirect (RFC 8620 §2.2) to the Session resource.
    assert status == 200
    s = alice.session
    assert set(USING) <= set(s["capabilities"])
    assert s["capabilities"][CORE]["maxCallsInRequest"] >= 1
    assert s["username"] == "alice@example.test"
    acc = s["accounts"][alice.account]
    assert acc["isPersonal"] and not acc["isReadOnly"] and MAIL in acc["accountCapabilities"]
    assert s["apiUrl"] == alice.base + "/jmap/api"
    assert "{blobId}" in s["downloadUrl"] and "{accountId}" in s["uploadUrl"]
    status, headers, _ = alice.http("GET", "/jmap/session", auth=False)
    assert status == 401 and headers["WWW-Authenticate"].startswith("Basic")
    wrong = Jmap(srv.ports["http"], "alice@example.test", "nope")
    assert wrong.http("GET", "/jmap/session")[0] == 401


def test_request_level_and_method_errors(alice):
    def post(body):
        return alice.http("POST", "/jmap/api", body, {"Content-Type": "application/json"})

    status, h, body = post(b"{not json")
    assert status == 400 and json.loads(body)["type"] == "urn:ietf:params:jmap:error:notJSON"
    status, _, body = post(json.dumps({"using": [CORE, "urn:x:nope"], "methodCalls": []}).encode())
    assert json.loads(body)["type"] == "urn:ietf:params:jmap:error:unknownCapability"
    status, _, body = post(json.dumps({"using": [CORE], "methodCalls": {}}).encode())
    assert json.loads(body)["type"] == "urn:ietf:params:jmap:error:notRequest"
    many = [["Core/echo", {}, str(i)] for i in range(alice.session["capabilities"][CORE]["maxCallsInRequest"] + 1)]
    status, _, body = post(json.dumps({"using": [CORE], "methodCalls": many}).encode())
    p = json.loads(body)
    assert p["type"] == "urn:ietf:params:jmap:error:limit" and p["limit"] == "maxCallsInRequest"
    r = alice.request(
        [
            ["Core/echo", {"hello": [1, 2]}, "a"],
            ["Nope/get", {}, "b"],
            ["Mailbox/get", {"accountId": "A999999"}, "c"],
            ["Mailbox/get", {"accountId": alice.account, "bogus": 1}, "d"],
        ]
    )
    assert r[0] == ["Core/echo", {"hello": [1, 2]}, "a"]
    assert r[1][0] == "error" and r[1][1]["type"] == "unknownMethod"
    assert r[2][1]["type"] == "accountNotFound"
    assert r[3][1]["type"] == "invalidArguments"
    # A mail method without the mail capability in `using` is unknown (RFC 8620 §3.3).
    r = alice.request([["Mailbox/get", {"accountId": alice.account}, "a"]], using=[CORE])
    assert r[0][1]["type"] == "unknownMethod"


def test_delivered_mail_through_jmap_and_imap_sees_jmap_changes(srv, alice):
    boxes = alice.mailboxes()
    assert {"inbox", "sent", "drafts", "trash", "junk", "archive"} <= set(boxes)
    inbox = boxes["inbox"]["id"]
    email_state = alice.call("Email/get", ids=[])["state"]
    with smtplib.SMTP("127.0.0.1", srv.ports["smtp"]) as s:
        s.sendmail("bob@example.test", ["alice@example.test"], MESSAGE.encode())
    r = alice.request(
        [
            ["Email/query", {"accountId": alice.account, "filter": {"inMailbox": inbox}, "calculateTotal": True}, "q"],
            [
                "Email/get",
                {
                    "accountId": alice.account,
                    "#ids": {"resultOf": "q", "name": "Email/query", "path": "/ids"},
                    "fetchTextBodyValues": True,
                },
                "g",
            ],
            [
                "Thread/get",
                {"accountId": alice.account, "#ids": {"resultOf": "g", "name": "Email/get", "path": "/list/*/threadId"}},
                "t",
            ],
        ]
    )
    q, g, t = r[0][1], r[1][1], r[2][1]
    assert q["total"] == 1 and len(q["ids"]) == 1
    [e] = g["list"]
    assert e["subject"] == "Lunch?"
    assert e["from"] == [{"name": "Bob", "email": "bob@example.test"}]
    assert e["messageId"] == ["lunch-1@example.test"]
    assert e["sentAt"] == "2026-12-01T10:00:00+01:00"
    assert e["mailboxIds"] == {inbox: True} and e["keywords"] == {}
    assert "noon" in e["bodyValues"][e["textBody"][0]["partId"]]["value"]
    assert e["preview"].startswith("Shall we meet")
    assert t["list"] == [{"id": e["threadId"], "emailIds": [e["id"]]}]
    ch = alice.call("Email/changes", sinceState=email_state)
    assert ch["created"] == [e["id"]] and ch["updated"] == [] and ch["destroyed"] == []
    assert alice.mailboxes()["inbox"]["unreadEmails"] == 1

    imap = imap_login(srv)
    imap.select("INBOX")
    # JMAP → IMAP: $seen and a custom keyword appear as flags.
    res = alice.call("Email/set", update={e["id"]: {"keywords/$seen": True, "keywords/$label1": True}})
    assert e["id"] in res["updated"], res
    imap.noop()
    typ, data = imap.fetch("1", "(FLAGS)")
    assert b"\\Seen" in data[0] and b"$label1" in data[0]
    # IMAP → JMAP: \Flagged shows as $flagged, and Email/changes reports it.
    state = alice.call("Email/get", ids=[])["state"]
    imap.store("1", "+FLAGS", "(\\Flagged)")
    got = alice.call("Email/get", ids=[e["id"]], properties=["keywords"])["list"][0]
    assert got["keywords"] == {"$seen": True, "$flagged": True, "$label1": True}
    assert alice.call("Email/changes", sinceState=state)["updated"] == [e["id"]]
    assert alice.mailboxes()["inbox"]["unreadEmails"] == 0
    # JMAP move: the message leaves INBOX for Archive, IMAP sees it there.
    archive = boxes["archive"]["id"]
    res = alice.call("Email/set", update={e["id"]: {"mailboxIds": {archive: True}}})
    assert e["id"] in res["updated"], res
    imap.noop()
    assert imap.select("INBOX")[1] == [b"0"]
    assert imap.select("Archive")[1] == [b"1"]
    # JMAP destroy: gone from IMAP too.
    assert alice.call("Email/set", destroy=[e["id"]])["destroyed"] == [e["id"]]
    assert imap.select("Archive")[1] == [b"0"]
    assert alice.call("Email/get", ids=[e["id"]])["notFound"] == [e["id"]]
    imap.logout()


def test_mailbox_set_tree_and_imap_names(srv, alice):
    start = alice.call("Mailbox/get", ids=[])["state"]
    res = alice.call(
        "Mailbox/set",
        create={"p": {"name": "Projects"}, "c": {"name": "Letterbox", "parentId": "#p"}},
    )
    assert set(res["created"]) == {"p", "c"}, res
    p, c = res["created"]["p"]["id"], res["created"]["c"]["id"]
    boxes = {m["id"]: m for m in alice.call("Mailbox/get", ids=None)["list"]}
    assert boxes[c]["name"] == "Letterbox" and boxes[c]["parentId"] == p
    imap = imap_login(srv)
    names = [l.decode() for l in imap.list()[1]]
    assert any('"Projects/Letterbox"' in n or "Projects/Letterbox" in n for n in names), names
    res = alice.call("Mailbox/set", update={c: {"name": "LB", "parentId": None}})
    assert c in res["updated"], res
    names = [l.decode() for l in imap.list()[1]]
    assert any(n.endswith(" LB") or n.endswith('"LB"') for n in names), names
    bad = alice.call("Mailbox/set", create={"x": {"name": "a/b"}}, destroy=[alice.mailboxes()["inbox"]["id"]])
    assert bad["notCreated"]["x"]["type"] == "invalidProperties"
    assert bad["notDestroyed"][alice.mailboxes()["inbox"]["id"]]["type"] == "forbidden"
    # A mailbox holding mail is kept unless onDestroyRemoveEmails.
    srv.cli.deliver("alice@example.test", MESSAGE, mailbox="LB")
    r = alice.call("Mailbox/set", destroy=[c])
    assert r["notDestroyed"][c]["type"] == "mailboxHasEmail"
    r = alice.call("Mailbox/set", destroy=[c], onDestroyRemoveEmails=True)
    assert r["destroyed"] == [c]
    ch = alice.call("Mailbox/changes", sinceState=start)
    assert c not in ch["created"] and p in ch["created"]
    imap.logout()


def test_upload_import_download_and_isolation(srv, alice):
    raw = MESSAGE.replace("Lunch?", "Imported").encode()
    status, _, body = alice.http(
        "POST", f"/jmap/upload/{alice.account}", raw, {"Content-Type": "message/rfc822"}
    )
    assert status == 201, body
    up = json.loads(body)
    assert up["size"] == len(raw) and up["type"] == "message/rfc822"
    inbox = alice.mailboxes()["inbox"]["id"]
    res = alice.call(
        "Email/import",
        emails={"i": {"blobId": up["blobId"], "mailboxIds": {inbox: True}, "keywords": {"$seen": True}}},
    )
    created = res["created"]["i"]
    got = alice.call("Email/get", ids=[created["id"]], properties=["subject", "keywords", "blobId"])["list"][0]
    assert got["subject"] == "Imported" and got["keywords"] == {"$seen": True}
    status, headers, body = alice.http("GET", f"/jmap/download/{alice.account}/{got['blobId']}/m.eml?accept=message/rfc822")
    assert status == 200 and body == raw
    assert headers["Content-Type"] == "message/rfc822"
    assert headers["Content-Disposition"].startswith("attachment")
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Accept-Ranges"] == "bytes"
    # Range requests (RFC 9110 §14): a slice, a suffix, and one past the end.
    url = f"/jmap/download/{alice.account}/{got['blobId']}/m.eml"
    status, headers, body = alice.http("GET", url, headers={"Range": "bytes=6-8"})
    assert status == 206 and body == raw[6:9] and headers["Content-Range"] == f"bytes 6-8/{len(raw)}"
    status, _, body = alice.http("GET", url, headers={"Range": "bytes=-5"})
    assert status == 206 and body == raw[-5:]
    status, headers, _ = alice.http("GET", url, headers={"Range": f"bytes={len(raw)}-"})
    assert status == 416 and headers["Content-Range"] == f"bytes */{len(raw)}"
    bob = Jmap(srv.ports["http"], "bob@example.test", "pw-bob")
    # Bob can neither read Alice's blob nor act on her account.
    assert bob.http("GET", f"/jmap/download/{bob.account}/{got['blobId']}/m.eml")[0] == 404
    assert bob.http("GET", f"/jmap/download/{alice.account}/{got['blobId']}/m.eml")[0] == 404
    r = bob.request([["Email/get", {"accountId": alice.account, "ids": [created["id"]]}, "x"]])
    assert r[0][1]["type"] == "accountNotFound"
    assert bob.call("Email/get", ids=[created["id"]])["notFound"] == [created["id"]]
    # Not a message: refused as invalidEmail.
    status, _, body = alice.http("POST", f"/jmap/upload/{alice.account}", b"\x00\x01binary", {})
    res = alice.call("Email/import", emails={"j": {"blobId": json.loads(body)["blobId"], "mailboxIds": {inbox: True}}})
    assert res["notCreated"]["j"]["type"] == "invalidEmail"
    res = alice.call("Email/import", emails={"k": {"blobId": "Gdeadbeef", "mailboxIds": {inbox: True}}})
    assert res["notCreated"]["k"]["type"] == "blobNotFound"


def test_draft_with_attachment_then_submission_to_a_local_user(srv, alice):
    boxes = alice.mailboxes()
    pdf = b"%PDF-1.4\n%fake\n"
    status, _, body = alice.http("POST", f"/jmap/upload/{alice.account}", pdf, {"Content-Type": "application/pdf"})
    blob = json.loads(body)["blobId"]
    res = alice.call(
        "Email/set",
        create={
            "d": {
                "mailboxIds": {boxes["drafts"]["id"]: True},
                "keywords": {"$draft": True},
                "from": [{"name": "Alice", "email": "alice@example.test"}],
                "to": [{"email": "bob@example.test"}],
                "subject": "Report",
                "textBody": [{"partId": "t", "type": "text/plain"}],
                "bodyValues": {"t": {"value": "See the attached report."}},
                "attachments": [{"blobId": blob, "type": "application/pdf", "name": "report.pdf"}],
            }
        },
    )
    draft = res["created"]["d"]
    got = alice.call("Email/get", ids=[draft["id"]], properties=["subject", "attachments", "textBody", "bodyValues"], fetchTextBodyValues=True)["list"][0]
    assert got["subject"] == "Report"
    [att] = got["attachments"]
    assert att["name"] == "report.pdf" and att["type"] == "application/pdf" and att["size"] == len(pdf)
    status, _, body = alice.http("GET", f"/jmap/download/{alice.account}/{att['blobId']}/report.pdf")
    assert status == 200 and body == pdf
    imap = imap_login(srv)
    imap.select("Drafts")
    typ, data = imap.fetch("1", "(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert b"\\Draft" in data[0][0] and b"Report" in data[0][1]
    imap.logout()

    identity = alice.call("Identity/get", ids=None)["list"]
    ident = next(i for i in identity if i["email"] == "alice@example.test")
    r = alice.request(
        [
            [
                "EmailSubmission/set",
                {
                    "accountId": alice.account,
                    "create": {"s": {"identityId": ident["id"], "emailId": draft["id"]}},
                    "onSuccessUpdateEmail": {
                        "#s": {
                            "mailboxIds": {boxes["sent"]["id"]: True},
                            "keywords/$draft": None,
                            "keywords/$seen": True,
                        }
                    },
                },
                "0",
            ]
        ]
    )
    assert r[0][0] == "EmailSubmission/set" and "s" in r[0][1]["created"], r
    assert r[1][0] == "Email/set" and draft["id"] in r[1][1]["updated"], r
    moved = alice.call("Email/get", ids=[draft["id"]], properties=["mailboxIds", "keywords"])["list"][0]
    assert moved["mailboxIds"] == {boxes["sent"]["id"]: True} and moved["keywords"] == {"$seen": True}
    bob = Jmap(srv.ports["http"], "bob@example.test", "pw-bob")
    deadline = time.time() + 10
    while time.time() < deadline:
        ids = bob.call("Email/query", filter={"subject": "Report"})["ids"]
        if ids:
            break
        time.sleep(0.2)
    assert len(ids) == 1
    e = bob.call("Email/get", ids=ids, properties=["from", "attachments"])["list"][0]
    assert e["from"][0]["email"] == "alice@example.test" and e["attachments"][0]["name"] == "report.pdf"
    # Sending as someone else is refused.
    res = alice.call(
        "Email/set",
        create={"f": {"mailboxIds": {boxes["drafts"]["id"]: True}, "from": [{"email": "bob@example.test"}],
                      "to": [{"email": "bob@example.test"}], "subject": "forged"}},
    )
    forged = res["created"]["f"]["id"]
    r = alice.call("EmailSubmission/set", create={"s": {"identityId": ident["id"], "emailId": forged}})
    assert r["notCreated"]["s"]["type"] == "forbiddenFrom"
    # So is a Sender: naming someone else.
    res = alice.call(
        "Email/set",
        create={"f": {"mailboxIds": {boxes["drafts"]["id"]: True}, "from": [{"email": "alice@example.test"}],
                      "sender": [{"email": "bob@example.test"}], "to": [{"email": "bob@example.test"}],
                      "subject": "forged sender"}},
    )
    r = alice.call("EmailSubmission/set", create={"s": {"identityId": ident["id"], "emailId": res["created"]["f"]["id"]}})
    assert r["notCreated"]["s"]["type"] == "forbiddenFrom"


def test_event_source_pushes_state_changes(srv, alice):
    url = f"{alice.base}/jmap/eventsource?types=Email,Mailbox&closeafter=no&ping=0"
    req = urllib.request.Request(url, headers={"Authorization": alice.auth, "Accept": "text/event-stream"})
    resp = urllib.request.urlopen(req, timeout=30)
    assert resp.headers["Content-Type"].startswith("text/event-stream")
    events = []

    def reader():
        buf = b""
        while True:
            try:
                line = resp.readline()
            except OSError:
                return
            if not line:
                return
            buf += line
            if buf.endswith(b"\n\n"):
                events.append(buf.decode())
                buf = b""

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    deadline = time.time() + 10
    while not events and time.time() < deadline:
        time.sleep(0.05)
    assert events and events[0].startswith("event: state"), events
    before = json.loads(events[0].split("data: ", 1)[1])["changed"][alice.account]["Email"]
    srv.cli.deliver("alice@example.test", MESSAGE)
    deadline = time.time() + 10
    while len(events) < 2 and time.time() < deadline:
        time.sleep(0.05)
    assert len(events) >= 2, events
    change = json.loads(events[1].split("data: ", 1)[1])
    assert change["@type"] == "StateChange"
    assert int(change["changed"][alice.account]["Email"]) > int(before)
    # The server's end closes the stream (the fixture stops it).


def test_event_source_over_http11_is_chunked_closes_and_is_authenticated(srv, alice):
    """The push path that bypasses hyper (crates/http/src/stream_conn.rs)
    frames its own response: chunked, `connection: close`, and the same
    router answers, so a request without credentials gets 401."""
    def head_and_rest(request):
        c = socket.create_connection(("127.0.0.1", srv.ports["http"]), timeout=10)
        c.sendall(request)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = c.recv(4096)
            assert chunk, data
            data += chunk
        head, rest = data.split(b"\r\n\r\n", 1)
        return c, head.decode().lower(), rest

    c, head, rest = head_and_rest(
        b"GET /jmap/eventsource?types=Email&closeafter=no&ping=0 HTTP/1.1\r\nHost: localhost\r\n"
        + f"Authorization: {alice.auth}\r\n\r\n".encode()
    )
    assert head.startswith("http/1.1 200"), head
    assert "transfer-encoding: chunked" in head and "connection: close" in head, head
    assert "content-type: text/event-stream" in head and "date: " in head, head
    # One chunk: hex size, CRLF, the event, CRLF (RFC 9112 §7.1).
    while b"\r\n" not in rest or len(rest.split(b"\r\n", 1)[1]) < int(rest.split(b"\r\n", 1)[0], 16) + 2:
        chunk = c.recv(4096)
        assert chunk, rest
        rest += chunk
    size, after = rest.split(b"\r\n", 1)
    event, end = after[: int(size, 16)], after[int(size, 16):]
    assert event.startswith(b"event: state\ndata: ") and event.endswith(b"\n\n"), rest
    assert end.startswith(b"\r\n"), rest
    c.close()
    # HTTP/1.0 has no chunked coding: the events come unframed, the
    # connection's end ends the body.
    c, head, rest = head_and_rest(
        b"GET /jmap/eventsource?types=Email&ping=0 HTTP/1.0\r\n" + f"Authorization: {alice.auth}\r\n\r\n".encode()
    )
    assert head.startswith("http/1.1 200") and "transfer-encoding" not in head and "content-length" not in head, head
    while b"\n\n" not in rest:
        chunk = c.recv(4096)
        assert chunk, rest
        rest += chunk
    assert rest.startswith(b"event: state\ndata: "), rest
    c.close()
    c, head, _ = head_and_rest(b"GET /jmap/eventsource HTTP/1.1\r\nHost: localhost\r\n\r\n")
    assert head.startswith("http/1.1 401"), head
    assert "content-length: " in head and "connection: close" in head, head
    c.close()
    # Any other first request is hyper's, keep-alive and all.
    c, head, _ = head_and_rest(
        b"GET /jmap/session HTTP/1.1\r\nHost: localhost\r\n" + f"Authorization: {alice.auth}\r\n\r\n".encode()
    )
    assert head.startswith("http/1.1 200") and "connection: close" not in head, head
    c.close()


def test_https_speaks_http2_by_alpn_and_plain_http_serves_dev_api(srv):
    curl = shutil.which("curl")
    if curl is None:
        pytest.fail("curl is required (apt-get install curl)")
    out = subprocess.run(
        [curl, "-sk", "--http2", "-u", "alice@example.test:pw-alice", "-o", "/dev/null", "-w", "%{http_version} %{http_code}",
         f"https://127.0.0.1:{srv.ports['https']}/jmap/session"],
        capture_output=True, text=True, timeout=30,
    )
    assert out.stdout == "2 200", out
    out = subprocess.run(
        [curl, "-sk", "--http1.1", "-u", "alice@example.test:pw-alice", "-o", "/dev/null", "-w", "%{http_version} %{http_code}",
         f"https://127.0.0.1:{srv.ports['https']}/jmap/session"],
        capture_output=True, text=True, timeout=30,
    )
    assert out.stdout == "1.1 200", out


def test_plain_http_redirects_without_dev(server_factory):
    s = server_factory(dev=False, extra_config='[auth]\nallow_plaintext = true\n').start()
    with socket.create_connection(("127.0.0.1", s.ports["http"]), timeout=10) as c:
        c.sendall(b"GET /jmap/session HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := c.recv(4096):
            data += chunk
    head = data.split(b"\r\n\r\n")[0].decode()
    assert head.startswith("HTTP/1.1 308"), head
    assert f"location: https://localhost:{s.ports['https']}/jmap/session" in head.lower(), head


def test_bad_input_gets_the_rfc_error_and_the_server_stays_up(srv, alice):
    import http.client

    limit = alice.session["capabilities"][CORE]["maxSizeRequest"]
    # A declared 100 MB body is refused before it is read.
    c = http.client.HTTPConnection("127.0.0.1", srv.ports["http"], timeout=30)
    c.putrequest("POST", "/jmap/api")
    c.putheader("Authorization", alice.auth)
    c.putheader("Content-Type", "application/json")
    c.putheader("Content-Length", str(100 * 1024 * 1024))
    c.endheaders()
    c.send(b"{" * 1024)
    r = c.getresponse()
    body = json.loads(r.read())
    assert r.status == 400 and body["limit"] == "maxSizeRequest"
    c.close()
    # A chunked body over the limit is cut off at the limit.
    def chunks():
        yield b'{"using":[],"methodCalls":[],"x":"'
        for _ in range(limit // 65536 + 2):
            yield b"a" * 65536

    c = http.client.HTTPConnection("127.0.0.1", srv.ports["http"], timeout=30)
    try:
        c.request("POST", "/jmap/api", body=chunks(), headers={"Authorization": alice.auth}, encode_chunked=True)
        r = c.getresponse()
        assert r.status == 400 and json.loads(r.read())["limit"] == "maxSizeRequest"
    except (BrokenPipeError, ConnectionResetError):
        pass  # the server stopped reading at the limit and closed: also a refusal
    c.close()
    # 10,000 method calls: the limit, not 10,000 responses.
    calls = [["Core/echo", {}, str(i)] for i in range(10_000)]
    status, _, body = alice.http("POST", "/jmap/api", json.dumps({"using": [CORE], "methodCalls": calls}).encode())
    assert status == 400 and json.loads(body)["limit"] == "maxCallsInRequest"
    # A chain of result references, each to the previous call.
    n = alice.session["capabilities"][CORE]["maxCallsInRequest"]
    chain = [["Core/echo", {"v": [1]}, "0"]] + [
        ["Core/echo", {"#v": {"resultOf": str(i), "name": "Core/echo", "path": "/v"}}, str(i + 1)] for i in range(n - 1)
    ]
    r = alice.request(chain, using=[CORE])
    assert r[-1][1] == {"v": [1]}
    # Deeply nested JSON and deep filters.
    deep = b'{"using":[],"methodCalls":[],"x":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    status, _, body = alice.http("POST", "/jmap/api", deep, {"Content-Type": "application/json"})
    assert status == 400 and json.loads(body)["type"] == "urn:ietf:params:jmap:error:notJSON"
    f = {"text": "abc"}
    for _ in range(30):
        f = {"operator": "NOT", "conditions": [f]}
    res = alice.request([["Email/query", {"accountId": alice.account, "filter": f}, "q"]])
    assert res[0][0] == "error" and res[0][1]["type"] == "unsupportedFilter"
    # Invalid ids, read-only properties, bad patches, bad states.
    inbox = alice.mailboxes()["inbox"]["id"]
    r = alice.call("Email/get", ids=["E0", "nope", "E99999999999999999999", "M1"])
    assert sorted(r["notFound"]) == sorted(["E0", "nope", "E99999999999999999999", "M1"])
    srv.cli.deliver("alice@example.test", MESSAGE)
    [eid] = alice.call("Email/query", filter={"inMailbox": inbox})["ids"]
    r = alice.call("Email/set", update={eid: {"subject": "changed", "keywords/bad word": True}})
    assert r["notUpdated"][eid]["type"] in ("invalidProperties", "invalidPatch")
    r = alice.call("Email/set", update={eid: {"mailboxIds": {}}})
    assert r["notUpdated"][eid]["type"] == "invalidProperties"
    r = alice.request([["Email/set", {"accountId": alice.account, "ifInState": "12345678", "destroy": [eid]}, "s"]])
    assert r[0][1]["type"] == "stateMismatch"
    r = alice.request([["Email/changes", {"accountId": alice.account, "sinceState": "x"}, "c"]])
    assert r[0][1]["type"] == "cannotCalculateChanges"
    # /copy needs another account to copy from (RFC 8620 §5.4, §6.3).
    for method, extra in (("Email/copy", {"create": {}}), ("Blob/copy", {"blobIds": []})):
        r = alice.request([[method, {"accountId": alice.account, "fromAccountId": alice.account, **extra}, "c"]])
        assert r[0][1]["type"] == "invalidArguments", r
        r = alice.request([[method, {"accountId": alice.account, "fromAccountId": "A999", **extra}, "c"]])
        assert r[0][1]["type"] == "fromAccountNotFound", r
    r = alice.request([["Email/query", {"accountId": alice.account, "sort": [{"property": "from"}]}, "q"]])
    assert r[0][1]["type"] == "unsupportedSort"
    # EventSource with bad parameters still answers (defaults apply).
    status, headers, _ = alice.http("GET", "/jmap/does-not-exist")
    assert status == 404
    # The server is fine afterwards.
    assert alice.call("Email/get", ids=[eid], properties=["id"])["list"] == [{"id": eid}]
    assert alice.http("GET", "/healthz", auth=False)[0] == 200
    assert alice.http("GET", "/readyz", auth=False)[0] == 200


def test_search_snippets_mark_the_terms(srv, alice):
    srv.cli.deliver("alice@example.test", MESSAGE)
    [eid] = alice.call("Email/query", filter={"text": "noon"})["ids"]
    r = alice.call("SearchSnippet/get", filter={"text": "noon"}, emailIds=[eid, "E424242"])
    assert r["list"] == [{"emailId": eid, "subject": None, "preview": "Shall we meet at <mark>noon</mark>?"}]
    assert r["notFound"] == ["E424242"]


def test_client_autoconfiguration(srv, alice):
    status, headers, body = alice.http(
        "GET", "/.well-known/autoconfig/mail/config-v1.1.xml?emailaddress=alice@example.test", auth=False
    )
    assert status == 200 and headers["Content-Type"].startswith("application/xml")
    import xml.etree.ElementTree as ET

    root = ET.fromstring(body)
    provider = root.find("emailProvider")
    assert provider.findtext("domain") == "example.test"
    imap = [s for s in provider.findall("incomingServer") if s.get("type") == "imap"]
    assert {(s.findtext("port"), s.findtext("socketType")) for s in imap} == {
        (str(srv.ports["imaps"]), "SSL"),
        (str(srv.ports["imap"]), "STARTTLS"),
    }
    smtp = provider.findall("outgoingServer")
    assert (str(srv.ports["submissions"]), "SSL") in {(s.findtext("port"), s.findtext("socketType")) for s in smtp}
    req = b'<?xml version="1.0"?><Autodiscover><Request><EMailAddress>alice@example.test</EMailAddress></Request></Autodiscover>'
    status, _, body = alice.http("POST", "/autodiscover/autodiscover.xml", req, {"Content-Type": "text/xml"}, auth=False)
    assert status == 200 and b"<LoginName>alice@example.test</LoginName>" in body
    # Apple's configuration profile, read with Python's plistlib.
    import plistlib

    status, headers, body = alice.http("GET", "/apple/mobileconfig?emailaddress=alice@example.test", auth=False)
    assert status == 200 and headers["Content-Type"] == "application/x-apple-aspen-config"
    profile = plistlib.loads(body)
    assert profile["PayloadType"] == "Configuration" and profile["PayloadVersion"] == 1
    [mail] = profile["PayloadContent"]
    assert mail["PayloadType"] == "com.apple.mail.managed" and mail["EmailAddress"] == "alice@example.test"
    assert mail["IncomingMailServerPortNumber"] == srv.ports["imaps"] and mail["IncomingMailServerUseSSL"] is True
    assert mail["OutgoingMailServerPortNumber"] == srv.ports["submissions"]
    again = plistlib.loads(alice.http("GET", "/apple/mobileconfig?emailaddress=alice@example.test", auth=False)[2])
    assert again["PayloadUUID"] == profile["PayloadUUID"] != mail["PayloadUUID"]
    assert alice.http("GET", "/apple/mobileconfig?emailaddress=<x>", auth=False)[0] == 400


def test_cors_for_configured_origins_only(server_factory):
    s = server_factory(extra_config='[http]\ncors_origins = ["https://app.example"]\n').start()
    s.cli.add_user("alice@example.test", "pw")
    j = Jmap(s.ports["http"], "alice@example.test", "pw")
    status, h, _ = j.http(
        "OPTIONS", "/jmap/api", headers={"Origin": "https://app.example", "Access-Control-Request-Method": "POST"}, auth=False
    )
    assert status == 204
    assert h["Access-Control-Allow-Origin"] == "https://app.example"
    assert "Authorization" in h["Access-Control-Allow-Headers"]
    status, h, _ = j.http("GET", "/jmap/session", headers={"Origin": "https://app.example"})
    assert status == 200 and h["Access-Control-Allow-Origin"] == "https://app.example"
    status, h, _ = j.http("GET", "/jmap/session", headers={"Origin": "https://evil.example"})
    assert status == 200 and h.get("Access-Control-Allow-Origin") is None


def apply_query_changes(ids, changes):
    """RFC 8620 §5.6: drop every removed id, then insert added ones by index."""
    out = [i for i in ids if i not in set(changes["removed"])]
    for a in sorted(changes["added"], key=lambda a: a["index"]):
        out.insert(a["index"], a["id"])
    return out


def test_query_changes_bring_a_cached_list_up_to_date(srv, alice):
    inbox = alice.mailboxes()["inbox"]["id"]

    def deliver(n, subject, reply_to=None):
        refs = f"In-Reply-To: <{reply_to}>\r\nReferences: <{reply_to}>\r\n" if reply_to else ""
        msg = (f"From: bob@example.test\r\nTo: alice@example.test\r\nSubject: {subject}\r\n"
               f"Message-ID: <qc-{n}@example.test>\r\n{refs}\r\nbody {n}\r\n")
        srv.cli.deliver("alice@example.test", msg)

    for n in range(4):
        deliver(n, f"topic {n}")
    queries = [
        {"filter": {"inMailbox": inbox}},
        {"filter": {"inMailbox": inbox, "notKeyword": "$seen"}},
        {"filter": {"inMailbox": inbox}, "collapseThreads": True},
    ]
    cached = []
    for q in queries:
        r = alice.call("Email/query", **q)
        assert r["canCalculateChanges"] is True
        cached.append((r["queryState"], r["ids"]))
    # A reply joins thread 1 (and becomes its newest email), one email is
    # read, one destroyed.
    deliver(10, "Re: topic 1", reply_to="qc-1@example.test")
    ids = cached[0][1]
    alice.call("Email/set", update={ids[1]: {"keywords/$seen": True}}, destroy=[ids[3]])
    for q, (state, old) in zip(queries, cached):
        ch = alice.call("Email/queryChanges", sinceQueryState=state, calculateTotal=True, **q)
        now = alice.call("Email/query", **q)
        assert ch["oldQueryState"] == state and ch["newQueryState"] == now["queryState"]
        assert apply_query_changes(old, ch) == now["ids"], (q, ch)
        assert ch["total"] == len(now["ids"])
        assert alice.call("Email/queryChanges", sinceQueryState=now["queryState"], **q)["added"] == []
    collapsed = alice.call("Email/query", **queries[2])["ids"]
    assert len(collapsed) == 3  # topics 0, 1 (with its reply), 2; topic 3 destroyed
    r = alice.request([["Email/queryChanges", {"accountId": alice.account, "sinceQueryState": cached[0][0],
                                               "maxChanges": 1, **queries[0]}, "c"]])
    assert r[0][1]["type"] == "tooManyChanges"
    r = alice.request([["Email/queryChanges", {"accountId": alice.account, "sinceQueryState": cached[0][0],
                                               **queries[2]}, "c"]])
    assert r[0][1]["type"] == "cannotCalculateChanges"  # a plain state for a collapsed query
    # Mailbox/queryChanges after a create and a rename.
    q = {"sort": [{"property": "name"}]}
    r = alice.call("Mailbox/query", **q)
    state, old = r["queryState"], r["ids"]
    res = alice.call("Mailbox/set", create={"n": {"name": "Receipts"}})
    new_id = res["created"]["n"]["id"]
    alice.call("Mailbox/set", update={new_id: {"name": "AAA receipts"}})
    ch = alice.call("Mailbox/queryChanges", sinceQueryState=state, **q)
    assert apply_query_changes(old, ch) == alice.call("Mailbox/query", **q)["ids"]


def test_requests_in_progress_are_limited_per_client_address(server_factory):
    srv = server_factory("[http]\nmax_requests_per_ip = 2\n").start()
    srv.cli.add_user("alice@example.test", "pw-alice")
    auth = base64.b64encode(b"alice@example.test:pw-alice").decode()
    port = srv.ports["http"]

    def healthz():
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := s.recv(4096):
            data += chunk
        s.close()
        return data.split(b" ", 2)[1]

    # Two uploads that never finish their bodies hold both slots.
    slow = []
    for _ in range(2):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.sendall(f"POST /jmap/upload/A1 HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Basic {auth}\r\n"
                  "Content-Type: text/plain\r\nContent-Length: 100000\r\n\r\npartial".encode())
        slow.append(s)
    deadline = time.time() + 10
    while healthz() != b"429" and time.time() < deadline:
        time.sleep(0.1)
    assert healthz() == b"429"
    slow.pop().close()
    deadline = time.time() + 10
    while healthz() != b"200" and time.time() < deadline:
        time.sleep(0.1)
    assert healthz() == b"200", "a slot frees when its request ends"
    for s in slow:
        s.close()


def test_a_connection_that_sends_no_request_is_closed(server_factory):
    """Issue 18: hyper times a header from its first byte; a client that
    connects and says nothing is closed after the header timeout too."""
    srv = server_factory("[http]\nheader_timeout_secs = 2\n").start()
    idle = socket.create_connection(("127.0.0.1", srv.ports["http"]), timeout=15)
    t = time.time()
    assert idle.recv(100) == b"", "closed without an answer"
    assert 1.5 <= time.time() - t < 8, time.time() - t
    idle.close()
    # A client that does send in time is served.
    s = socket.create_connection(("127.0.0.1", srv.ports["http"]), timeout=15)
    time.sleep(1)
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
    assert s.recv(100).startswith(b"HTTP/1.1 200")
    s.close()
