"""OAuth 2.0 (RFC 6749 authorization code + RFC 7636 PKCE, refresh,
RFC 7009 revocation, RFC 8414 metadata) with a scripted client, the tokens
used over JMAP (Bearer), IMAP/POP3/SMTP SASL OAUTHBEARER and XOAUTH2; app
passwords from the CLI and the API on every protocol. Clients: Python's
http.client, imaplib, poplib, smtplib."""

import base64
import hashlib
import http.client
import imaplib
import json
import poplib
import re
import secrets
import smtplib
import urllib.parse

import pytest

from test_jmap import srv  # noqa: F401 (the fixture: alice and bob)

REDIRECT = "http://127.0.0.1:9/callback"




def request(srv, method, path, body=None, headers=None):
    c = http.client.HTTPConnection("127.0.0.1", srv.ports["http"], timeout=30)
    h = dict(headers or {})
    if isinstance(body, dict):
        body = urllib.parse.urlencode(body)
        h.setdefault("Content-Type", "application/x-www-form-urlencoded")
    c.request(method, path, body=body, headers=h)
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, r.headers, data


def pkce():
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def hidden_fields(html):
    return dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', html))


def authorize(srv, user, password, challenge, state="st-1", client="test-client", action="allow"):
    """Run the login page as a browser would; returns the redirect's query."""
    q = urllib.parse.urlencode(
        {
            "response_type": "code",
            "client_id": client,
            "redirect_uri": REDIRECT,
            "state": state,
            "scope": "mail",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
    )
    status, headers, body = request(srv, "GET", "/oauth/authorize?" + q)
    assert status == 200, body
    csp = headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp and "script" not in csp
    html = body.decode()
    assert "<script" not in html and client in html
    cookie = headers["Set-Cookie"].split(";")[0]
    assert "HttpOnly" in headers["Set-Cookie"] and "SameSite=Strict" in headers["Set-Cookie"]
    form = hidden_fields(html)
    form.update(username=user, password=password, action=action)
    status, headers, body = request(srv, "POST", "/oauth/authorize", form, {"Cookie": cookie})
    return status, headers, body


def redirect_query(headers):
    loc = headers["Location"]
    assert loc.startswith(REDIRECT + "?"), loc
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(loc).query))


def token(srv, **form):
    status, headers, body = request(srv, "POST", "/oauth/token", form)
    assert headers["Cache-Control"] == "no-store"
    return status, json.loads(body)


def login(srv, user="alice@example.test", password="pw-alice"):
    verifier, challenge = pkce()
    status, headers, _ = authorize(srv, user, password, challenge)
    assert status == 303
    q = redirect_query(headers)
    status, t = exchange(srv, q["code"], verifier)
    assert status == 200, t
    return t


def exchange(srv, code, verifier, redirect_uri=REDIRECT):
    """RFC 6749 §4.1.3 with the RFC 7636 §4.5 verifier."""
    return token(
        srv,
        grant_type="authorization_code",
        code=code,
        redirect_uri=redirect_uri,
        client_id="test-client",
        code_verifier=verifier,
    )


def jmap_session(srv, access_token):
    return request(srv, "GET", "/jmap/session", headers={"Authorization": f"Bearer {access_token}"})


def oauthbearer(user, tok):
    return f"n,a={user},\x01host=127.0.0.1\x01port=143\x01auth=Bearer {tok}\x01\x01".encode()


def xoauth2(user, tok):
    return f"user={user}\x01auth=Bearer {tok}\x01\x01".encode()


def test_metadata_rfc8414(srv):
    status, _, body = request(srv, "GET", "/.well-known/oauth-authorization-server")
    assert status == 200
    m = json.loads(body)
    base = f"http://127.0.0.1:{srv.ports['http']}"
    assert m["issuer"] == base
    assert m["authorization_endpoint"] == base + "/oauth/authorize"
    assert m["token_endpoint"] == base + "/oauth/token"
    assert m["revocation_endpoint"] == base + "/oauth/revoke"
    assert m["code_challenge_methods_supported"] == ["S256"]
    assert "refresh_token" in m["grant_types_supported"]


