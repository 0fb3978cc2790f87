"""IMAP interoperability with real third-party clients: mbsync (isync) syncing
a local maildir both ways over implicit TLS, curl fetching and searching over
IMAP and IMAPS, and neomutt listing the INBOX in a tmux pane.

These tools are required (Debian packages `isync`, `curl`, `neomutt`, `tmux`);
the tests fail rather than skip when one is missing."""

import imaplib
import re
import shlex
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

USER = "alice@example.test"
PW = "alice-pw"

# Maildir info letters and the IMAP system flags mbsync maps them to.
MAILDIR_FLAGS = {"D": "\\Draft", "F": "\\Flagged", "R": "\\Answered", "S": "\\Seen", "T": "\\Deleted"}
SYSTEM_FLAGS = set(MAILDIR_FLAGS.values())


def need(tool):
    path = shutil.which(tool)
    assert path, f"{tool} is not installed (Debian packages: isync, curl, neomutt, tmux)"
    return path


def cert(srv):
    return srv.cli.data_dir / "tls" / "cert.pem"


def message(mid, subject, body):
    return (
        f"From: Sender <sender@example.test>\r\nTo: {USER}\r\nSubject: {subject}\r\n"
        f"Date: Mon, 4 Mar 2024 10:00:00 +0000\r\nMessage-ID: <{mid}@example.test>\r\n\r\n"
        f"{body}\r\nsecond line of {mid}\r\n"
    )


@pytest.fixture
def srv(server_factory):
    s = server_factory("[auth]\nfailure_delay_ms = 10")
    s.cli.add_user(USER, PW)
    return s.start()


def imap(srv):
    c = imaplib.IMAP4("127.0.0.1", srv.ports["imap"], timeout=30)
    c.login(USER, PW)
    return c


def ok(result):
    typ, data = result
    assert typ == "OK", data
    return data


# --- mbsync -----------------------------------------------------------------


def message_id(raw):
    m = re.search(rb"^Message-ID:\s*(<[^>\r\n]*>)", raw, re.M | re.I)
    assert m, f"no Message-ID in {raw[:200]!r}"
    return m.group(1).decode()


def normalize(raw):
    """Maildir files use LF, IMAP uses CRLF; and mbsync adds an X-TUID header
    to every message it uploads (to find it again after an interrupted run).
    Compare the content apart from those."""
    raw = raw.replace(b"\r\n", b"\n")
    head, sep, body = raw.partition(b"\n\n")
    return re.sub(rb"^X-TUID: [^\n]*\n", b"", head + b"\n", flags=re.M)[:-1] + sep + body


def mailbox_names(c):
    names = []
    for line in ok(c.list('""', "*")):
        m = re.fullmatch(rb'\(([^)]*)\) "/" (.*)', line)
        assert m, line
        if b"\\noselect" in m.group(1).lower():
            continue
        name = m.group(2).decode()
        if name.startswith('"'):
            name = name[1:-1]
        names.append(name)
    return sorted(names)


def server_state(srv):
    """{mailbox: {message-id: (flags, content)}} plus {mailbox: (uidvalidity,
    uidnext, [(uid, flags)])} to detect any change at all."""
    c = imap(srv)
    state, exact = {}, {}
    for name in mailbox_names(c):
        ok(c.select(f'"{name}"', readonly=True))
        uidvalidity = int(c.response("UIDVALIDITY")[1][0])
        uidnext = int(c.response("UIDNEXT")[1][0])
        count = int(ok(c.select(f'"{name}"', readonly=True))[0])
        box, uids = {}, []
        if count:
            data = ok(c.uid("FETCH", "1:*", "(UID FLAGS BODY.PEEK[])"))
            for item in data:
                if not isinstance(item, tuple):
                    continue
                head, raw = item
                uid = int(re.search(rb"UID (\d+)", head).group(1))
                flags = frozenset(re.search(rb"FLAGS \(([^)]*)\)", head).group(1).decode().split())
                mid = message_id(raw)
                assert mid not in box, f"duplicate {mid} in server mailbox {name}"
                box[mid] = (frozenset(flags & SYSTEM_FLAGS), normalize(raw))
                uids.append((uid, flags))
            assert len(box) == count, (name, count, data)
        state[name] = box
        exact[name] = (uidvalidity, uidnext, sorted(uids))
    c.logout()
    return state, exact


