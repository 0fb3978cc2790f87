"""COMPRESS=DEFLATE (RFC 4978) end to end: a Python zlib client with exact
responses, and npm imapflow, which negotiates COMPRESS, CONDSTORE and
QRESYNC when offered, fetching, changing flags and resynchronising over
the compressed stream."""

import json
import shutil
import subprocess
import zlib
from pathlib import Path

import pytest

from test_imap import PW, USER, Raw, msg

JS = Path(__file__).resolve().parent / "js"


@pytest.fixture
def srv(server_factory):
    s = server_factory("[auth]\nfailure_delay_ms = 10")
    s.cli.add_user(USER, PW)
    for i in range(1, 7):
        s.cli.deliver(USER, msg(i, "lorem ipsum dolor sit amet " * 200))
    return s.start()


class Deflate:
    """A client's side of RFC 4978: raw DEFLATE, a sync flush per command."""

    def __init__(self, raw):
        self.raw = raw
        self.c = zlib.compressobj(6, zlib.DEFLATED, -15)
        self.d = zlib.decompressobj(-15)
        self.buf = b""
        self.wire_in = 0

    def send(self, text):
        data = self.c.compress(text.encode()) + self.c.flush(zlib.Z_SYNC_FLUSH)
        self.raw.sock.sendall(data)

    def line(self):
        while b"\r\n" not in self.buf:
            chunk = self.raw.sock.recv(65536)
            assert chunk, "connection closed"
            self.wire_in += len(chunk)
            self.buf += self.d.decompress(chunk)
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line + b"\r\n"

    def read(self, n):
        while len(self.buf) < n:
            chunk = self.raw.sock.recv(65536)
            assert chunk
            self.wire_in += len(chunk)
            self.buf += self.d.decompress(chunk)
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def cmd(self, tag, text):
        self.send(f"{tag} {text}\r\n")
        out = []
        while True:
            line = self.line()
            out.append(line)
            if line.endswith(b"}\r\n"):
                n = int(line[line.rindex(b"{") + 1 : -3])
                out.append(self.read(n))
            if line.startswith(tag.encode() + b" "):
                return out


def test_compress_with_a_zlib_client(srv):
    r = Raw(srv.ports["imap"])
    assert r.cmd("c0", "COMPRESS DEFLATE")[-1].startswith(b"c0 BAD")  # before login
    assert r.cmd("l", f"LOGIN {USER} {PW}")[-1].startswith(b"l OK")
    assert b"COMPRESS=DEFLATE" in r.cmd("c", "CAPABILITY")[0]
    assert r.cmd("c1", "COMPRESS GZIP")[-1].startswith(b"c1 BAD")
    # The OK is the last thing sent uncompressed (the file buffer is bypassed from here).
    r.sock.sendall(b"c2 COMPRESS DEFLATE\r\n")
    ok = b""
    while not ok.endswith(b"\r\n"):
        ok += r.sock.recv(1)
    assert ok == b"c2 OK DEFLATE active\r\n"
    z = Deflate(r)
    assert z.cmd("c3", "COMPRESS DEFLATE") == [b"c3 NO [COMPRESSIONACTIVE] DEFLATE is already on\r\n"]
    out = z.cmd("s", "SELECT INBOX")
    assert b"* 6 EXISTS\r\n" in out and out[-1].startswith(b"s OK [READ-WRITE]")
    out = z.cmd("f", "FETCH 1:* BODY.PEEK[]")
    bodies = [x for x in out if isinstance(x, bytes) and x.startswith(b"From: sender")]
    assert len(bodies) == 6 and all(b"lorem ipsum" in b for b in bodies)
    raw_size = sum(len(b) for b in bodies)
    assert z.wire_in < raw_size / 5, (z.wire_in, raw_size)  # repetitive text compresses well
    # IDLE (where the server drops its zlib state) and back: still in sync.
    z.send("i IDLE\r\n")
    assert z.line() == b"+ idling\r\n"
    srv.cli.deliver(USER, msg(7))
    assert z.line() == b"* 7 EXISTS\r\n"
    z.send("DONE\r\n")
    while not z.line().startswith(b"i OK"):
        pass
    out = z.cmd("f2", "FETCH 7 (BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert b"Subject: message 7" in b"".join(out)
    assert z.cmd("n", "NOOP")[-1] == b"n OK NOOP completed\r\n"
    z.send("bye LOGOUT\r\n")
    assert z.line() == b"* BYE logging out\r\n"
    r.close()


def test_imapflow_negotiates_compress_condstore_qresync(srv):
    # scripts/test.sh installs tests/js (npm ci); a missing client is a failure.
    assert shutil.which("node") and (JS / "node_modules" / "imapflow").exists(), "run npm ci in tests/js"
    p = subprocess.run(
        ["node", str(JS / "imapflow.mjs"), str(srv.ports["imap"]), USER, PW],
        capture_output=True, text=True, timeout=120,
    )
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout.strip().splitlines()[-1])
    assert out["compressed"] is True
    assert {"CONDSTORE", "QRESYNC"} <= set(out["enabled"])
    assert out["exists"] == 6 and out["fetched"] == 6 and out["sourceBytes"] > 6 * 5000
    top = int(out["highestModseq"])
    # CHANGEDSINCE saw exactly the two flagged messages, with newer MODSEQs.
    assert [c["uid"] for c in out["changed"]] == [1, 2]
    assert all(c["flags"] == ["$Work", "\\Seen"] and int(c["modseq"]) > top for c in out["changed"])
    assert out["status"]["messages"] == 5 and int(out["status"]["highestModseq"]) > top
    # The other session's expunge came as VANISHED (QRESYNC), by UID.
    assert out["vanishedEvents"] == [{"uid": 4, "vanished": True, "seq": None}], out["vanishedEvents"]
    assert out["search"] == [1, 2]
