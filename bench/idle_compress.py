#!/usr/bin/env python3
"""Hold N IMAP connections in IDLE with COMPRESS=DEFLATE on (RFC 4978) and
report what they cost the server: the server's resident set before and
after, per connection. A benchmark, not a test (bench/README.md).

usage: bench/idle_compress.py PORT PID USER PASSWORD [N] [--plain]

PORT is the server's IMAP port, PID its process (for /proc/PID/status),
USER/PASSWORD an account with an INBOX. --plain holds the same
connections without COMPRESS, for the comparison.
"""

import selectors
import socket
import sys
import time
import zlib


def rss_kb(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


class Conn:
    def __init__(self, port, user, password, compress):
        self.s = socket.create_connection(("127.0.0.1", port))
        self.f = self.s.makefile("rb")
        self.f.readline()
        self.s.sendall(f'l LOGIN "{user}" "{password}"\r\n'.encode())
        ok = self.until(b"l ")
        assert ok.startswith(b"l OK"), ok
        self.c = self.d = None
        if compress:
            self.s.sendall(b"z COMPRESS DEFLATE\r\n")
            ok = b""
            while not ok.endswith(b"\r\n"):
                ok += self.s.recv(1)
            assert ok.startswith(b"z OK"), ok
            # The smallest client-side state zlib allows: the bench
            # measures the server, not itself.
            self.c = zlib.compressobj(1, zlib.DEFLATED, -15, 1)
            self.d = zlib.decompressobj(-15)
            self.f = None
        self.buf = b""
        self.cmd(b"s SELECT INBOX\r\n", b"s ")
        self.send(b"i IDLE\r\n")
        self.line_until(b"+ ")

    def until(self, prefix):
        while True:
            line = self.f.readline()
            assert line, "closed"
            if line.startswith(prefix):
                return line

    def send(self, data):
        if self.c:
            data = self.c.compress(data) + self.c.flush(zlib.Z_SYNC_FLUSH)
        self.s.sendall(data)

    def line_until(self, prefix):
        if not self.d:
            return self.until(prefix)
        while True:
            while b"\r\n" not in self.buf:
                chunk = self.s.recv(65536)
                assert chunk, "closed"
                self.buf += self.d.decompress(chunk)
            line, self.buf = self.buf.split(b"\r\n", 1)
            if line.startswith(prefix):
                return line

    def cmd(self, data, prefix):
        self.send(data)
        return self.line_until(prefix)


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    plain = "--plain" in sys.argv
    port, pid, user, password = int(args[0]), int(args[1]), args[2], args[3]
    n = int(args[4]) if len(args) > 4 else 1000
    before = rss_kb(pid)
    t = time.time()
    conns = []
    for i in range(n):
        conns.append(Conn(port, user, password, not plain))
        if (i + 1) % 500 == 0:
            print(f"{i + 1} idling", file=sys.stderr)
    time.sleep(2)
    after = rss_kb(pid)
    mode = "plain" if plain else "COMPRESS=DEFLATE"
    print(
        f"{n} IDLE connections ({mode}) opened in {time.time() - t:.1f}s: server RSS {before / 1024:.1f} -> "
        f"{after / 1024:.1f} MiB, {(after - before) / n:.1f} KiB per connection"
    )
    for c in conns:
        c.s.close()


if __name__ == "__main__":
    main()