def maildir_flags(filename):
    if ":2," not in filename:
        return frozenset()
    return frozenset(MAILDIR_FLAGS[ch] for ch in filename.split(":2,", 1)[1] if ch in MAILDIR_FLAGS)


def local_state(root):
    """{mailbox: {message-id: (flags, content)}} plus the sorted file names."""
    state, files = {}, {}
    for cur in sorted(root.rglob("cur")):
        box_dir = cur.parent
        name = box_dir.relative_to(root).as_posix()
        box, names = {}, []
        for sub in ("new", "cur"):
            for f in sorted((box_dir / sub).iterdir()):
                raw = f.read_bytes()
                mid = message_id(raw)
                assert mid not in box, f"duplicate {mid} in local mailbox {name}"
                box[mid] = (maildir_flags(f.name), normalize(raw))
                names.append(f"{sub}/{f.name}")
        state[name] = box
        files[name] = names
    return state, files


def local_file(root, box, mid):
    for sub in ("new", "cur"):
        for f in (root / box / sub).iterdir():
            if message_id(f.read_bytes()) == mid:
                return f
    raise AssertionError(f"{mid} not in local {box}")


def write_maildir(root, box, name, raw, sub="new", flags=None):
    d = root / box
    for s in ("cur", "new", "tmp"):
        (d / s).mkdir(parents=True, exist_ok=True)
    if flags is not None:
        name += ":2," + flags
    (d / sub / name).write_bytes(raw.replace("\r\n", "\n").encode())


def summary(state):
    return {box: {mid: sorted(v[0]) for mid, v in msgs.items()} for box, msgs in state.items()}


class Mbsync:
    def __init__(self, srv, tmp_path):
        self.exe = need("mbsync")
        self.root = tmp_path / "mail"
        self.root.mkdir()
        self.rc = tmp_path / "mbsyncrc"
        # The certificate names localhost and 127.0.0.1; mbsync checks the name.
        self.rc.write_text(
            f"""IMAPAccount letterbox
Host localhost
Port {srv.ports["imaps"]}
User {USER}
Pass {PW}
SSLType IMAPS
CertificateFile {cert(srv)}

IMAPStore remote
Account letterbox

MaildirStore local
Path {self.root}/
Inbox {self.root}/INBOX
SubFolders Verbatim

Channel all
Far :remote:
Near :local:
Patterns *
Create Both
Expunge Both
SyncState *
Sync All
"""
        )
        self.log = []

    def run(self, *extra):
        p = subprocess.run([self.exe, "-c", str(self.rc), "-V", *extra, "-a"],
                           capture_output=True, text=True, timeout=120)
        self.log.append(f"$ mbsync -V {' '.join(extra)} -a -> {p.returncode}\n{p.stdout}{p.stderr}")
        return p

    def sync(self):
        p = self.run()
        assert p.returncode == 0, self.log[-1]
        return p

    def transcript(self):
        return "\n".join(self.log)


