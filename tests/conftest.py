"""Shared fixtures: the letterbox binary, throw-away data directories and a
running server on loopback ports picked per test. Tests observe the server
only through its protocols and this CLI, never by reading its database, so
they hold for every storage backend."""

import base64
import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = os.environ.get("LETTERBOX_BIN", str(ROOT / "target" / "debug" / "letterbox"))
SERVICES = ["smtp", "submission", "submissions", "imap", "imaps", "pop3", "pop3s", "http", "https"]


def free_ports(n):
    """n distinct free ports: all sockets stay bound until every port is picked."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cli:
    """Runs management commands against one data directory."""

    def __init__(self, data_dir, config=None):
        self.data_dir = Path(data_dir)
        self.config = config

    def run(self, *args, input=None, check=False, env=None):
        cmd = [BIN]
        if self.config:
            cmd += ["--config", str(self.config)]
        cmd += ["--data", str(self.data_dir), *args]
        e = dict(os.environ)
        e.pop("LETTERBOX_DATA", None)
        e.pop("LETTERBOX_CONFIG", None)
        if env:
            e.update(env)
        p = subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=60, env=e)
        if check and p.returncode != 0:
            raise AssertionError(f"{cmd} failed ({p.returncode}): {p.stdout}{p.stderr}")
        return p

    def add_user(self, address, password, domain=None):
        domain = domain or address.split("@", 1)[1]
        doms = self.run("domain", "list", check=True).stdout.split()
        if domain not in doms:
            self.run("domain", "add", domain, check=True)
        self.run("user", "add", address, input=password + "\n", check=True)

    def accounts(self):
        """`letterbox user list --json`: address, quota, usage, password_scheme."""
        return json.loads(self.run("user", "list", "--json", check=True).stdout)

    def export(self, address, mailbox=None):
        """`letterbox export --format json`: the account's messages (one mailbox, or
        all), by mailbox then UID, each a dict with mailbox, uid, flags,
        internal_date and raw (the stored bytes)."""
        args = ["export", address, "--format", "json"]
        if mailbox is not None:
            args += ["--mailbox", mailbox]
        messages = json.loads(self.run(*args, check=True).stdout)
        for m in messages:
            m["raw"] = base64.b64decode(m.pop("raw_base64"), validate=True)
        return messages

    def deliver(self, address, message, mailbox=None):
        """Store one message (bytes or str) via `letterbox deliver`."""
        if isinstance(message, str):
            message = message.encode()
        cmd = [BIN]
        if self.config:
            cmd += ["--config", str(self.config)]
        cmd += ["--data", str(self.data_dir), "deliver", address]
        if mailbox:
            cmd += ["--mailbox", mailbox]
        e = {k: v for k, v in os.environ.items() if k not in ("LETTERBOX_DATA", "LETTERBOX_CONFIG")}
        p = subprocess.run(cmd, input=message, capture_output=True, timeout=60, env=e)
        if p.returncode != 0:
            raise AssertionError(f"{cmd} failed ({p.returncode}): {p.stdout!r}{p.stderr!r}")
        return p.stdout.decode()


@pytest.fixture
def cli(tmp_path):
    return Cli(tmp_path / "data")


class Server:
    """A `letterbox serve` process with its own ports and data directory."""

    def __init__(self, tmp_path, extra_config="", dev=True):
        self.tmp = tmp_path
        self.ports = dict(zip(SERVICES, free_ports(len(SERVICES))))
        self.config = tmp_path / "letterbox.toml"
        lines = ["hostname = \"localhost\"", extra_config, "[listeners]"]
        lines += [f"{s} = \"127.0.0.1:{p}\"" for s, p in self.ports.items()]
        self.config.write_text("\n".join(lines) + "\n")
        self.cli = Cli(tmp_path / "data", self.config)
        self.dev = dev
        self.proc = None
        self.output = []

    def start(self):
        cmd = [BIN, "--config", str(self.config), "--data", str(self.cli.data_dir)]
        if self.dev:
            cmd.append("--dev")
        cmd.append("serve")
        self.log = open(self.tmp / "server.log", "a")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self.log, text=True)
        deadline = time.time() + 30
        while time.time() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            self.output.append(line)
            if line.strip() == "letterbox: ready" and self.ready():
                return self
        raise AssertionError("server did not start: " + "".join(self.output) + self.read_log())

    def ready(self):
        """True once every implemented listener accepts connections."""
        for s in self.listening_services():
            try:
                socket.create_connection(("127.0.0.1", self.ports[s]), timeout=1).close()
            except OSError:
                return False
        return True

    def listening_services(self):
        return [s for s in SERVICES if any(f"{s} listening on" in l for l in self.output)]

    def read_log(self):
        try:
            return (self.tmp / "server.log").read_text()
        except OSError:
            return ""

    def stop(self, sig=signal.SIGTERM):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode if self.proc else None


@pytest.fixture
def server_factory(tmp_path):
    servers = []

    def make(extra_config="", dev=True, sub="srv"):
        d = tmp_path / sub
        d.mkdir(exist_ok=True)
        s = Server(d, extra_config, dev)
        servers.append(s)
        return s

    yield make
    for s in servers:
        s.stop(signal.SIGKILL)
