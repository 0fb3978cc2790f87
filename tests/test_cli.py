"""The management CLI: every subcommand, and its errors for bad input."""

import subprocess

from conftest import BIN


def test_help_everywhere(cli):
    for args in [[], ["domain"], ["user"], ["alias"], ["config"], ["serve"], ["user", "add"]]:
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
    import sqlite3

    cli.add_user("alice@example.test", "s3cret")
    db = sqlite3.connect(cli.data_dir / "letterbox.db")
    (h,) = db.execute("SELECT password_hash FROM accounts").fetchone()
    assert h.startswith("$argon2id$")
    assert "s3cret" not in h


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