def test_mbsync_two_way_sync(srv, tmp_path):
    # Far side: INBOX, a top-level and a nested mailbox, one message already seen.
    c = imap(srv)
    ok(c.create("Work"))
    ok(c.create("Work/Projects"))
    for i in range(1, 4):
        srv.cli.deliver(USER, message(f"srv-inbox-{i}", f"server inbox {i}", f"server body {i}"))
    srv.cli.deliver(USER, message("srv-work-1", "server work 1", "work body"), mailbox="Work")
    srv.cli.deliver(USER, message("srv-work-2", "server work 2", "more work"), mailbox="Work")
    srv.cli.deliver(USER, message("srv-proj-1", "server project", "nested"), mailbox="Work/Projects")
    ok(c.select("INBOX"))
    ok(c.store("2", "+FLAGS", "(\\Seen)"))
    c.logout()

    # Near side: INBOX messages in new/ and cur/ with flags, plus a local-only folder.
    m = Mbsync(srv, tmp_path)
    root = m.root
    write_maildir(root, "INBOX", "1700000001.l1.host", message("loc-inbox-1", "local inbox 1", "local body 1"))
    write_maildir(root, "INBOX", "1700000002.l2.host", message("loc-inbox-2", "local inbox 2", "local body 2"),
                  sub="cur", flags="S")
    write_maildir(root, "INBOX", "1700000003.l3.host", message("loc-inbox-3", "local inbox 3", "local body 3"),
                  sub="cur", flags="FS")
    write_maildir(root, "Lists", "1700000004.l4.host", message("loc-lists-1", "local list mail", "list body"),
                  sub="cur", flags="RS")

    m.sync()
    m.sync()
    far, _ = server_state(srv)
    near, _ = local_state(root)
    expected = {
        "INBOX": {
            "<srv-inbox-1@example.test>": [],
            "<srv-inbox-2@example.test>": ["\\Seen"],
            "<srv-inbox-3@example.test>": [],
            "<loc-inbox-1@example.test>": [],
            "<loc-inbox-2@example.test>": ["\\Seen"],
            "<loc-inbox-3@example.test>": ["\\Flagged", "\\Seen"],
        },
        "Work": {"<srv-work-1@example.test>": [], "<srv-work-2@example.test>": []},
        "Work/Projects": {"<srv-proj-1@example.test>": []},
        "Lists": {"<loc-lists-1@example.test>": ["\\Answered", "\\Seen"]},
        "Archive": {}, "Drafts": {}, "Junk": {}, "Sent": {}, "Trash": {},
    }
    assert summary(far) == expected, m.transcript()
    assert summary(near) == expected, m.transcript()
    # Same content on both sides, byte for byte apart from line endings.
    assert far == near, m.transcript()

    # Changes on both sides.
    c = imap(srv)
    ok(c.select("INBOX"))
    [nums] = ok(c.search(None, "HEADER", "Message-ID", "srv-inbox-1"))
    ok(c.store(nums.decode(), "+FLAGS", "(\\Flagged)"))  # flag on the server
    [nums] = ok(c.search(None, "HEADER", "Message-ID", "loc-inbox-1"))
    ok(c.store(nums.decode(), "+FLAGS", "(\\Deleted)"))  # delete on the server
    ok(c.expunge())
    ok(c.select("Work"))
    [nums] = ok(c.search(None, "HEADER", "Message-ID", "srv-work-2"))
    ok(c.store(nums.decode(), "+FLAGS", "(\\Answered)"))
    c.logout()
    srv.cli.deliver(USER, message("srv-inbox-4", "server inbox 4", "arrived later"))

    f = local_file(root, "INBOX", "<srv-inbox-3@example.test>")
    f.rename(f.parent.parent / "cur" / (f.name.split(":2,")[0] + ":2,S"))  # seen locally
    local_file(root, "INBOX", "<loc-inbox-2@example.test>").unlink()  # deleted locally
    f = local_file(root, "INBOX", "<loc-inbox-3@example.test>")
    f.rename(f.parent / (f.name.split(":2,")[0] + ":2,S"))  # unflagged locally
    local_file(root, "Work", "<srv-work-1@example.test>").unlink()
    write_maildir(root, "Work/Projects", "1700000005.l5.host", message("loc-proj-2", "local project", "new local"))

    m.sync()
    far, far_exact = server_state(srv)
    near, near_files = local_state(root)
    expected["INBOX"] = {
        "<srv-inbox-1@example.test>": ["\\Flagged"],
        "<srv-inbox-2@example.test>": ["\\Seen"],
        "<srv-inbox-3@example.test>": ["\\Seen"],
        "<srv-inbox-4@example.test>": [],
        "<loc-inbox-3@example.test>": ["\\Seen"],
    }
    expected["Work"] = {"<srv-work-2@example.test>": ["\\Answered"]}
    expected["Work/Projects"] = {"<srv-proj-1@example.test>": [], "<loc-proj-2@example.test>": []}
    assert summary(far) == expected, m.transcript()
    assert summary(near) == expected, m.transcript()
    assert far == near, m.transcript()
    # Deleted messages are expunged on the server, not just flagged \Deleted.
    c = imap(srv)
    for box in ("INBOX", "Work"):
        ok(c.select(box, readonly=True))
        assert ok(c.search(None, "DELETED")) == [b""], (box, m.transcript())
    c.logout()

    # A sync with nothing to do changes nothing on either side.
    states = [(root / box / ".mbsyncstate").read_text() for box in sorted(near)]
    m.sync()
    far2, far_exact2 = server_state(srv)
    near2, near_files2 = local_state(root)
    assert far_exact2 == far_exact, m.transcript()
    assert near_files2 == near_files, m.transcript()
    assert far2 == far and near2 == near
    assert [(root / box / ".mbsyncstate").read_text() for box in sorted(near)] == states, m.transcript()


# --- curl -------------------------------------------------------------------


