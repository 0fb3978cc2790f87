"""CONDSTORE and QRESYNC (RFC 7162) end to end, with exact responses:
MODSEQ in FETCH and in every unsolicited FETCH once enabled, CHANGEDSINCE,
STORE UNCHANGEDSINCE with [MODIFIED], SEARCH MODSEQ, STATUS HIGHESTMODSEQ,
ENABLE QRESYNC, VANISHED instead of EXPUNGE, UID FETCH (VANISHED), and the
offline resynchronisation a phone does: a client caches a mailbox, another
session changes flags and expunges, and SELECT (QRESYNC ...) gives exactly
the VANISHED set and the changed flags."""

import re

import pytest

from test_imap import PW, USER, Raw, msg


@pytest.fixture
def srv(server_factory):
    s = server_factory("[auth]\nfailure_delay_ms = 10")
    s.cli.add_user(USER, PW)
    for i in range(1, 11):
        s.cli.deliver(USER, msg(i))
    return s.start()


class Client(Raw):
    """\\Recent (IMAP4rev1) comes and goes with which session saw mail
    first; these tests are about the other flags."""

    def cmd(self, tag, text):
        out = [x for x in super().cmd(tag, text) if not x.endswith(b" RECENT\r\n")]
        return [x.replace(b" \\Recent", b"").replace(b"\\Recent ", b"").replace(b"(\\Recent)", b"()") for x in out]


def login(srv, *enable):
    r = Client(srv.ports["imap"])
    assert r.cmd("l", f"LOGIN {USER} {PW}")[-1].startswith(b"l OK")
    if enable:
        out = r.cmd("e", "ENABLE " + " ".join(enable))
        assert out[-1].startswith(b"e OK"), out
    return r


def highest(lines):
    for line in lines:
        m = re.search(rb"\[HIGHESTMODSEQ (\d+)\]", line)
        if m:
            return int(m.group(1))
    raise AssertionError(f"no HIGHESTMODSEQ in {lines!r}")


def modseqs(lines):
    """{uid: modseq} from FETCH responses."""
    out = {}
    for line in lines:
        u = re.search(rb"UID (\d+)", line)
        m = re.search(rb"MODSEQ \((\d+)\)", line)
        if b" FETCH " in line and u and m:
            out[int(u.group(1))] = int(m.group(1))
    return out


def fetches(lines):
    return [line for line in lines if b" FETCH " in line]


def test_enable_select_fetch_modseq_and_changedsince(srv):
    r = login(srv)
    out = r.cmd("e", "ENABLE CONDSTORE")
    assert out == [b"* ENABLED CONDSTORE\r\n", b"e OK ENABLE completed\r\n"]
    # ENABLED lists only what this command turned on (RFC 5161 §3.2).
    assert r.cmd("e2", "ENABLE CONDSTORE")[0] == b"* ENABLED\r\n"
    sel = r.cmd("s", "SELECT INBOX")
    top = highest(sel)
    out = r.cmd("f", "FETCH 1:3 (MODSEQ)")
    assert [re.sub(rb"\d+\)\)", b"N))", x) for x in out[:3]] == [
        b"* 1 FETCH (MODSEQ (N))\r\n",
        b"* 2 FETCH (MODSEQ (N))\r\n",
        b"* 3 FETCH (MODSEQ (N))\r\n",
    ]
    before = {int(re.search(rb"\((\d+)\)", x).group(1)) for x in out[:3]}
    assert max(before) <= top
    # Our own STORE: the FETCH carries the new MODSEQ, above HIGHESTMODSEQ.
    out = r.cmd("st", "STORE 2 +FLAGS (\\Flagged)")
    m = re.match(rb"\* 2 FETCH \(FLAGS \(\\Flagged\) MODSEQ \((\d+)\)\)\r\n", out[0])
    assert m, out
    changed_at = int(m.group(1))
    assert changed_at > top
    # A STORE that changes nothing does not change the MODSEQ (§3.1.11).
    out = r.cmd("st2", "STORE 2 +FLAGS (\\Flagged)")
    assert f"MODSEQ ({changed_at})".encode() in out[0]
    # CHANGEDSINCE gives only what changed, with MODSEQ unasked (§3.1.4.1).
    out = r.cmd("c", f"UID FETCH 1:* (FLAGS) (CHANGEDSINCE {top})")
    assert out[:-1] == [f"* 2 FETCH (UID 2 MODSEQ ({changed_at}) FLAGS (\\Flagged))\r\n".encode()]
    assert out[-1].startswith(b"c OK")
    assert r.cmd("c2", f"FETCH 1:* (FLAGS) (CHANGEDSINCE {changed_at})") == [b"c2 OK FETCH completed\r\n"]
    # STATUS HIGHESTMODSEQ (§3.1.7) is the mailbox's highest.
    out = r.cmd("stat", "STATUS INBOX (MESSAGES HIGHESTMODSEQ)")
    assert out[0] == f"* STATUS INBOX (MESSAGES 10 HIGHESTMODSEQ {changed_at})\r\n".encode()
    # SEARCH MODSEQ appends the highest mod-sequence of the matches (§3.1.5).
    out = r.cmd("se", f"SEARCH MODSEQ {changed_at}")
    assert out[0] == f"* SEARCH 2 (MODSEQ {changed_at})\r\n".encode()
    out = r.cmd("se2", f"SEARCH MODSEQ \"/flags/\\\\draft\" all {changed_at + 1}")
    assert out[0] == b"* SEARCH\r\n"
    out = r.cmd("se3", f"UID SEARCH RETURN (ALL) MODSEQ {top + 1}")
    assert out[0] == f'* ESEARCH (TAG "se3") UID ALL 2 MODSEQ {changed_at}\r\n'.encode()
    r.close()