def test_code_flow_with_pkce_then_jmap_and_imap(srv):
    verifier, challenge = pkce()
    status, headers, _ = authorize(srv, "alice@example.test", "pw-alice", challenge)
    assert status == 303
    q = redirect_query(headers)
    base = f"http://127.0.0.1:{srv.ports['http']}"
    assert q["state"] == "st-1" and q["iss"] == base and q["code"]

    # A wrong verifier does not get tokens (RFC 7636 §4.6)...
    status, err = exchange(srv, q["code"], "x" * 50)
    assert status == 400 and err["error"] == "invalid_grant"
    # ...nor a different redirect_uri (RFC 6749 §4.1.3).
    status, err = exchange(srv, q["code"], verifier, "http://127.0.0.1:9/other")
    assert status == 400 and err["error"] == "invalid_grant"
    status, t = exchange(srv, q["code"], verifier)
    assert status == 200, t
    assert t["token_type"] == "Bearer" and t["expires_in"] > 0 and t["refresh_token"]

    status, _, body = jmap_session(srv, t["access_token"])
    assert status == 200 and json.loads(body)["username"] == "alice@example.test"

    imap = imaplib.IMAP4("127.0.0.1", srv.ports["imap"])
    assert "AUTH=OAUTHBEARER" in imap.capabilities and "AUTH=XOAUTH2" in imap.capabilities
    typ, _ = imap.authenticate("OAUTHBEARER", lambda _: oauthbearer("alice@example.test", t["access_token"]))
    assert typ == "OK"
    assert imap.select("INBOX")[0] == "OK"
    imap.logout()
    imap = imaplib.IMAP4("127.0.0.1", srv.ports["imap"])
    assert imap.authenticate("XOAUTH2", lambda _: xoauth2("alice@example.test", t["access_token"]))[0] == "OK"
    imap.logout()

    # The code was spent: using it again revokes the grant (RFC 6749 §4.1.2).
    status, err = exchange(srv, q["code"], verifier)
    assert status == 400 and err["error"] == "invalid_grant"
    assert jmap_session(srv, t["access_token"])[0] == 401


def test_refresh_rotation_and_revocation(srv):
    t = login(srv)
    status, t2 = token(srv, grant_type="refresh_token", refresh_token=t["refresh_token"], client_id="test-client")
    assert status == 200, t2
    assert t2["access_token"] != t["access_token"] and t2["refresh_token"] != t["refresh_token"]
    # The old access token went with its refresh token; the new one works.
    assert jmap_session(srv, t["access_token"])[0] == 401
    assert jmap_session(srv, t2["access_token"])[0] == 200
    # Another client cannot use it.
    status, err = token(srv, grant_type="refresh_token", refresh_token=t2["refresh_token"], client_id="other")
    assert status == 400 and err["error"] == "invalid_grant"

    # Revocation (RFC 7009): 200, and nothing of the grant works any more.
    status, _, _ = request(srv, "POST", "/oauth/revoke", {"token": t2["refresh_token"]})
    assert status == 200
    status, headers, _ = jmap_session(srv, t2["access_token"])
    assert status == 401 and 'error="invalid_token"' in headers["WWW-Authenticate"]
    status, err = token(srv, grant_type="refresh_token", refresh_token=t2["refresh_token"])
    assert status == 400 and err["error"] == "invalid_grant"
    # Unknown tokens are not an error (RFC 7009 §2.2).
    assert request(srv, "POST", "/oauth/revoke", {"token": "nonsense"})[0] == 200

    imap = imaplib.IMAP4("127.0.0.1", srv.ports["imap"])
    with pytest.raises(imaplib.IMAP4.error):
        imap.authenticate("OAUTHBEARER", lambda _: oauthbearer("alice@example.test", t2["access_token"]))
    imap.logout()