class Curl:
    def __init__(self, srv, tmp_path):
        self.exe = need("curl")
        self.srv = srv
        self.tmp = tmp_path
        self.transcripts = []

    def url(self, path="", scheme="imap", host="127.0.0.1"):
        return f"{scheme}://{host}:{self.srv.ports[scheme]}/{path}"

    def run(self, url, *args, user=f"{USER}:{PW}"):
        cmd = [self.exe, "-sS", "-v", "--max-time", "30", "--user", user, *args, "--url", url]
        p = subprocess.run(cmd, capture_output=True, timeout=60)
        self.transcripts.append(f"$ curl ... {url} {' '.join(args)} -> {p.returncode}\n"
                                + p.stderr.decode(errors="replace"))
        return p

    def get(self, url, *args):
        p = self.run(url, *args)
        assert p.returncode == 0, self.transcripts[-1]
        return p.stdout

    def transcript(self):
        return "\n".join(self.transcripts)


def server_flags(srv, mailbox="INBOX"):
    c = imap(srv)
    ok(c.select(mailbox, readonly=True))
    out = {}
    for line in ok(c.uid("FETCH", "1:*", "(UID FLAGS)")):
        if line:
            uid = int(re.search(rb"UID (\d+)", line).group(1))
            out[uid] = set(re.search(rb"FLAGS \(([^)]*)\)", line).group(1).decode().split())
    c.logout()
    return out


def test_curl_fetch_search_list_append(srv, tmp_path):
    msgs = [message(f"curl-{i}", f"curl subject {i}", f"curl body {i}") for i in range(1, 5)]
    for m in msgs:
        srv.cli.deliver(USER, m)
    c = imap(srv)
    ok(c.select("INBOX"))
    ok(c.store("1", "+FLAGS", "(\\Seen)"))
    ok(c.store("4", "+FLAGS", "(\\Deleted)"))
    ok(c.expunge())
    ok(c.create("Work"))
    ok(c.create("Work/Sub"))
    c.logout()
    uidvalidity = re.search(rb"UIDVALIDITY (\d+)", imap(srv).status("INBOX", "(UIDVALIDITY)")[1][0]).group(1)
    cu = Curl(srv, tmp_path)

    # LIST of the whole account.
    listing = cu.get(cu.url()).decode()
    assert listing.splitlines() == [
        '* LIST (\\HasNoChildren) "/" INBOX',
        '* LIST (\\HasNoChildren \\Archive) "/" Archive',
        '* LIST (\\HasNoChildren \\Drafts) "/" Drafts',
        '* LIST (\\HasNoChildren \\Junk) "/" Junk',
        '* LIST (\\HasNoChildren \\Sent) "/" Sent',
        '* LIST (\\HasNoChildren \\Trash) "/" Trash',
        '* LIST (\\HasChildren) "/" Work',
        '* LIST (\\HasNoChildren) "/" Work/Sub',
    ], cu.transcript()

    # Searches before anything is fetched: 2 and 3 are unseen.
    assert cu.get(cu.url("INBOX?UNSEEN")) == b"* SEARCH 2 3\r\n", cu.transcript()
    assert cu.get(cu.url("INBOX"), "-X", "UID SEARCH UNSEEN") == b"* SEARCH 2 3\r\n", cu.transcript()
    assert cu.get(cu.url("INBOX?SUBJECT%20%22curl%20subject%203%22")) == b"* SEARCH 3\r\n", cu.transcript()
    assert cu.get(cu.url("INBOX"), "-X", "SEARCH NEW") == b"* SEARCH\r\n", cu.transcript()

    # Whole messages by UID are byte for byte what was delivered, and fetching
    # them with BODY[] marks them seen.
    assert cu.get(cu.url("INBOX;UID=2")) == msgs[1].encode(), cu.transcript()
    assert cu.get(cu.url(f"INBOX;UIDVALIDITY={uidvalidity.decode()}/;UID=3")) == msgs[2].encode(), cu.transcript()
    assert cu.get(cu.url("INBOX;MAILINDEX=1")) == msgs[0].encode(), cu.transcript()
    assert cu.get(cu.url("INBOX?UNSEEN")) == b"* SEARCH\r\n", cu.transcript()
    assert server_flags(srv) == {1: {"\\Seen"}, 2: {"\\Seen"}, 3: {"\\Seen"}}
    # Sections.
    assert cu.get(cu.url("INBOX;UID=2;SECTION=TEXT")) == b"curl body 2\r\nsecond line of curl-2\r\n"
    assert cu.get(cu.url("INBOX;UID=2;SECTION=HEADER.FIELDS%20(SUBJECT)")) == b"Subject: curl subject 2\r\n\r\n"

    # Errors curl reports: an expunged UID, a stale UIDVALIDITY, a bad password, a missing mailbox.
    assert cu.run(cu.url("INBOX;UID=4")).returncode == 78, cu.transcript()  # remote file not found
    assert cu.run(cu.url(f"INBOX;UIDVALIDITY={int(uidvalidity) + 1}/;UID=2")).returncode == 78, cu.transcript()
    assert cu.run(cu.url("INBOX"), user=f"{USER}:wrong").returncode == 67, cu.transcript()  # login denied
    assert cu.run(cu.url("Nosuch;UID=1")).returncode == 67, cu.transcript()  # select failed

    # Custom commands: STATUS, STORE, EXAMINE.
    out = cu.get(cu.url("INBOX"), "-X", "STATUS INBOX (MESSAGES UNSEEN UIDNEXT)")
    m = re.fullmatch(rb"\* STATUS INBOX \(([A-Z0-9 ]*)\)\r\n", out)
    assert m, cu.transcript()
    items = m.group(1).split()
    assert dict(zip(items[::2], items[1::2])) == {b"MESSAGES": b"3", b"UNSEEN": b"0", b"UIDNEXT": b"5"}
    out = cu.get(cu.url("INBOX"), "-X", "UID STORE 3 -FLAGS (\\Seen)")
    assert re.fullmatch(rb"\* 3 FETCH \((UID 3 FLAGS \(\)|FLAGS \(\) UID 3)\)\r\n", out), cu.transcript()
    assert cu.get(cu.url("INBOX?UNSEEN")) == b"* SEARCH 3\r\n", cu.transcript()

    # Upload (APPEND) to another mailbox.
    up = message("curl-up", "uploaded by curl", "appended")
    (tmp_path / "up.eml").write_bytes(up.encode())
    cu.get(cu.url("Drafts"), "-T", str(tmp_path / "up.eml"))
    assert cu.get(cu.url("Drafts;UID=1")) == up.encode(), cu.transcript()


