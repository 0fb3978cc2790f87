"""Test peers for outbound delivery: a scriptable SMTP server and a small
authoritative DNS server, each running in a background thread.

    with ScriptedSmtp(rcpt_reply=lambda addr: (451, "4.3.0 try later")) as peer:
        ...                                  # point the server under test at peer.port
        peer.rcpt_reply = (550, "5.1.1 no such user")   # change the script while running
        peer.wait_for(1, timeout=30)

    with DnsServer({"b.test": {"MX": [(10, "mx1.b.test")]}, "mx1.b.test": {"A": ["127.0.0.2"]}}) as dns:
        ...                                  # dns.port answers on UDP and TCP

Replies are `(code, text)` tuples, or callables returning one (callables run
in a worker thread, so they may block, e.g. `time.sleep`, without stalling
other connections). A text with newlines becomes a multi-line reply. A reply
of `None` (`DROP`) closes the connection without answering; a 421 reply closes
it after answering.
"""

import asyncio
import base64
import re
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import dnslib
from dnslib.server import BaseResolver, DNSLogger
from dnslib.server import DNSServer as _DnslibServer

DROP = None

DEFAULT_EXTENSIONS = ["PIPELINING", "SIZE 52428800", "8BITMIME", "SMTPUTF8", "DSN", "ENHANCEDSTATUSCODES"]


def make_self_signed(directory, cn="localhost", sans=("DNS:localhost", "IP:127.0.0.1")):
    """Create cert.pem/key.pem (EC P-256, self-signed) in `directory` with the openssl CLI."""
    directory = Path(directory)
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", f"/CN={cn}",
         "-addext", "subjectAltName=" + ",".join(sans)],
        check=True, capture_output=True, timeout=60,
    )
    return cert, key


def _parse_params(rest):
    """ESMTP parameters `KEY=VALUE KEY` -> dict (keys upper-cased, value None when absent)."""
    params = {}
    for p in rest.split():
        k, _, v = p.partition("=")
        params[k.upper()] = v if "=" in p else None
    return params


_PATH_RE = re.compile(r"^\s*(?:FROM|TO):\s*<([^>]*)>(.*)$", re.IGNORECASE | re.DOTALL)


def _parse_path(arg):
    """`FROM:<a@b> SIZE=1` -> ("a@b", {"SIZE": "1"}); None when malformed."""
    m = _PATH_RE.match(arg)
    if not m:
        return None
    return m.group(1), _parse_params(m.group(2))


@dataclass
class Transaction:
    """One mail transaction whose content the peer received completely."""

    mail_from: str
    mail_params: dict
    rcpts: list                      # accepted recipients, in order
    rcpt_params: dict                # accepted recipient -> its params
    rejected: list                   # [(address, code)] refused at RCPT
    data: bytes = b""                # dot-unstuffed DATA, or the BDAT chunks joined
    via: str = "DATA"                # "DATA" | "BDAT"
    tls: bool = False
    helo: str = ""
    auth: tuple = None               # (authcid, password) when the client authenticated
    connection: int = 0              # 1-based connection number
    time: float = 0.0                # when the content was complete
    reply: tuple = None              # (code, text) the peer answered, None until decided

    @property
    def accepted(self):
        return self.reply is not None and 200 <= self.reply[0] < 300


class _Drop(Exception):
    pass