def test_refresh_token_replay_revokes_the_grant(srv):
    t = login(srv)
    status, t2 = token(srv, grant_type="refresh_token", refresh_token=t["refresh_token"])
    assert status == 200
    status, err = token(srv, grant_type="refresh_token", refresh_token=t["refresh_token"])
    assert status == 400 and err["error"] == "invalid_grant"
    assert jmap_session(srv, t2["access_token"])[0] == 401


def test_login_page_refusals(srv):
    verifier, challenge = pkce()
    # Wrong password: the page again, with an error, and no redirect.
    status, headers, body = authorize(srv, "alice@example.test", "wrong", challenge)
    assert status == 401 and "Location" not in headers and b"Wrong email address or password" in body
    # Denied by the user: back to the client with access_denied.
    status, headers, _ = authorize(srv, "alice@example.test", "", challenge, action="deny")
    assert status == 303 and redirect_query(headers)["error"] == "access_denied"
    # No PKCE: refused back to the client.
    q = urllib.parse.urlencode({"response_type": "code", "client_id": "c", "redirect_uri": REDIRECT})
    status, headers, _ = request(srv, "GET", "/oauth/authorize?" + q)
    assert status == 303 and redirect_query(headers)["error"] == "invalid_request"
    # A redirect to a non-loopback http address is never followed.
    q = urllib.parse.urlencode(
        {
            "response_type": "code",
            "client_id": "c",
            "redirect_uri": "http://evil.example/cb",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
    )
    status, headers, _ = request(srv, "GET", "/oauth/authorize?" + q)
    assert status == 400 and "Location" not in headers
    # A POST without the CSRF cookie is refused.
    status, _, _ = request(
        srv,
        "POST",
        "/oauth/authorize",
        {
            "response_type": "code",
            "client_id": "c",
            "redirect_uri": REDIRECT,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            "csrf": "a" * 43,
            "username": "alice@example.test",
            "password": "pw-alice",
        },
    )
    assert status == 403
    status, err = token(srv, grant_type="password", username="alice@example.test", password="pw-alice")
    assert status == 400 and err["error"] == "unsupported_grant_type"


def test_bearer_on_pop3_and_smtp_and_wrong_user(srv):
    t = login(srv)
    tok = t["access_token"]
    pop = poplib.POP3("127.0.0.1", srv.ports["pop3"])
    assert "OAUTHBEARER" in pop.capa()["SASL"]
    resp = pop._shortcmd("AUTH XOAUTH2 " + base64.b64encode(xoauth2("alice@example.test", tok)).decode())
    assert resp.startswith(b"+OK"), resp
    pop.quit()

    smtp = smtplib.SMTP("127.0.0.1", srv.ports["submission"])
    smtp.ehlo()
    assert "OAUTHBEARER" in smtp.esmtp_features["auth"]
    code, _ = smtp.docmd("AUTH", "OAUTHBEARER " + base64.b64encode(oauthbearer("alice@example.test", tok)).decode())
    assert code == 235
    smtp.quit()

    # The token is alice's: naming bob fails, with RFC 7628's error challenge first.
    smtp = smtplib.SMTP("127.0.0.1", srv.ports["submission"])
    smtp.ehlo()
    code, msg = smtp.docmd("AUTH", "OAUTHBEARER " + base64.b64encode(oauthbearer("bob@example.test", tok)).decode())
    assert code == 334 and b"invalid_token" in base64.b64decode(msg)
    code, _ = smtp.docmd("AQ==")
    assert code == 535
    smtp.quit()


def app_password_from_cli(srv, user, name):
    out = srv.cli.run("user", "app-password", "add", user, name, check=True).stdout
    return re.search(r"([a-z]{4}(?:-[a-z]{4}){4})", out).group(1)


def test_app_passwords_on_every_protocol_and_revocation(srv):
    pw = app_password_from_cli(srv, "alice@example.test", "phone")
    imap = imaplib.IMAP4("127.0.0.1", srv.ports["imap"])
    assert imap.login("alice@example.test", pw)[0] == "OK"
    imap.logout()
    pop = poplib.POP3("127.0.0.1", srv.ports["pop3"])
    pop.user("alice@example.test")
    assert pop.pass_(pw.upper().replace("-", " ")).startswith(b"+OK")
    pop.quit()
    smtp = smtplib.SMTP("127.0.0.1", srv.ports["submission"])
    smtp.login("alice@example.test", pw)
    smtp.quit()
    basic = "Basic " + base64.b64encode(f"alice@example.test:{pw}".encode()).decode()
    assert request(srv, "GET", "/jmap/session", headers={"Authorization": basic})[0] == 200
    # Not bob's.
    imap = imaplib.IMAP4("127.0.0.1", srv.ports["imap"])
    with pytest.raises(imaplib.IMAP4.error):
        imap.login("bob@example.test", pw)
    imap.logout()

    listing = srv.cli.run("user", "app-password", "list", "alice@example.test", check=True).stdout
    assert "phone" in listing and pw not in listing
    pid = re.search(r"^\s*(\d+)\s+\S+\s+phone$", listing, re.M).group(1)
    srv.cli.run("user", "app-password", "remove", "alice@example.test", pid, check=True)
    imap = imaplib.IMAP4("127.0.0.1", srv.ports["imap"])
    with pytest.raises(imaplib.IMAP4.error):
        imap.login("alice@example.test", pw)
    imap.logout()
    # The account password still works.
    imap = imaplib.IMAP4("127.0.0.1", srv.ports["imap"])
    assert imap.login("alice@example.test", "pw-alice")[0] == "OK"
    imap.logout()

    # A new account password revokes every app password and OAuth grant.
    pw2 = app_password_from_cli(srv, "alice@example.test", "tablet")
    t = login(srv)
    srv.cli.run("user", "passwd", "alice@example.test", input="pw-new\n", check=True)
    imap = imaplib.IMAP4("127.0.0.1", srv.ports["imap"])
    with pytest.raises(imaplib.IMAP4.error):
        imap.login("alice@example.test", pw2)
    imap.logout()
    assert jmap_session(srv, t["access_token"])[0] == 401


def test_app_password_and_grant_api(srv):
    basic = {"Authorization": "Basic " + base64.b64encode(b"alice@example.test:pw-alice").decode()}
    status, _, body = request(
        srv, "POST", "/api/app-passwords", json.dumps({"name": "laptop"}), {**basic, "Content-Type": "application/json"}
    )
    assert status == 201, body
    created = json.loads(body)
    assert created["name"] == "laptop" and re.fullmatch(r"[a-z]{4}(-[a-z]{4}){4}", created["password"])
    status, _, body = request(srv, "GET", "/api/app-passwords", headers=basic)
    assert [p["name"] for p in json.loads(body)] == ["laptop"] and created["password"].encode() not in body
    smtp = smtplib.SMTP("127.0.0.1", srv.ports["submission"])
    smtp.login("alice@example.test", created["password"])
    smtp.quit()
    bob = {"Authorization": "Basic " + base64.b64encode(b"bob@example.test:pw-bob").decode()}
    assert request(srv, "DELETE", f"/api/app-passwords/{created['id']}", headers=bob)[0] == 404
    assert request(srv, "DELETE", f"/api/app-passwords/{created['id']}", headers=basic)[0] == 204
    via_app = {"Authorization": "Basic " + base64.b64encode(f"alice@example.test:{created['password']}".encode()).decode()}
    assert request(srv, "GET", "/jmap/session", headers=via_app)[0] == 401

    # Connected applications, listed and revoked.
    t = login(srv)
    bearer = {"Authorization": f"Bearer {t['access_token']}"}
    status, _, body = request(srv, "GET", "/api/grants", headers=bearer)
    grants = json.loads(body)
    assert [g["clientId"] for g in grants] == ["test-client"]
    assert json.loads(request(srv, "GET", "/api/grants", headers=bob)[2]) == []
    assert request(srv, "DELETE", f"/api/grants/{grants[0]['id']}", headers=basic)[0] == 204
    assert jmap_session(srv, t["access_token"])[0] == 401
