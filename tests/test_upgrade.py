"""A data directory written by the previous release (schema v5) upgrades in
place: IMAP and POP3 clients that cached UIDs, UIDVALIDITY and UIDLs see no
change, flags, subscriptions and the queue survive, and the upgraded store
works (delivery, threads of old and new mail)."""

import imaplib
import json
import shutil
import signal
import subprocess
import tarfile
import time
from pathlib import Path

import pytest

from conftest import BIN, Server, free_port
from fixtures.make_v5 import message, snapshot

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def v5_server(tmp):
    """A server configured as the one that made the fixture: the queued
    message's route leads nowhere, so it stays queued (no bounce arrives).
    No delay warnings either: the fixture's queue entry ages with the
    checkout, and a warning would land in a snapshotted INBOX."""
    return Server(
        tmp,
        f'[delivery]\nwarn_after_secs = 0\n\n[delivery.routes]\n"elsewhere.test" = "127.0.0.1:{free_port()}"\n',
    )


def unpack(dest):
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(FIXTURES / "v5-data.tar.gz") as t:
        t.extractall(dest, filter="data")


@pytest.fixture
def upgraded(tmp_path):
    srv = v5_server(tmp_path)
    unpack(srv.cli.data_dir)
    srv.start()
    yield srv
    srv.stop(signal.SIGKILL)


def test_v5_data_survives_the_upgrade(upgraded):
    expect = json.loads((FIXTURES / "v5-expect.json").read_text())
    got = snapshot(upgraded)
    assert got["mailboxes"] == expect["mailboxes"]
    assert got["subscribed"] == expect["subscribed"]
    assert got["uidl"] == expect["uidl"]
    queued = json.loads(upgraded.cli.run("queue", "list", "--json", check=True).stdout)
    assert [r["address"] for e in queued for r in e["recipients"]] == expect["queue"]


def test_upgraded_store_takes_new_mail_and_threads_it(upgraded):
    upgraded.cli.deliver(
        "alice@example.test",
        message("<reply3@example.test>", "<reply2@example.test>", "<root@example.test>", "Re: Lunch plans", "late"),
    )
    im = imaplib.IMAP4("127.0.0.1", upgraded.ports["imap"])
    im.login("alice@example.test", "alice-pw")
    _, st = im.status("INBOX", "(MESSAGES UIDNEXT)")
    assert b"MESSAGES 5" in st[0] and b"UIDNEXT 7" in st[0], st
    im.select("INBOX")
    # Flags still work on old and new messages alike.
    typ, _ = im.uid("STORE", "1,6", "+FLAGS", "(\\Flagged)")
    assert typ == "OK"
    _, data = im.uid("FETCH", "1,6", "(FLAGS)")
    assert all(b"\\Flagged" in d for d in data), data
    # Sort and thread keys were computed for the old mail too (schema v12):
    # the old and the new reply thread under their root.
    typ, data = im.uid("THREAD", "REFERENCES", "UTF-8", "SUBJECT", "Lunch")
    assert typ == "OK" and data[0].startswith(b"(1 "), data
    assert b"6" in data[0], data
    typ, data = im.uid("SORT", "(SUBJECT)", "UTF-8", "ALL")
    assert typ == "OK" and sorted(data[0].split()) == sorted(b"1 2 3 4 6".split()), data
    im.logout()


def test_killed_upgrade_resumes(tmp_path):
    """kill -9 at several moments of the first start on v5 data: whatever
    the moment, the next start shows the complete upgraded store (the
    migration is one transaction; see also the store's unit test, which
    aborts it half-way)."""
    data = tmp_path / "data"
    unpack(data)
    expect = json.loads((FIXTURES / "v5-expect.json").read_text())
    for delay in (0.0, 0.02, 0.05, 0.1, 0.3):
        (tmp_path / f"srv{delay}").mkdir()
        srv = v5_server(tmp_path / f"srv{delay}")
        shutil.copytree(data, srv.cli.data_dir)
        p = subprocess.Popen([BIN, "--data", str(srv.cli.data_dir), "domain", "list"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay)
        p.send_signal(signal.SIGKILL)
        p.wait()
        srv.start()
        try:
            got = snapshot(srv)
            assert got["mailboxes"] == expect["mailboxes"], delay
            assert got["uidl"] == expect["uidl"], delay
        finally:
            srv.stop(signal.SIGKILL)