def test_curl_over_tls(srv, tmp_path):
    body = message("curl-tls", "over tls", "secret body")
    srv.cli.deliver(USER, body)
    cu = Curl(srv, tmp_path)
    ca = str(cert(srv))
    # Implicit TLS, verifying the certificate by name and by address.
    assert cu.get(cu.url("INBOX;UID=1", "imaps", "localhost"), "--cacert", ca) == body.encode(), cu.transcript()
    assert cu.get(cu.url("INBOX?ALL", "imaps"), "--cacert", ca) == b"* SEARCH 1\r\n", cu.transcript()
    # STARTTLS on the plain port, required by the client.
    out = cu.get(cu.url("INBOX;UID=1;SECTION=TEXT", "imap", "localhost"), "--ssl-reqd", "--cacert", ca)
    assert out == b"secret body\r\nsecond line of curl-tls\r\n", cu.transcript()
    assert "STARTTLS" in cu.transcripts[-1]
    # Without the certificate the handshake fails verification (exit 60).
    assert cu.run(cu.url("INBOX", "imaps", "localhost")).returncode == 60, cu.transcript()


# --- neomutt ------------------------------------------------------------------


class Tmux:
    """One program in a detached tmux pane of a private tmux server."""

    def __init__(self, tmp_path, argv, env):
        self.exe = need("tmux")
        # A short private socket path: unix socket paths are limited to ~107 bytes.
        self.sockdir = tempfile.mkdtemp(prefix="lbx-tmux-")
        self.sock = Path(self.sockdir) / "sock"
        conf = tmp_path / "tmux.conf"
        conf.write_text("set -g remain-on-exit on\nset -g status off\n")
        cmd = shlex.join(["env", *[f"{k}={v}" for k, v in env.items()], *argv])
        self.tmux("-f", str(conf), "new-session", "-d", "-s", "t", "-x", "150", "-y", "40", cmd)

    def tmux(self, *args):
        p = subprocess.run([self.exe, "-S", str(self.sock), *args], capture_output=True, text=True, timeout=30)
        assert p.returncode == 0, (args, p.stdout, p.stderr)
        return p.stdout

    def screen(self):
        return self.tmux("capture-pane", "-p", "-t", "t")

    def dead(self):
        return self.tmux("display-message", "-p", "-t", "t", "#{pane_dead}").strip() == "1"

    def keys(self, *keys):
        self.tmux("send-keys", "-t", "t", *keys)

    def wait(self, pred, what, timeout=20):
        deadline = time.time() + timeout
        while True:
            s = self.screen()
            if pred(s):
                return s
            if time.time() > deadline:
                raise AssertionError(f"timed out waiting for {what}; screen:\n{s}")
            time.sleep(0.2)

    def close(self):
        subprocess.run([self.exe, "-S", str(self.sock), "kill-server"], capture_output=True, timeout=30)
        shutil.rmtree(self.sockdir, ignore_errors=True)


