"""The webmail in a real browser: Chromium driven by playwright-core
(tests/js/webmail.mjs) against a running server, with every request that
leaves loopback refused and recorded. Mail is seeded over SMTP; what the
page did is checked over IMAP and JMAP afterwards. Covers sign-in, reading
threads, hostile HTML (no script runs, no remote fetch until allowed),
downloads, compose with an attachment, reply threading headers, search
snippets, moves, spam, keyboard shortcuts, live updates, offline start,
Web Push (verification answered by the service worker, a notification on
a state change), CSRF from another origin, and phone/desktop screenshots
(saved under $WEBMAIL_SCREENSHOTS)."""

import base64
import email
import email.policy
import http.server
import imaplib
import json
import os
import shutil
import smtplib
import subprocess
import threading
import time
from pathlib import Path

import pytest

from test_jmap import Jmap, srv  # noqa: F401 (the fixture: alice and bob)
from test_jmap_push import PushService, UserAgent

JS = Path(__file__).parent / "js"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")

EVIL_HTML = """<html><head><style>body{background:url(http://198.51.100.7/css.gif)} .x{width:expression(alert(1))}</style>
<script>window.top.PWNED='script';document.title='PWNED'</script></head>
<body><p>Hello <b>subscriber</b>, our weekly news.</p>
<img src="http://198.51.100.7/pixel.gif" alt="pixel">
<img src="x" onerror="window.top.PWNED='onerror'">
<a href="javascript:window.top.PWNED='link'">Click me</a>
<a href="https://example.org/deal">Deal</a>
<svg><script>window.top.PWNED='svg'</script><circle r="5"/></svg>
<div style="background-image:url(http://198.51.100.7/bg.gif)" onclick="window.top.PWNED='click'">styled</div>
<iframe src="javascript:window.top.PWNED='iframe'"></iframe>
<form action="http://198.51.100.7/steal"><input name="q"></form>
<object data="http://198.51.100.7/x.swf"></object>
<p style="background:\\75 rl(http://198.51.100.7/escaped.gif)">escaped</p>
<p style="background-image:image-set('http://198.51.100.7/set.png' 1x)">set</p>
<p style="background:url('http://198.51.100.7/odd.gif)">odd</p>
<table background="http://198.51.100.7/table.gif"><tr><td>cell</td></tr></table>
<a href=" java&#x09;script:window.top.PWNED='entity'">entity link</a>
</body></html>"""

NOTES = b"Bring the maps.\n" * 3
# A 3x2 red PNG.
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAMAAAACCAIAAAASFvFNAAAAEElEQVR4nGP4z8AAQQxwFgBB0gX7h/C5SAAAAABJRU5ErkJggg=="


def msg(subject, mid, body="Hello Alice.\n", frm="Bob <bob@example.test>", extra="", date="Thu, 03 Dec 2026 10:00:00 +0100"):
    return (f"From: {frm}\r\nTo: Alice <alice@example.test>\r\nSubject: {subject}\r\nMessage-ID: <{mid}>\r\n{extra}"
            f"Date: {date}\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}")