def test_first_enabling_command_in_selected_state_reports_highestmodseq(srv):
    r = login(srv)
    sel = r.cmd("s", "SELECT INBOX")
    top = highest(sel)
    out = r.cmd("f", "FETCH 1 (UID MODSEQ)")
    assert out[0] == f"* OK [HIGHESTMODSEQ {top}] highest mod-sequence\r\n".encode()
    assert re.match(rb"\* 1 FETCH \(UID 1 MODSEQ \(\d+\)\)\r\n", out[1]), out
    # Unsolicited FETCHes from now on carry MODSEQ (§3.1).
    other = login(srv)
    other.cmd("s", "SELECT INBOX")
    other.cmd("st", "STORE 5 +FLAGS.SILENT ($Work)")
    out = r.cmd("n", "NOOP")
    line = [x for x in out if b"FETCH" in x]
    assert len(line) == 1 and re.match(rb"\* 5 FETCH \(UID 5 FLAGS \(\$Work\) MODSEQ \(\d+\)\)\r\n", line[0]), out
    r.close()
    other.close()


def test_conditional_store_and_modified(srv):
    r = login(srv, "CONDSTORE")
    top = highest(r.cmd("s", "SELECT INBOX"))
    # Everything passes: a FETCH with MODSEQ for each, even with .SILENT.
    out = r.cmd("a", f"UID STORE 6,4,8 (UNCHANGEDSINCE {top}) +FLAGS.SILENT (\\Deleted)")
    assert [re.sub(rb"\(\d+\)", b"(N)", x) for x in out] == [
        b"* 4 FETCH (UID 4 MODSEQ (N))\r\n",
        b"* 6 FETCH (UID 6 MODSEQ (N))\r\n",
        b"* 8 FETCH (UID 8 MODSEQ (N))\r\n",
        b"a OK STORE completed\r\n",
    ]
    after = modseqs(out)
    # Another session changes message 7; our conditional STORE on 5, 7, 9
    # then leaves 7 alone, names it in [MODIFIED] and shows its new flags.
    other = login(srv)
    other.cmd("s", "SELECT INBOX")
    other.cmd("o", "STORE 7 +FLAGS (\\Answered)")
    out = r.cmd("d", f"STORE 7,5,9 (UNCHANGEDSINCE {max(after.values())}) +FLAGS.SILENT (\\Seen)")
    assert out[-1] == b"d OK [MODIFIED 7] conditional STORE failed for some messages\r\n", out
    lines = fetches(out)
    assert any(re.match(rb"\* 7 FETCH \(UID 7 FLAGS \(\\Answered\) MODSEQ \(\d+\)\)", x) for x in lines), out
    assert any(re.match(rb"\* 5 FETCH \(MODSEQ \(\d+\)\)", x) for x in lines), out
    assert b"\\Seen" not in other.cmd("chk2", "FETCH 7 (FLAGS)")[0]
    # UNCHANGEDSINCE 0 always fails (§3.1.3 example 8), UID form names UIDs.
    out = r.cmd("z", "UID STORE 3 (UNCHANGEDSINCE 0) +FLAGS.SILENT ($MDNSent)")
    assert out[-1] == b"z OK [MODIFIED 3] conditional STORE failed for some messages\r\n"
    r.close()
    other.close()


