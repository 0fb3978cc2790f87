"""JMAP over WebSocket (RFC 8887) with Python's `websockets` client:
discovery in the Session, the jmap subprotocol, requests answered with
their requestId, request-level errors, push of StateChange with pushState
(and catching up from an old pushState), binary frames refused, and
authentication required. Delivery comes over SMTP (smtplib)."""

import base64
import json
import smtplib

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from test_jmap import Jmap, MESSAGE


@pytest.fixture
def srv(server_factory):
    s = server_factory().start()
    s.cli.add_user("alice@example.test", "pw-alice")
    return s


def ws_connect(srv, password="pw-alice", subprotocols=("jmap",)):
    auth = "Basic " + base64.b64encode(f"alice@example.test:{password}".encode()).decode()
    return connect(f"ws://127.0.0.1:{srv.ports['http']}/jmap/ws", additional_headers={"Authorization": auth},
                   subprotocols=list(subprotocols), open_timeout=10)


def recv(ws):
    return json.loads(ws.recv(timeout=10))


def deliver(srv):
    with smtplib.SMTP("127.0.0.1", srv.ports["smtp"]) as s:
        s.sendmail("bob@example.test", ["alice@example.test"], MESSAGE.encode())


def test_websocket_requests_and_push(srv):
    alice = Jmap(srv.ports["http"], "alice@example.test", "pw-alice")
    cap = alice.session["capabilities"]["urn:ietf:params:jmap:websocket"]
    assert cap == {"url": f"ws://127.0.0.1:{srv.ports['http']}/jmap/ws", "supportsPush": True}
    with ws_connect(srv) as ws:
        assert ws.subprotocol == "jmap"
        ws.send(json.dumps({"@type": "Request", "id": "r1", "using": ["urn:ietf:params:jmap:core"],
                            "methodCalls": [["Core/echo", {"hello": "ws"}, "c1"]]}))
        r = recv(ws)
        assert r["@type"] == "Response" and r["requestId"] == "r1"
        assert r["methodResponses"] == [["Core/echo", {"hello": "ws"}, "c1"]]
        ws.send(json.dumps({"@type": "Request", "id": "r2", "using": ["urn:x:nope"], "methodCalls": []}))
        e = recv(ws)
        assert e["@type"] == "RequestError" and e["requestId"] == "r2"
        assert e["type"] == "urn:ietf:params:jmap:error:unknownCapability"
        ws.send("not json")
        assert recv(ws)["type"] == "urn:ietf:params:jmap:error:notJSON"

        ws.send(json.dumps({"@type": "WebSocketPushEnable", "dataTypes": ["Email"]}))
        deliver(srv)
        push = recv(ws)
        assert push["@type"] == "StateChange" and list(push["changed"][alice.account]) == ["Email"]
        old_push_state = push["pushState"]
        ws.send(json.dumps({"@type": "WebSocketPushDisable"}))

    # Reconnecting with an old pushState brings what changed meanwhile.
    deliver(srv)
    with ws_connect(srv) as ws:
        ws.send(json.dumps({"@type": "WebSocketPushEnable", "dataTypes": None, "pushState": old_push_state}))
        push = recv(ws)
        assert "Email" in push["changed"][alice.account] and push["pushState"] != old_push_state
        # Binary frames are not JMAP: the server closes with 1003.
        ws.send(b"\x00\x01")
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)
        assert closed.value.rcvd.code == 1003


def test_websocket_needs_credentials_and_the_subprotocol(srv):
    with pytest.raises(InvalidStatus) as e:
        ws_connect(srv, password="wrong")
    assert e.value.response.status_code == 401
    with pytest.raises(InvalidStatus) as e:
        ws_connect(srv, subprotocols=("chat",))
    assert e.value.response.status_code == 400