class ScriptedSmtp:
    """An SMTP server whose replies a test scripts; records what it was sent."""

    def __init__(self, host="127.0.0.1", port=0, *, extensions=None, chunking=False, starttls=False,
                 implicit_tls=False, auth=False, auth_required=False, greeting=(220, "peer.test ESMTP scripted"),
                 ehlo_name="peer.test", helo_reply=None, mail_reply=(250, "2.1.0 OK"), rcpt_reply=(250, "2.1.5 OK"),
                 data_reply=(250, "2.0.0 OK queued"), auth_reply=(235, "2.7.0 Authentication successful"),
                 tls_dir=None):
        self.host = host
        self.port = port
        self.extensions = list(DEFAULT_EXTENSIONS if extensions is None else extensions)
        self.chunking = chunking
        self.starttls = starttls
        self.implicit_tls = implicit_tls
        self.auth = auth
        self.auth_required = auth_required
        self.greeting = greeting
        self.ehlo_name = ehlo_name
        self.helo_reply = helo_reply
        self.mail_reply = mail_reply
        self.rcpt_reply = rcpt_reply
        self.data_reply = data_reply
        self.auth_reply = auth_reply
        self._lock = threading.Lock()
        self._transactions = []
        self._connections = 0
        self._conn_times = []        # when each connection was accepted
        self._rcpt_log = []          # (time, connection, address, code)
        self._mail_log = []          # (time, connection, address, code)
        self._commands = []          # (time, connection, line)
        self._auths = []             # (authcid, password)
        self._tmp = None
        self.cert = self.key = None
        self._ssl = None
        if starttls or implicit_tls:
            if tls_dir is None:
                self._tmp = tempfile.mkdtemp(prefix="peer-tls-")
                tls_dir = self._tmp
            self.cert, self.key = make_self_signed(tls_dir)
            self._ssl = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self._ssl.load_cert_chain(str(self.cert), str(self.key))
        self._loop = None
        self._server = None
        self._tasks = set()
        self._thread = None
        self._started = threading.Event()
        self._error = None
        self.start()

    # ---- lifecycle -------------------------------------------------------

    def start(self):
        self._thread = threading.Thread(target=self._run, name=f"ScriptedSmtp:{self.host}", daemon=True)
        self._thread.start()
        if not self._started.wait(30):
            raise RuntimeError("ScriptedSmtp did not start")
        if self._error:
            raise self._error
        return self

    def _run(self):
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            self._server = loop.run_until_complete(asyncio.start_server(
                self._client, self.host, self.port, limit=1 << 22, reuse_address=True,
                ssl=self._ssl if self.implicit_tls else None))
            self.port = self._server.sockets[0].getsockname()[1]
        except Exception as e:  # noqa: BLE001 - reported to the starting thread
            self._error = e
            self._started.set()
            loop.close()
            return
        self._started.set()
        try:
            loop.run_forever()
        finally:
            loop.close()

    def stop(self):
        if self._loop is None or self._thread is None:
            return
        loop = self._loop

        async def shutdown():
            self._server.close()
            for t in list(self._tasks):
                t.cancel()
            if self._tasks:
                await asyncio.gather(*self._tasks, return_exceptions=True)
            await self._server.wait_closed()
            loop.stop()

        if loop.is_running():
            asyncio.run_coroutine_threadsafe(shutdown(), loop)
        self._thread.join(10)
        self._thread = None
        self._loop = None
        if self._tmp:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    # ---- what the tests look at -------------------------------------------

    @property
    def transactions(self):
        with self._lock:
            return list(self._transactions)

    @property
    def accepted(self):
        """Transactions the peer answered with 2xx at end of data."""
        return [t for t in self.transactions if t.accepted]

    @property
    def connections(self):
        with self._lock:
            return self._connections

    @property
    def connection_times(self):
        """time.time() of every accepted connection, in order."""
        with self._lock:
            return list(self._conn_times)

    @property
    def rcpt_log(self):
        """Every RCPT seen: (time, connection, address, reply code)."""
        with self._lock:
            return list(self._rcpt_log)

    @property
    def mail_log(self):
        with self._lock:
            return list(self._mail_log)

    @property
    def commands(self):
        """Every command line received: (time, connection, line) (AUTH payloads included)."""
        with self._lock:
            return list(self._commands)

    @property
    def auths(self):
        """Decoded credentials of every AUTH attempt: (authcid, password)."""
        with self._lock:
            return list(self._auths)

    def wait_until(self, predicate, timeout=30, interval=0.1):
        """Poll `predicate()` until truthy; returns its value, or raises AssertionError."""
        deadline = time.time() + timeout
        while True:
            v = predicate()
            if v:
                return v
            if time.time() > deadline:
                raise AssertionError(f"timed out after {timeout}s waiting for {predicate}")
            time.sleep(interval)

    def wait_for(self, n_transactions, timeout=30):
        """Wait until at least n transactions were received completely; returns them all."""
        try:
            return self.wait_until(lambda: len(self.transactions) >= n_transactions and self.transactions, timeout)
        except AssertionError:
            raise AssertionError(
                f"peer saw {len(self.transactions)} transaction(s), wanted {n_transactions}, "
                f"in {timeout}s; {self.connections} connection(s); commands: {self.commands[-20:]}"
            ) from None

    # ---- protocol ----------------------------------------------------------

    async def _reply(self, spec, *args):
        if callable(spec):
            spec = await asyncio.get_running_loop().run_in_executor(None, spec, *args)
        return spec

    async def _send(self, writer, reply):
        if reply is DROP:
            raise _Drop()
        code, text = reply
        lines = str(text).split("\n") or [""]
        out = "".join(f"{code}-{l}\r\n" for l in lines[:-1]) + f"{code} {lines[-1]}\r\n"
        writer.write(out.encode("utf-8"))
        await writer.drain()
        if code == 421:
            raise _Drop()

    async def _client(self, reader, writer):
        task = asyncio.current_task()
        self._tasks.add(task)
        with self._lock:
            self._connections += 1
            self._conn_times.append(time.time())
            conn = self._connections
        try:
            await self._session(reader, writer, conn)
        except (_Drop, ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError, ssl.SSLError, OSError):
            pass
        finally:
            self._tasks.discard(task)
            try:
                writer.close()
            except Exception:  # noqa: BLE001
                pass

    async def _session(self, reader, writer, conn):
        tls = self.implicit_tls
        greeting = await self._reply(self.greeting)
        await self._send(writer, greeting)
        serving = greeting[0] == 220
        helo = None
        auth = None
        txn = None
        while True:
            raw = await reader.readline()
            if not raw:
                return
            line = raw.rstrip(b"\r\n").decode("utf-8", "replace")
            with self._lock:
                self._commands.append((time.time(), conn, line))
            verb, _, arg = line.partition(" ")
            verb = verb.upper()
            if verb == "QUIT":
                await self._send(writer, (221, "2.0.0 Bye"))
                return
            if not serving:
                await self._send(writer, (503, "5.5.1 No service"))
                continue
            if verb in ("EHLO", "HELO"):
                if not arg.strip():
                    await self._send(writer, (501, "5.5.4 Syntax: EHLO domain"))
                    continue
                helo = arg.strip()
                txn = None
                if self.helo_reply is not None:
                    r = await self._reply(self.helo_reply, helo)
                    if r is DROP or r[0] != 250:
                        await self._send(writer, r)
                        continue
                if verb == "HELO":
                    await self._send(writer, (250, self.ehlo_name))
                    continue
                exts = list(self.extensions)
                if self.chunking:
                    exts.append("CHUNKING")
                if self.starttls and not tls:
                    exts.append("STARTTLS")
                if self.auth:
                    exts.append("AUTH PLAIN LOGIN")
                await self._send(writer, (250, "\n".join([f"{self.ehlo_name} greets {helo}", *exts])))
            elif verb == "STARTTLS" and self.starttls and not tls:
                if helo is None:
                    await self._send(writer, (503, "5.5.1 EHLO first"))
                    continue
                if reader._buffer:  # RFC 3207 §5: nothing may follow STARTTLS in the same flight
                    await self._send(writer, (501, "5.5.1 Pipelining after STARTTLS"))
                    return
                await self._send(writer, (220, "2.0.0 Ready to start TLS"))
                await writer.start_tls(self._ssl)
                tls = True
                helo = auth = txn = None
            elif verb == "AUTH" and self.auth:
                if auth is not None:
                    await self._send(writer, (503, "5.5.1 Already authenticated"))
                    continue
                mech, _, initial = arg.strip().partition(" ")
                mech = mech.upper()
                try:
                    if mech == "PLAIN":
                        if not initial:
                            await self._send(writer, (334, ""))
                            initial = (await reader.readline()).strip().decode()
                        if initial == "*":
                            await self._send(writer, (501, "5.0.0 Cancelled"))
                            continue
                        parts = base64.b64decode(initial, validate=True).decode("utf-8").split("\0")
                        _, user, password = parts
                    elif mech == "LOGIN":
                        if initial:
                            user = base64.b64decode(initial).decode()
                        else:
                            await self._send(writer, (334, "VXNlcm5hbWU6"))
                            user = base64.b64decode((await reader.readline()).strip()).decode()
                        await self._send(writer, (334, "UGFzc3dvcmQ6"))
                        password = base64.b64decode((await reader.readline()).strip()).decode()
                    else:
                        await self._send(writer, (504, "5.5.4 Unrecognized mechanism"))
                        continue
                except ValueError:
                    await self._send(writer, (501, "5.5.2 Cannot decode"))
                    continue
                with self._lock:
                    self._auths.append((user, password))
                r = await self._reply(self.auth_reply, user, password) if callable(self.auth_reply) else self.auth_reply
                if r is not DROP and 200 <= r[0] < 300:
                    auth = (user, password)
                await self._send(writer, r)
            elif verb == "MAIL":
                if helo is None:
                    await self._send(writer, (503, "5.5.1 EHLO first"))
                    continue
                if txn is not None:
                    await self._send(writer, (503, "5.5.1 Nested MAIL"))
                    continue
                if self.auth_required and auth is None:
                    await self._send(writer, (530, "5.7.0 Authentication required"))
                    continue
                parsed = _parse_path(arg)
                if parsed is None:
                    await self._send(writer, (501, "5.5.4 Syntax: MAIL FROM:<address>"))
                    continue
                addr, params = parsed
                r = await self._reply(self.mail_reply, addr)
                with self._lock:
                    self._mail_log.append((time.time(), conn, addr, None if r is DROP else r[0]))
                if r is not DROP and 200 <= r[0] < 300:
                    txn = Transaction(addr, params, [], {}, [], tls=tls, helo=helo, auth=auth, connection=conn)
                await self._send(writer, r)
            elif verb == "RCPT":
                if txn is None:
                    await self._send(writer, (503, "5.5.1 Need MAIL"))
                    continue
                parsed = _parse_path(arg)
                if parsed is None:
                    await self._send(writer, (501, "5.5.4 Syntax: RCPT TO:<address>"))
                    continue
                addr, params = parsed
                r = await self._reply(self.rcpt_reply, addr)
                code = None if r is DROP else r[0]
                with self._lock:
                    self._rcpt_log.append((time.time(), conn, addr, code))
                if code is not None and 200 <= code < 300:
                    txn.rcpts.append(addr)
                    txn.rcpt_params[addr] = params
                else:
                    txn.rejected.append((addr, code))
                await self._send(writer, r)
            elif verb == "DATA":
                if txn is None:
                    await self._send(writer, (503, "5.5.1 Need MAIL"))
                    continue
                if not txn.rcpts:
                    await self._send(writer, (554, "5.5.1 No valid recipients"))
                    continue
                await self._send(writer, (354, "Go ahead, end with <CRLF>.<CRLF>"))
                chunks = []
                while True:
                    l = await reader.readline()
                    if not l:
                        return
                    if l == b".\r\n":
                        break
                    if l.startswith(b"."):
                        l = l[1:]
                    chunks.append(l)
                txn.data = b"".join(chunks)
                txn.via = "DATA"
                await self._finish(writer, txn)
                txn = None
            elif verb == "BDAT" and self.chunking:
                m = re.fullmatch(r"\s*(\d+)(\s+LAST)?\s*", arg, re.IGNORECASE)
                if not m:
                    await self._send(writer, (501, "5.5.4 Syntax: BDAT size [LAST]"))
                    return  # the chunk boundary is lost; nothing sane follows
                size, last = int(m.group(1)), bool(m.group(2))
                chunk = await reader.readexactly(size)
                if txn is None or not txn.rcpts:
                    await self._send(writer, (503 if txn is None else 554, "5.5.1 No valid transaction"))
                    continue
                txn.data += chunk
                txn.via = "BDAT"
                if last:
                    await self._finish(writer, txn)
                    txn = None
                else:
                    await self._send(writer, (250, f"2.0.0 {size} octets received"))
            elif verb == "RSET":
                txn = None
                await self._send(writer, (250, "2.0.0 OK"))
            elif verb == "NOOP":
                await self._send(writer, (250, "2.0.0 OK"))
            else:
                await self._send(writer, (502, "5.5.1 Command not implemented"))

    async def _finish(self, writer, txn):
        txn.time = time.time()
        with self._lock:
            self._transactions.append(txn)
        r = await self._reply(self.data_reply, txn)
        txn.reply = r if r is not DROP else None
        await self._send(writer, r)