def test_qresync_offline_resync(srv):
    # The phone: caches INBOX with its HIGHESTMODSEQ, then goes offline.
    phone = login(srv, "QRESYNC")
    sel = phone.cmd("s", "SELECT INBOX")
    uidvalidity = int(re.search(rb"UIDVALIDITY (\d+)", b"".join(sel)).group(1))
    cached = highest(sel)
    phone.cmd("lo", "LOGOUT")
    phone.close()
    # The laptop changes flags on 3 and 8 and expunges 2, 5 and 6.
    laptop = login(srv)
    laptop.cmd("s", "SELECT INBOX")
    laptop.cmd("a", "UID STORE 3 +FLAGS (\\Seen)")
    laptop.cmd("b", "UID STORE 8 +FLAGS ($Important)")
    laptop.cmd("c", "UID STORE 2,5,6 +FLAGS (\\Deleted)")
    laptop.cmd("d", "EXPUNGE")
    laptop.close()
    # Back online: one round trip tells the phone exactly what happened.
    phone = login(srv, "QRESYNC")
    out = phone.cmd("s", f"SELECT INBOX (QRESYNC ({uidvalidity} {cached} 1:10))")
    assert out[-1].startswith(b"s OK [READ-WRITE]"), out
    assert b"* 7 EXISTS\r\n" in out
    assert b"* VANISHED (EARLIER) 2,5:6\r\n" in out
    got = [re.sub(rb"MODSEQ \(\d+\)", b"MODSEQ (N)", x) for x in fetches(out)]
    assert got == [
        b"* 2 FETCH (UID 3 FLAGS (\\Seen) MODSEQ (N))\r\n",
        b"* 5 FETCH (UID 8 FLAGS ($Important) MODSEQ (N))\r\n",
    ]
    # The VANISHED comes before the FETCHes and after HIGHESTMODSEQ.
    order = [i for i, x in enumerate(out) if b"HIGHESTMODSEQ" in x or b"VANISHED" in x or b"FETCH" in x]
    assert b"HIGHESTMODSEQ" in out[order[0]] and b"VANISHED" in out[order[1]]
    new_top = highest(out)
    assert new_top > cached
    # Only the known UIDs count: a client that knew 1:4 hears of 2 and 3.
    out = phone.cmd("s2", f"EXAMINE INBOX (QRESYNC ({uidvalidity} {cached} 1:4))")
    assert out[0] == b"* OK [CLOSED] previous mailbox closed\r\n"
    assert b"* VANISHED (EARLIER) 2\r\n" in out
    assert len(fetches(out)) == 1
    # Up to date: nothing to report.
    out = phone.cmd("s3", f"SELECT INBOX (QRESYNC ({uidvalidity} {new_top}))")
    assert not [x for x in out if b"VANISHED" in x or b"FETCH" in x], out
    # A UIDVALIDITY that does not match is a plain SELECT (§3.2.5).
    out = phone.cmd("s4", f"SELECT INBOX (QRESYNC ({uidvalidity + 1} {cached} 1:10))")
    assert not [x for x in out if b"VANISHED" in x or b"FETCH" in x], out
    # UID FETCH (VANISHED) is the same question in the selected mailbox.
    out = phone.cmd("f", f"UID FETCH 1:10 (FLAGS) (CHANGEDSINCE {cached} VANISHED)")
    assert out[0] == b"* VANISHED (EARLIER) 2,5:6\r\n"
    assert [re.sub(rb"MODSEQ \(\d+\)", b"MODSEQ (N)", x) for x in out[1:-1]] == [
        b"* 2 FETCH (UID 3 MODSEQ (N) FLAGS (\\Seen))\r\n",
        b"* 5 FETCH (UID 8 MODSEQ (N) FLAGS ($Important))\r\n",
    ]
    phone.close()