def seed(srv):
    lunch = (
        "From: Bob <bob@example.test>\r\nTo: alice@example.test\r\nSubject: Lunch on Friday\r\n"
        "Message-ID: <lunch@example.test>\r\nDate: Thu, 03 Dec 2026 09:00:00 +0100\r\nMIME-Version: 1.0\r\n"
        "Content-Type: multipart/mixed; boundary=b1\r\n\r\n--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        "Noon at the usual place? Notes attached.\r\n--b1\r\nContent-Type: text/plain; name=notes.txt\r\n"
        "Content-Disposition: attachment; filename=notes.txt\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        + base64.b64encode(NOTES).decode() + "\r\n--b1--\r\n"
    )
    evil = (
        "From: News <news@shop.example>\r\nTo: alice@example.test\r\nSubject: Weekly newsletter\r\n"
        "Message-ID: <news@shop.example>\r\nDate: Thu, 03 Dec 2026 09:30:00 +0100\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/html; charset=utf-8\r\n\r\n" + EVIL_HTML + "\r\n"
    )
    # Fillers first: the list is newest-received first.
    mails = [msg(f"Filler {i:02d}", f"filler-{i}@example.test", f"Filler body {i}.\n",
                 date=f"Wed, 02 Dec 2026 10:{i:02d}:00 +0100") for i in range(40)]
    zoo = (
        "From: Bob <bob@example.test>\r\nTo: alice@example.test\r\nSubject: Zoo trip\r\n"
        "Message-ID: <zoo@example.test>\r\nDate: Thu, 03 Dec 2026 06:00:00 +0100\r\nMIME-Version: 1.0\r\n"
        "Content-Type: multipart/mixed; boundary=z1\r\n\r\n--z1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        "We saw a zebra and two lions.\r\n--z1\r\nContent-Type: image/png; name=zebra.png\r\n"
        "Content-Disposition: attachment; filename=zebra.png\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        + PNG + "\r\n--z1--\r\n"
    )
    photo = (
        "From: Carol <carol@example.test>\r\nTo: alice@example.test\r\nSubject: Photo of the day\r\n"
        "Message-ID: <photo@example.test>\r\nDate: Thu, 03 Dec 2026 05:00:00 +0100\r\nMIME-Version: 1.0\r\n"
        "Content-Type: multipart/related; boundary=r1\r\n\r\n--r1\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
        "<p>Look:</p><img id=photo src=\"cid:photo1@example.test\" alt=photo>\r\n--r1\r\nContent-Type: image/png\r\n"
        "Content-ID: <photo1@example.test>\r\nContent-Disposition: inline\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        + PNG + "\r\n--r1--\r\n"
    )
    mails += [
        photo,
        lunch,
        evil,
        msg("Project plan", "plan-1@example.test", "Here is the plan.\n", date="Thu, 03 Dec 2026 08:00:00 +0100"),
        msg("Re: Project plan", "plan-2@example.test", "Looks good.\n\n> Here is the plan.\n",
            extra="In-Reply-To: <plan-1@example.test>\r\nReferences: <plan-1@example.test>\r\n", date="Thu, 03 Dec 2026 08:30:00 +0100"),
        msg("Cheap pills", "pills@spam.example", "Buy now!\n", frm="Spammer <x@spam.example>", date="Thu, 03 Dec 2026 07:00:00 +0100"),
        zoo,
    ]
    with smtplib.SMTP("127.0.0.1", srv.ports["smtp"]) as s:
        for m in mails:
            s.sendmail("bob@example.test", ["alice@example.test"], m)


BULK = 1500


def seed_bulk(srv):
    """Carol's big INBOX for the scrolling check (SMTP: 50 per connection)."""
    srv.cli.add_user("carol@example.test", "pw-carol")
    i = 0
    while i < BULK:
        with smtplib.SMTP("127.0.0.1", srv.ports["smtp"]) as s:
            for _ in range(min(50, BULK - i)):
                s.sendmail("robot@example.test", ["carol@example.test"],
                           msg(f"Bulk {i:04d}", f"bulk-{i}@example.test", f"Bulk body {i}.\n", frm="Robot <robot@example.test>"))
                i += 1


class Attacker:
    """Another origin (another port) whose pages auto-submit forms at the server."""

    def __init__(self, target):
        pages = {
            "/api.html": f"""<form id=f method=post enctype=text/plain action="{target}/jmap/api">
<input name='{{"using":["urn:ietf:params:jmap:core","urn:ietf:params:jmap:mail"],"methodCalls":[["Mailbox/set",{{"accountId":"A1","create":{{"h":{{"name":"Hacked"}}}}}},"c"]],"x":"' value='"}}'>
</form><script>document.getElementById('f').submit()</script>""",
            "/login.html": f"""<form id=f method=post action="{target}/auth/session">
<input name=username value="alice@example.test"><input name=password value="pw-alice">
</form><script>document.getElementById('f').submit()</script>""",
        }

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                body = pages.get(self.path, "not here").encode()
                self.send_response(200 if self.path in pages else 404)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def imap(srv, user):
    c = imaplib.IMAP4("127.0.0.1", srv.ports["imap"])
    c.login(user, "pw-" + user.split("@")[0])
    return c


def messages(srv, user, mailbox):
    """(flags, parsed message) of every message in a mailbox."""
    c = imap(srv, user)
    typ, _ = c.select(f'"{mailbox}"')
    out = []
    if typ == "OK":
        _, data = c.search(None, "ALL")
        for n in data[0].split():
            _, d = c.fetch(n, "(FLAGS RFC822)")
            flags = d[0][0].decode()
            out.append((flags, email.message_from_bytes(d[0][1], policy=email.policy.default)))
    c.logout()
    return out


def subjects(srv, user, mailbox):
    return sorted(str(m["Subject"]) for _, m in messages(srv, user, mailbox))