# ---- DNS ---------------------------------------------------------------------


def _norm(name):
    return str(name).rstrip(".").lower()


class _QuietLogger(DNSLogger):
    def __init__(self):
        super().__init__(log="-request,-reply,-truncated,-error,-recv,-send,-data", prefix=False)


class _ZoneResolver(BaseResolver):
    def __init__(self, owner):
        self.owner = owner

    def resolve(self, request, handler):
        return self.owner._answer(request)


class DnsServer:
    """Authoritative answers from `zone` on 127.0.0.1:port, UDP and TCP.

    zone = {"b.test": {"MX": [(10, "mx1.b.test")], "TXT": ["v=spf1 -all"]},
            "mx1.b.test": {"A": ["127.0.0.2"], "AAAA": ["::1"]},
            "alias.test": {"CNAME": "b.test"}}
    Unknown name -> NXDOMAIN; known name without the type -> NOERROR, no answer.
    `zone` (the attribute) may be changed while the server runs.
    """

    def __init__(self, zone=None, port=0, host="127.0.0.1", ttl=1):
        self.zone = zone if zone is not None else {}
        self.host = host
        self.ttl = ttl
        self._lock = threading.Lock()
        self._queries = []
        self._udp = self._tcp = None
        for _ in range(20):
            udp = _DnslibServer(_ZoneResolver(self), address=host, port=port, logger=_QuietLogger())
            p = udp.server.server_address[1]
            try:
                tcp = _DnslibServer(_ZoneResolver(self), address=host, port=p, tcp=True, logger=_QuietLogger())
            except OSError:
                udp.server.server_close()
                if port:
                    raise
                continue
            self._udp, self._tcp, self.port = udp, tcp, p
            break
        else:
            raise RuntimeError("no port free for both UDP and TCP")
        self._udp.start_thread()
        self._tcp.start_thread()

    @property
    def queries(self):
        """Every question asked: (name without trailing dot, type name)."""
        with self._lock:
            return list(self._queries)

    @property
    def address(self):
        return f"{self.host}:{self.port}"

    def stop(self):
        for s in (self._udp, self._tcp):
            if s is not None:
                s.stop()
                s.server.server_close()
        self._udp = self._tcp = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    def _lookup(self, name):
        zone = self.zone
        for k, v in list(zone.items()):
            if _norm(k) == name:
                return v
        return None

    def _rr(self, name, qtype, value):
        QT = dnslib.QTYPE
        if qtype == "MX":
            pref, host = value
            rdata = dnslib.MX(dnslib.DNSLabel(host if host != "." else ""), pref)
        elif qtype == "A":
            rdata = dnslib.A(value)
        elif qtype == "AAAA":
            rdata = dnslib.AAAA(value)
        elif qtype == "TXT":
            if isinstance(value, (bytes, str)):
                value = value.encode() if isinstance(value, str) else value
                value = [value[i:i + 255] for i in range(0, len(value), 255)] or [b""]
            rdata = dnslib.TXT([v.encode() if isinstance(v, str) else v for v in value])
        elif qtype == "CNAME":
            rdata = dnslib.CNAME(value)
        elif qtype == "PTR":
            rdata = dnslib.PTR(value)
        else:
            raise ValueError(f"unsupported record type {qtype}")
        return dnslib.RR(name, getattr(QT, qtype), rdata=rdata, ttl=self.ttl)

    def _soa(self, name):
        labels = name.split(".")
        apex = ".".join(labels[-2:]) if len(labels) >= 2 else name
        return dnslib.RR(apex + ".", dnslib.QTYPE.SOA, ttl=self.ttl,
                         rdata=dnslib.SOA("ns." + apex + ".", "hostmaster." + apex + ".", (1, 60, 60, 60, self.ttl)))

    def _answer(self, request):
        reply = request.reply()
        reply.header.aa = 1
        reply.header.ra = 0
        q = request.q
        qname = _norm(q.qname)
        qtype = dnslib.QTYPE.get(q.qtype)
        with self._lock:
            self._queries.append((qname, qtype))
        name = qname
        for _ in range(8):  # follow CNAMEs inside the zone
            node = self._lookup(name)
            if node is None:
                if name == qname:
                    reply.header.rcode = dnslib.RCODE.NXDOMAIN
                    reply.add_auth(self._soa(qname))
                return reply
            if "CNAME" in node and qtype != "CNAME":
                reply.add_answer(self._rr(name + ".", "CNAME", node["CNAME"]))
                name = _norm(node["CNAME"])
                continue
            values = node.get(qtype)
            if values is None:
                reply.add_auth(self._soa(name))
                return reply
            if qtype == "CNAME":
                values = [values]
            for v in values:
                reply.add_answer(self._rr(name + ".", qtype, v))
            return reply
        return reply


def free_port(host="127.0.0.1"):
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]