def test_qresync_needs_enable_and_sends_vanished_not_expunge(srv):
    r = login(srv)
    out = r.cmd("s", "SELECT INBOX (QRESYNC (1 1))")
    assert out[-1].startswith(b"s BAD")
    r.cmd("s0", "SELECT INBOX")
    assert r.cmd("f", "UID FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED)")[-1].startswith(b"f BAD")
    r.cmd("u", "UNSELECT")
    assert r.cmd("e", "ENABLE QRESYNC")[0] == b"* ENABLED QRESYNC\r\n"
    r.cmd("s1", "SELECT INBOX")
    # Our own EXPUNGE: VANISHED, and HIGHESTMODSEQ in the tagged OK (§3.2.7).
    r.cmd("d", "UID STORE 1,3,4 +FLAGS.SILENT (\\Deleted)")
    out = r.cmd("x", "EXPUNGE")
    assert out[0] == b"* VANISHED 1,3:4\r\n"
    assert re.match(rb"x OK \[HIGHESTMODSEQ \d+\] EXPUNGE completed\r\n", out[1]), out
    # Another session's expunge reaches us as VANISHED too, at NOOP.
    other = login(srv)
    other.cmd("s", "SELECT INBOX")
    other.cmd("d", "UID STORE 9 +FLAGS.SILENT (\\Deleted)")
    other.cmd("x", "UID EXPUNGE 9")
    out = r.cmd("n", "NOOP")
    assert out == [b"* VANISHED 9\r\n", b"n OK NOOP completed\r\n"]
    # Untagged FETCHes carry UID and MODSEQ (§3.2.4).
    other.cmd("f", "STORE 1 +FLAGS.SILENT (\\Flagged)")
    out = r.cmd("n2", "NOOP")
    assert re.match(rb"\* 1 FETCH \(UID 2 FLAGS \(\\Flagged\) MODSEQ \(\d+\)\)\r\n", out[0]), out
    # A FETCH that sets \Seen reports UID and MODSEQ with the flags.
    out = r.cmd("b", "FETCH 2 (BODY[TEXT])")
    assert re.match(rb"\* 2 FETCH \(UID 5 MODSEQ \(\d+\) BODY\[TEXT\] \{\d+\}\r\n", out[0]), out
    r.close()
    other.close()


def test_expunges_held_during_fetch_hold_back_newer_modseqs(srv):
    """While a non-UID FETCH runs, another session's expunge may not be
    reported; neither may a newer MODSEQ, or a client that drops the
    connection would resynchronise past the expunge (RFC 7162 §3.2)."""
    r = login(srv, "QRESYNC")
    top = highest(r.cmd("s", "SELECT INBOX"))
    other = login(srv)
    other.cmd("s", "SELECT INBOX")
    other.cmd("d", "UID STORE 10 +FLAGS.SILENT (\\Deleted)")
    other.cmd("x", "EXPUNGE")
    other.cmd("f", "UID STORE 1 +FLAGS.SILENT (\\Flagged)")
    out = r.cmd("f", "FETCH 1 (FLAGS MODSEQ)")
    m = re.match(rb"\* 1 FETCH \(FLAGS \(\) MODSEQ \((\d+)\)\)\r\n", out[0])
    assert m and int(m.group(1)) <= top and out[1:] == [b"f OK FETCH completed\r\n"], out
    out = r.cmd("n", "NOOP")
    assert out[0] == b"* VANISHED 10\r\n", out
    assert re.match(rb"\* 1 FETCH \(UID 1 FLAGS \(\\Flagged\) MODSEQ \((\d+)\)\)\r\n", out[1]), out
    r.close()
    other.close()



def test_own_store_while_an_expunge_is_held_says_the_older_highestmodseq(srv):
    """A non-UID STORE may not report another session's expunge; its new
    MODSEQ would let the client resynchronise past that expunge, so the
    server adds OK [HIGHESTMODSEQ] with the value before it (RFC 7162 §3.2)."""
    r = login(srv, "QRESYNC")
    top = highest(r.cmd("s", "SELECT INBOX"))
    other = login(srv)
    other.cmd("s", "SELECT INBOX")
    other.cmd("d", "UID STORE 10 +FLAGS.SILENT (\\Deleted)")
    other.cmd("x", "EXPUNGE")
    out = r.cmd("st", "STORE 1 +FLAGS.SILENT ($Mine)")
    # The new keyword is announced first (FLAGS, PERMANENTFLAGS).
    out = [x for x in out if b"FLAGS (" not in x or b"FETCH" in x]
    m = re.match(rb"\* 1 FETCH \(UID 1 MODSEQ \((\d+)\)\)\r\n", out[0])
    assert m and int(m.group(1)) > top, out
    assert out[1] == f"* OK [HIGHESTMODSEQ {top}] highest mod-sequence\r\n".encode(), out
    assert out[2].startswith(b"st OK"), out
    # The next command that may report it does, and the count is right.
    out = r.cmd("n", "NOOP")
    assert out[0] == b"* VANISHED 10\r\n", out
    r.close()
    other.close()