def index_lines(screen):
    return [l.rstrip() for l in screen.splitlines() if l.startswith("IDX ")]


def test_neomutt_reads_flags_and_deletes(srv, tmp_path):
    need("neomutt")
    subjects = ["first letter", "second letter", "third letter"]
    for i, s in enumerate(subjects, 1):
        raw = message(f"mutt-{i}", s, f"mutt body {i}").replace("10:00:00", f"1{i}:00:00")
        srv.cli.deliver(USER, raw)
    c = imap(srv)
    ok(c.select("INBOX"))
    ok(c.store("1", "+FLAGS", "(\\Seen)"))
    c.logout()

    home = tmp_path / "home"
    home.mkdir()
    rc = home / "muttrc"
    rc.write_text(f"""set folder="imaps://localhost:{srv.ports["imaps"]}/"
set spoolfile="+INBOX"
set imap_user="{USER}"
set imap_pass="{PW}"
set ssl_ca_certificates_file="{cert(srv)}"
set certificate_file="{home}/certificates"
set ssl_force_tls=yes
set header_cache=""
set message_cachedir=""
set sort=date
set index_format="IDX %4C [%Z] %s"
set mail_check_stats=no
set help=no
set wait_key=no
set delete=yes
set mark_old=no
set confirmappend=no
set timeout=1
set mail_check=1
""")
    t = Tmux(tmp_path, ["neomutt", "-n", "-F", str(rc)], {"HOME": str(home), "TERM": "xterm", "LC_ALL": "C.UTF-8"})
    try:
        s = t.wait(lambda s: len(index_lines(s)) == 3 and "Msgs:3" in s, "the INBOX index")
        assert index_lines(s) == [
            "IDX    1 [   ] first letter",
            "IDX    2 [N  ] second letter",
            "IDX    3 [N  ] third letter",
        ], s
        # Flag message 2 and write the change back with `$` (sync-mailbox).
        t.keys("2", "Enter")
        t.keys("F")
        t.wait(lambda s: "IDX    2 [N !] second letter" in s, "message 2 flagged")
        t.keys("$")
        deadline = time.time() + 20
        while server_flags(srv).get(2) != {"\\Flagged"} and time.time() < deadline:
            time.sleep(0.2)
        assert server_flags(srv) == {1: {"\\Seen"}, 2: {"\\Flagged"}, 3: set()}, t.screen()
        # Read message 3 in the pager: the body comes over IMAP, and it is now seen.
        t.keys("3", "Enter")
        t.keys("Enter")
        s = t.wait(lambda s: "mutt body 3" in s, "message 3 in the pager")
        assert "Subject: third letter" in s and "second line of mutt-3" in s, s
        t.keys("q")
        t.wait(lambda s: "IDX    3 [   ] third letter" in s, "back in the index")
        # Delete message 1 and sync: it is expunged on the server.
        t.keys("1", "Enter")
        t.keys("d")
        t.wait(lambda s: "IDX    1 [ D ] first letter" in s or "Del:1" in s, "message 1 marked deleted")
        t.keys("$")
        s = t.wait(lambda s: index_lines(s) == ["IDX    1 [N !] second letter", "IDX    2 [   ] third letter"],
                   "the index after expunge")
        assert server_flags(srv) == {2: {"\\Flagged"}, 3: {"\\Seen"}}, s
        # New mail shows up by itself (neomutt polls every second).
        srv.cli.deliver(USER, message("mutt-4", "fourth letter", "late").replace("10:00:00", "14:00:00"))
        t.wait(lambda s: "IDX    3 [N  ] fourth letter" in s, "the new message")
        t.keys("q")
        t.wait(lambda s: t.dead(), "neomutt to quit")
    finally:
        t.close()
