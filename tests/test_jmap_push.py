"""JMAP PushSubscription (RFC 8620 §7.2) delivered as Web Push: a push
service on loopback (Python's http.server) receives the PushVerification
and, once verified, a StateChange for mail that arrives over SMTP. Payloads
are decrypted here per RFC 8291 (aes128gcm) and the VAPID signature
(RFC 8292) checked against the Session's applicationServerKey (RFC 9749),
both with Python's `cryptography`. A 410 from the push service removes the
subscription."""

import base64
import http.server
import json
import os
import queue
import smtplib
import threading

import pytest
from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF, HKDFExpand
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from test_jmap import Jmap, MESSAGE

CORE = "urn:ietf:params:jmap:core"


def b64d(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def b64e(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


class PushService:
    """Records every POST; answers 410 under /gone/, 201 otherwise."""

    def __init__(self):
        self.received = queue.Queue()
        service = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                service.received.put((self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(410 if self.path.startswith("/gone/") else 201)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def next(self, timeout=10):
        return self.received.get(timeout=timeout)


class UserAgent:
    """The browser's side of RFC 8291: a P-256 key pair and an auth secret."""

    def __init__(self):
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.public = self.key.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
        self.auth = os.urandom(16)

    def keys(self):
        return {"p256dh": b64e(self.public), "auth": b64e(self.auth)}

    def decrypt(self, body):
        """RFC 8291 §3.4 and RFC 8188 §2 (one record)."""
        salt, rs, idlen = body[:16], int.from_bytes(body[16:20], "big"), body[20]
        as_public = body[21:21 + idlen]
        ciphertext = body[21 + idlen:]
        assert len(ciphertext) <= rs
        peer = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), as_public)
        shared = self.key.exchange(ec.ECDH(), peer)
        info = b"WebPush: info\x00" + self.public + as_public
        ikm = HKDF(hashes.SHA256(), 32, salt=self.auth, info=info).derive(shared)
        h = hmac.HMAC(salt, hashes.SHA256())
        h.update(ikm)
        prk = h.finalize()
        cek = HKDFExpand(hashes.SHA256(), 16, b"Content-Encoding: aes128gcm\x00").derive(prk)
        nonce = HKDFExpand(hashes.SHA256(), 12, b"Content-Encoding: nonce\x00").derive(prk)
        plain = AESGCM(cek).decrypt(nonce, ciphertext, None).rstrip(b"\x00")
        assert plain.endswith(b"\x02"), "last record delimiter"
        return json.loads(plain[:-1])


def check_vapid(headers, server_key):
    """RFC 8292 §3: `vapid t=<JWT>, k=<key>`, the JWT signed by that key."""
    auth = headers["authorization"]
    assert auth.startswith("vapid ")
    params = dict(p.strip().split("=", 1) for p in auth[len("vapid "):].split(","))
    assert params["k"] == server_key
    head, claims, sig = params["t"].split(".")
    assert json.loads(b64d(head))["alg"] == "ES256"
    c = json.loads(b64d(claims))
    assert c["aud"].startswith("http://127.0.0.1") and c["sub"].startswith("mailto:")
    raw = b64d(sig)
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    pub = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b64d(server_key))
    pub.verify(der, f"{head}.{claims}".encode(), ec.ECDSA(hashes.SHA256()))


@pytest.fixture
def srv(server_factory):
    s = server_factory().start()
    s.cli.add_user("alice@example.test", "pw-alice")
    return s


def call(j, method, **args):
    [(name, res, _)] = j.request([[method, args, "p"]], using=[CORE])
    assert name == method, res
    return res


def test_push_subscription_verification_and_state_changes(srv):
    alice = Jmap(srv.ports["http"], "alice@example.test", "pw-alice")
    server_key = alice.session["capabilities"]["urn:ietf:params:jmap:webpush-vapid"]["applicationServerKey"]
    assert len(b64d(server_key)) == 65
    push = PushService()
    ua = UserAgent()
    r = call(alice, "PushSubscription/set", create={"s": {
        "deviceClientId": "test-device", "url": push.url("/push/1"), "keys": ua.keys(), "types": ["Email"]}})
    sub = r["created"]["s"]
    assert "accountId" not in r and "oldState" not in r

    path, headers, body = push.next()
    assert path == "/push/1" and headers["content-encoding"] == "aes128gcm" and int(headers["ttl"]) > 0
    check_vapid(headers, server_key)
    verification = ua.decrypt(body)
    assert verification["@type"] == "PushVerification" and verification["pushSubscriptionId"] == sub["id"]

    # Nothing else is pushed until the client proves it got the code.
    with smtplib.SMTP("127.0.0.1", srv.ports["smtp"]) as s:
        s.sendmail("bob@example.test", ["alice@example.test"], MESSAGE.encode())
    with pytest.raises(queue.Empty):
        push.next(timeout=1.5)
    r = call(alice, "PushSubscription/set", update={sub["id"]: {"verificationCode": "guess"}})
    assert r["notUpdated"][sub["id"]]["type"] == "invalidProperties"
    r = call(alice, "PushSubscription/set", update={sub["id"]: {"verificationCode": verification["verificationCode"]}})
    assert sub["id"] in r["updated"]

    with smtplib.SMTP("127.0.0.1", srv.ports["smtp"]) as s:
        s.sendmail("bob@example.test", ["alice@example.test"], MESSAGE.replace("lunch-1", "lunch-2").encode())
    path, headers, body = push.next()
    change = ua.decrypt(body)
    assert change["@type"] == "StateChange"
    assert list(change["changed"][alice.account]) == ["Email"], change
    check_vapid(headers, server_key)

    got = call(alice, "PushSubscription/get", ids=None)
    [s] = got["list"]
    assert s["id"] == sub["id"] and s["deviceClientId"] == "test-device" and s["types"] == ["Email"]
    assert "url" not in s and "keys" not in s
    r = alice.request([["PushSubscription/get", {"properties": ["url"]}, "g"]], using=[CORE])
    assert r[0][1]["type"] == "forbidden"


def test_push_subscription_input_and_gone_endpoints(srv):
    alice = Jmap(srv.ports["http"], "alice@example.test", "pw-alice")
    push = PushService()
    bad = [
        {"deviceClientId": "d", "url": "ftp://127.0.0.1/x"},
        {"deviceClientId": "d", "url": "http://example.net/push"},  # plain http leaves loopback
        {"deviceClientId": "d", "url": push.url("/p"), "keys": {"p256dh": "short", "auth": "x"}},
        {"deviceClientId": "d", "url": push.url("/p"), "verificationCode": "mine"},
        {"url": push.url("/p")},
    ]
    r = call(alice, "PushSubscription/set", create={str(i): b for i, b in enumerate(bad)})
    assert set(r["notCreated"]) == {str(i) for i in range(len(bad))}, r
    assert all(e["type"] == "invalidProperties" for e in r["notCreated"].values())
    # A push service that answers 410 Gone ends the subscription (RFC 8030 §7.3).
    r = call(alice, "PushSubscription/set", create={"g": {"deviceClientId": "d2", "url": push.url("/gone/1")}})
    assert "g" in r["created"]
    path, headers, body = push.next()
    assert path == "/gone/1" and json.loads(body)["@type"] == "PushVerification"  # no keys: plain JSON
    deadline = 50
    while call(alice, "PushSubscription/get")["list"] and deadline:
        deadline -= 1
        threading.Event().wait(0.1)
    assert call(alice, "PushSubscription/get")["list"] == []
