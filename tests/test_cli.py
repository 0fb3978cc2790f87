"""The management CLI: every subcommand, and its errors for bad input."""

import json
import os
import subprocess
import time

from conftest import BIN


def test_help_everywhere(cli):
    for args in [[], ["domain"], ["user"], ["alias"], ["config"], ["serve"], ["user", "add"], ["export"]]:
        p = subprocess.run([BIN, *args, "--help"], capture_output=True, text=True)
        assert p.returncode == 0, (args, p.stderr)
        assert "Usage:" in p.stdout


def test_domain_add_list_remove(cli):
    assert cli.run("domain", "add", "Example.TEST").returncode == 0
    assert cli.run("domain", "list").stdout.split() == ["example.test"]
    p = cli.run("domain", "add", "example.test")
    assert p.returncode != 0 and "already exists" in p.stderr
    p = cli.run("domain", "add", "not a domain")
    assert p.returncode != 0 and "not a valid domain" in p.stderr
    assert cli.run("domain", "remove", "example.test").returncode == 0
    assert cli.run("domain", "list").stdout.strip() == ""
    p = cli.run("domain", "remove", "example.test")
    assert p.returncode != 0 and "does not exist" in p.stderr


def test_user_lifecycle_and_errors(cli):
    cli.run("domain", "add", "example.test", check=True)
    p = cli.run("user", "add", "alice@example.test", input="s3cret\n")
    assert p.returncode == 0, p.stderr
    listing = cli.run("user", "list", check=True).stdout
    assert "alice@example.test" in listing
    p = cli.run("user", "add", "alice@example.test", input="x\n")
    assert p.returncode != 0 and "already exists" in p.stderr
    p = cli.run("user", "add", "bob@unknown.test", input="x\n")
    assert p.returncode != 0 and "domain unknown.test" in p.stderr
    p = cli.run("user", "add", "no-at-sign", input="x\n")
    assert p.returncode != 0 and "not an address" in p.stderr
    p = cli.run("user", "add", "carol@example.test", input="\n")
    assert p.returncode != 0 and "must not be empty" in p.stderr
    assert cli.run("user", "passwd", "alice@example.test", input="n3w\n").returncode == 0
    p = cli.run("user", "passwd", "zed@example.test", input="n3w\n")
    assert p.returncode != 0 and "does not exist" in p.stderr
    p = cli.run("user", "quota", "alice@example.test", "--quota-bytes", "1000", "--quota-messages", "5")
    assert p.returncode == 0 and "1000 bytes, 5 messages" in p.stdout
    p = cli.run("domain", "remove", "example.test")
    assert p.returncode != 0 and "account" in p.stderr
    assert cli.run("user", "remove", "alice@example.test").returncode == 0
    assert "alice@example.test" not in cli.run("user", "list").stdout
    p = cli.run("user", "remove", "alice@example.test")
    assert p.returncode != 0


def test_password_is_stored_as_argon2id(cli):
    cli.add_user("alice@example.test", "s3cret")
    p = cli.run("user", "list", "--json", check=True)
    [a] = json.loads(p.stdout)
    assert a["address"] == "alice@example.test"
    # The PHC algorithm id of the stored hash; a plaintext or malformed
    # password column has none (null).
    assert a["password_scheme"] == "argon2id"
    # The listing never shows the password or its hash.
    assert "s3cret" not in p.stdout and "$argon2" not in p.stdout


def test_user_list_json_shows_quota_and_usage(cli):
    cli.add_user("alice@example.test", "pw")
    cli.run("user", "quota", "alice@example.test", "--quota-bytes", "100000", "--quota-messages", "0", check=True)
    msg = b"Subject: hi\r\n\r\nhello\r\n"
    cli.deliver("alice@example.test", msg)
    [a] = cli.accounts()
    assert a["quota"] == {"bytes": 100000, "messages": 0}
    assert a["usage"] == {"bytes": len(msg), "messages": 1}
    assert "password_hash" not in a


def test_export_mbox_and_json(cli):
    cli.add_user("alice@example.test", "pw")
    first = (
        b"Return-Path: <bob@example.test>\r\nFrom: bob@example.test\r\nSubject: one\r\n\r\n"
        b"From the start\r\n>From quoted\r\nFrom\r\nbye\r\n"
    )
    second = b"Subject: two\r\n\r\n" + bytes(b for b in range(256) if b not in b"\r\n") + b"\r\nno final newline"
    archived = b"Subject: three\r\n\r\nold\r\n"
    cli.deliver("alice@example.test", first)
    cli.deliver("alice@example.test", second)
    cli.deliver("alice@example.test", archived, mailbox="Archive")

    # JSON: every mailbox, by mailbox then UID, the exact stored bytes.
    msgs = cli.export("alice@example.test")
    assert [(m["mailbox"], m["uid"]) for m in msgs] == [("Archive", 1), ("INBOX", 1), ("INBOX", 2)]
    assert [m["raw"] for m in msgs] == [archived, first, second]
    assert all(m["flags"] == [] and isinstance(m["internal_date"], int) for m in msgs)
    assert [m["raw"] for m in cli.export("alice@example.test", "INBOX")] == [first, second]

    # mbox (the default): RFC 4155 mboxrd, LF line ends, ">From " quoting.
    p = subprocess.run(
        [BIN, "--data", str(cli.data_dir), "export", "alice@example.test", "--mailbox", "INBOX"],
        capture_output=True,
    )
    assert p.returncode == 0, p.stderr
    dates = [time.asctime(time.gmtime(m["internal_date"])).encode() for m in msgs[1:]]
    assert p.stdout == (
        b"From bob@example.test " + dates[0] + b"\n"
        b"Return-Path: <bob@example.test>\nFrom: bob@example.test\nSubject: one\n\n"
        b">From the start\n>>From quoted\nFrom\nbye\n\n"
        b"From MAILER-DAEMON " + dates[1] + b"\n" + second.replace(b"\r\n", b"\n") + b"\n\n"
    )

    p = cli.run("export", "alice@example.test", "--mailbox", "Nope")
    assert p.returncode != 0 and "no mailbox Nope" in p.stderr
    p = cli.run("export", "zed@example.test")
    assert p.returncode != 0 and "does not exist" in p.stderr
    p = cli.run("export", "alice@example.test", "--format", "xml")
    assert p.returncode != 0