def wait_for(f, what, timeout=20):
    deadline = time.time() + timeout
    while True:
        v = f()
        if v:
            return v
        if time.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def test_webmail_in_a_browser(srv, tmp_path):
    if not (JS / "node_modules" / "playwright-core").is_dir():
        pytest.fail("playwright-core is missing: cd tests/js && npm ci")
    if not shutil.which(CHROMIUM) and not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium is required at {CHROMIUM} (apt-get install chromium)")
    seed(srv)
    t = time.time()
    seed_bulk(srv)
    print(f"bulk seeding: {time.time() - t:.1f} s")
    alice = Jmap(srv.ports["http"], "alice@example.test", "pw-alice")
    attacker = Attacker(f"http://127.0.0.1:{srv.ports['http']}")
    shots = Path(os.environ.get("WEBMAIL_SCREENSHOTS") or tmp_path / "screenshots")
    shots.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, BASE=f"http://127.0.0.1:{srv.ports['http']}", USER="alice@example.test", PASS="pw-alice", BULK=str(BULK),
               ATTACKER=attacker.url, SHOTS=str(shots), CHROMIUM=CHROMIUM, DOWNLOADS=str(tmp_path / "downloads"))
    node = subprocess.Popen(["node", str(JS / "webmail.mjs")], cwd=JS, env=env, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    errors = []
    threading.Thread(target=lambda: errors.extend(node.stderr), daemon=True).start()
    push = PushService()
    ua = UserAgent()
    result = None
    try:
        for line in node.stdout:
            line = line.strip()
            if line == "deliver":
                with smtplib.SMTP("127.0.0.1", srv.ports["smtp"]) as s:
                    s.sendmail("bob@example.test", ["alice@example.test"],
                               msg("Live update arrives", "live@example.test", "Fresh mail.\n"))
                node.stdin.write("delivered\n")
                node.stdin.flush()
            elif line == "push-verification":
                # A subscription whose push service is this test; the
                # verification it receives goes to the page's service worker.
                r = alice.request([["PushSubscription/set", {"create": {"s": {
                    "deviceClientId": "webmail-test", "url": push.url("/push/1"), "keys": ua.keys(), "types": ["Email"]}}}, "p"]],
                    using=["urn:ietf:params:jmap:core"])
                sub_id = r[0][1]["created"]["s"]["id"]
                _, _, body = push.next()
                node.stdin.write(json.dumps(ua.decrypt(body)) + "\n")
                node.stdin.flush()
            elif line == "push-verified?":
                # Verified: the next change is pushed to our push service.
                c = imap(srv, "alice@example.test")
                c.select("INBOX")
                c.store("1", "+FLAGS", "\\Flagged")
                c.logout()
                try:
                    _, _, body = push.next(timeout=10)
                except Exception:
                    raise AssertionError("no StateChange pushed: the service worker did not verify the subscription")
                change = ua.decrypt(body)
                assert change["@type"] == "StateChange", change
                node.stdin.write(json.dumps(change) + "\n")
                node.stdin.flush()
            elif line.startswith("{"):
                result = json.loads(line)
            else:
                print(line)
        node.wait(timeout=240)
    finally:
        if node.poll() is None:
            node.kill()
    log = "".join(errors)
    assert node.returncode == 0 and result, f"browser test failed:\n{log}"
    assert not result["offHost"], f"requests left loopback before images were allowed: {result['offHost']}"
    print(log)

    # Compose with an attachment reached Bob.
    def sent_to_bob(subject):
        for flags, m in messages(srv, "bob@example.test", "INBOX"):
            if str(m["Subject"]) == subject:
                return m
        return None

    hello = wait_for(lambda: sent_to_bob("Webmail hello"), "the composed mail in Bob's INBOX")
    atts = [p for p in hello.iter_attachments()]
    assert [a.get_filename() for a in atts] == ["report.txt"]
    assert atts[0].get_content().replace("\r\n", "\n") == "Quarterly numbers\n" * 20
    assert "Sent from the browser test" in hello.get_body(("plain",)).get_content()
    assert str(hello["From"]).endswith("alice@example.test") or "alice@example.test" in str(hello["From"])

    # The reply threads under the conversation.
    reply = wait_for(lambda: sent_to_bob("Re: Project plan"), "the reply in Bob's INBOX")
    assert reply["In-Reply-To"].strip() == "<plan-2@example.test>"
    assert reply["References"].split() == ["<plan-1@example.test>", "<plan-2@example.test>"]
    assert "> Looks good." in reply.get_body(("plain",)).get_content()
    # Alice's Sent has both, no longer drafts; Drafts is empty.
    sent = messages(srv, "alice@example.test", "Sent")
    assert {"Webmail hello", "Re: Project plan"} <= {str(m["Subject"]) for _, m in sent}
    assert all("$draft" not in f.lower() and "\\draft" not in f.lower() for f, _ in sent)
    assert subjects(srv, "alice@example.test", "Drafts") == []

    # Forwarded as an attachment: the original travels as message/rfc822.
    fwd = wait_for(lambda: sent_to_bob("Fwd: Zoo trip"), "the forward in Bob's INBOX")
    inner = [p for p in fwd.walk() if p.get_content_type() == "message/rfc822"]
    assert len(inner) == 1, [p.get_content_type() for p in fwd.walk()]
    # RFC 2046 §5.2.1: 7bit, 8bit or binary only, never base64.
    cte = (inner[0]["Content-Transfer-Encoding"] or "7bit").lower()
    assert cte in ("7bit", "8bit", "binary"), cte
    original = inner[0].get_payload(0)
    assert str(original["Subject"]) == "Zoo trip" and original["Message-ID"] == "<zoo@example.test>"
    assert "Cc" not in fwd
    assert fwd["References"].split() == ["<zoo@example.test>"]

    # Forwarded inline: the text quoted under a header, the attachment kept.
    inline = wait_for(lambda: sent_to_bob("Fwd: Lunch on Friday"), "the inline forward in Bob's INBOX")
    assert "Forwarded message" in inline.get_body(("plain",)).get_content()
    assert "Noon at the usual place?" in inline.get_body(("plain",)).get_content()
    kept = [a for a in inline.iter_attachments()]
    assert [a.get_filename() for a in kept] == ["notes.txt"] and kept[0].get_content().encode() == NOTES

        # Rich text: an HTML part with the bold text and a plain alternative.
    rich = wait_for(lambda: sent_to_bob("Rich hello"), "the rich text mail in Bob's INBOX")
    html = rich.get_body(("html",)).get_content()
    assert ("<b>" in html or "<strong>" in html) and "Bold words" in html, html
    assert "Bold words" in rich.get_body(("plain",)).get_content()
    assert "<" not in rich.get_body(("plain",)).get_content()

    # Undo send: the held submission was cancelled and nothing reached Bob.
    if "FUTURERELEASE" in json.dumps(alice.session["accounts"][alice.account]["accountCapabilities"]):
        subs = alice.call("EmailSubmission/get", ids=None)["list"]
        assert any(s["undoStatus"] == "canceled" for s in subs), subs
    assert not sent_to_bob("Undo me")

    # Folders: nested and renamed.
    c = imap(srv, "alice@example.test")
    _, boxes = c.list()
    c.logout()
    names = [b.decode().rsplit(" ", 1)[-1].strip('"') for b in boxes]
    assert any(n.startswith("Projects") and n.endswith("Later") and n != "Later" for n in names), names
    assert not any(n.endswith("Scratch") for n in names), names

    # Moved by drag and drop; spam went to Junk and came back as not spam.
    assert subjects(srv, "alice@example.test", "Projects") == ["Lunch on Friday"]
    inbox = {str(m["Subject"]): f for f, m in messages(srv, "alice@example.test", "INBOX")}
    assert "Lunch on Friday" not in inbox
    pills = inbox["Cheap pills"].lower().replace("(", " ").replace(")", " ").split()
    assert "$notjunk" in pills and "$junk" not in pills, pills
    assert subjects(srv, "alice@example.test", "Junk") == []
    # Keyboard: e archived one, # deleted one (seen in Trash, then emptied).
    assert result["archived"] in subjects(srv, "alice@example.test", "Archive")
    assert subjects(srv, "alice@example.test", "Trash") == []
    assert result["archived"] not in inbox and result["deleted"] not in inbox
    assert "\\flagged" in inbox[result["flagged"]].lower(), inbox[result["flagged"]]

    # Settings: the responder is on; the app password logs in over IMAP.
    [(_, got, _)] = alice.request([["VacationResponse/get", {"accountId": alice.account, "ids": ["singleton"]}, "v"]],
                                  using=["urn:ietf:params:jmap:core", "urn:ietf:params:jmap:vacationresponse"])
    vac = got["list"][0]
    assert vac["isEnabled"] and vac["subject"] == "Away until Monday" and vac["textBody"] == "I am away."
    c = imaplib.IMAP4("127.0.0.1", srv.ports["imap"])
    c.login("alice@example.test", result["appPassword"])
    c.logout()

    if result.get("identitySaved"):
        ident = alice.call("Identity/get", ids=None)["list"][0]
        assert ident["name"] == "Alice Example" and ident["textSignature"] == "Alice, from the browser test"

    # The cross-origin forms changed nothing.
    names = [m["name"] for m in alice.call("Mailbox/get", ids=None)["list"]]
    assert "Hacked" not in names
    assert result["csrf"] == {"api": 403, "login": 403}