def test_alias_add_list_remove(cli):
    cli.add_user("alice@example.test", "pw")
    assert cli.run("alias", "add", "postmaster@example.test", "alice@example.test").returncode == 0
    assert cli.run("alias", "add", "@example.test", "alice@example.test").returncode == 0
    out = cli.run("alias", "list", check=True).stdout
    assert "postmaster@example.test -> alice@example.test" in out
    assert "@example.test -> alice@example.test" in out
    p = cli.run("alias", "add", "postmaster@example.test", "alice@example.test")
    assert p.returncode != 0 and "already exists" in p.stderr
    p = cli.run("alias", "add", "x@nowhere.test", "alice@example.test")
    assert p.returncode != 0 and "nowhere.test" in p.stderr
    p = cli.run("alias", "add", "x@example.test")
    assert p.returncode != 0
    assert cli.run("alias", "remove", "postmaster@example.test").returncode == 0
    p = cli.run("alias", "remove", "postmaster@example.test")
    assert p.returncode != 0 and "does not exist" in p.stderr


def test_config_check(tmp_path, cli):
    good = tmp_path / "good.toml"
    good.write_text('hostname = "mail.example.test"\n[listeners]\nimap = "127.0.0.1:1143"\n')
    p = subprocess.run([BIN, "--config", str(good), "config", "check"], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert "127.0.0.1:1143" in p.stdout
    bad = tmp_path / "bad.toml"
    bad.write_text('[listeners]\nimap = "not-an-address"\n')
    p = subprocess.run([BIN, "--config", str(bad), "config", "check"], capture_output=True, text=True)
    assert p.returncode != 0
    assert "listeners.imap" in p.stderr
    typo = tmp_path / "typo.toml"
    typo.write_text("[limits]\nmax_conections = 5\n")
    p = subprocess.run([BIN, "--config", str(typo), "config", "check"], capture_output=True, text=True)
    assert p.returncode != 0 and "max_conections" in p.stderr
    p = subprocess.run([BIN, "--config", str(tmp_path / "missing.toml"), "config", "check"], capture_output=True, text=True)
    assert p.returncode != 0 and "missing.toml" in p.stderr


def test_data_dir_from_environment(tmp_path):
    env_dir = tmp_path / "envdata"
    import os

    env = dict(os.environ, LETTERBOX_DATA=str(env_dir))
    p = subprocess.run([BIN, "domain", "add", "example.test"], capture_output=True, text=True, env=env)
    assert p.returncode == 0, p.stderr
    assert (env_dir / "letterbox.db").exists()


def test_config_check_validates_tls_files(tmp_path):
    cfg = tmp_path / "tls.toml"
    (tmp_path / "cert.pem").write_text("not a certificate\n")
    (tmp_path / "key.pem").write_text("not a key\n")
    cfg.write_text(f'[tls]\ncert = "{tmp_path / "cert.pem"}"\nkey = "{tmp_path / "key.pem"}"\n')
    p = subprocess.run([BIN, "--config", str(cfg), "config", "check"], capture_output=True, text=True)
    assert p.returncode != 0
    assert "tls.cert" in p.stderr
    cfg.write_text(f'[tls]\ncert = "{tmp_path / "missing.pem"}"\nkey = "{tmp_path / "key.pem"}"\n')
    p = subprocess.run([BIN, "--config", str(cfg), "config", "check"], capture_output=True, text=True)
    assert p.returncode != 0 and "missing.pem" in p.stderr


def test_output_into_a_closed_pipe_ends_quietly(cli):
    cli.run("domain", "add", "example.test", check=True)
    # `letterbox dns ... | head -0`: the reader is gone before the first write.
    r, w = os.pipe()
    os.close(r)
    p = subprocess.run([BIN, "--data", str(cli.data_dir), "dns", "example.test"], stdout=w, stderr=subprocess.PIPE,
                       text=True, timeout=60)
    os.close(w)
    assert "panicked" not in p.stderr, p.stderr
    assert p.returncode in (-13, 141), (p.returncode, p.stderr)  # SIGPIPE, as Unix tools end
