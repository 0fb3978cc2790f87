//! The `jmap-client` crate (Stalwart's, Apache-2.0 OR MIT) against a real
//! `letterbox serve`: session discovery through `/.well-known/jmap`,
//! mailboxes, import, query and get, keywords, upload, an email created
//! and submitted to another account, and EventSource push.

use futures_util::StreamExt;
use jmap_client::client::{Client, Credentials};
use jmap_client::core::query::Filter;
use jmap_client::core::response::{EmailSetResponse, IdentityGetResponse};
use jmap_client::core::set::SetObject;
use jmap_client::email::{self, Property};
use jmap_client::mailbox::{self, Role};
use jmap_client::DataType;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_letterbox");

struct Server {
    child: Child,
    http: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_ports(n: usize) -> Vec<u16> {
    let socks: Vec<TcpListener> = (0..n).map(|_| TcpListener::bind("127.0.0.1:0").unwrap()).collect();
    socks.iter().map(|s| s.local_addr().unwrap().port()).collect()
}

fn cli(config: &Path, data: &Path, args: &[&str], input: Option<&str>) {
    use std::io::Write;
    let mut c = Command::new(BIN)
        .arg("--config")
        .arg(config)
        .arg("--data")
        .arg(data)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(i) = input {
        c.stdin.take().unwrap().write_all(i.as_bytes()).unwrap();
    }
    let out = c.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn start() -> Server {
    let dir = tempfile::tempdir().unwrap();
    let services = [
        "smtp",
        "submission",
        "submissions",
        "imap",
        "imaps",
        "pop3",
        "pop3s",
        "http",
        "https",
    ];
    let ports = free_ports(services.len());
    let mut config = String::from("hostname = \"localhost\"\n[listeners]\n");
    for (s, p) in services.iter().zip(&ports) {
        config.push_str(&format!("{s} = \"127.0.0.1:{p}\"\n"));
    }
    let cfg = dir.path().join("letterbox.toml");
    std::fs::write(&cfg, config).unwrap();
    let data = dir.path().join("data");
    cli(&cfg, &data, &["domain", "add", "example.test"], None);
    cli(&cfg, &data, &["user", "add", "alice@example.test"], Some("pw-alice\n"));
    cli(&cfg, &data, &["user", "add", "bob@example.test"], Some("pw-bob\n"));
    let mut child = Command::new(BIN)
        .arg("--config")
        .arg(&cfg)
        .arg("--data")
        .arg(&data)
        .arg("--dev")
        .arg("serve")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let mut lines = BufReader::new(out).lines();
    loop {
        match lines.next() {
            Some(Ok(l)) if l.trim() == "letterbox: ready" => break,
            Some(Ok(_)) => {}
            _ => panic!("server did not start"),
        }
    }
    // Keep draining stdout so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Server {
        child,
        http: ports[7],
        _dir: dir,
    }
}

async fn connect(port: u16, user: &str, password: &str) -> Client {
    Client::new()
        .credentials(Credentials::basic(user, password))
        .follow_redirects(["127.0.0.1"])
        .timeout(Duration::from_secs(20))
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .expect("JMAP session")
}

const MESSAGE: &str = "From: Bob <bob@example.test>\r\nTo: alice@example.test\r\nSubject: Status\r\nMessage-ID: <s1@example.test>\r\n\r\nAll good here.\r\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jmap_client_crate_reads_organises_sends_and_gets_pushed() {
    let srv = start();
    let alice = connect(srv.http, "alice@example.test", "pw-alice").await;
    assert!(alice.session().username() == "alice@example.test");

    // Mailboxes with roles from special-use.
    let q = alice
        .mailbox_query(Some(mailbox::query::Filter::role(Role::Inbox)), None::<Vec<_>>)
        .await
        .unwrap();
    let inbox = q.ids()[0].to_string();
    let sent = alice
        .mailbox_query(Some(mailbox::query::Filter::role(Role::Sent)), None::<Vec<_>>)
        .await
        .unwrap()
        .ids()[0]
        .to_string();
    let mb = alice.mailbox_get(&inbox, None::<Vec<_>>).await.unwrap().unwrap();
    assert_eq!(mb.name(), Some("INBOX"));

    // Push: an EventSource stream, then a change.
    let mut push = alice
        .event_source(Some([DataType::Email, DataType::Mailbox]), false, None, None)
        .await
        .unwrap();

    // Import, query, get; keywords.
    let imported = alice
        .email_import(MESSAGE.as_bytes().to_vec(), [inbox.clone()], None::<Vec<&str>>, None)
        .await
        .unwrap();
    let id = imported.id().unwrap().to_string();
    let found = alice
        .email_query(
            Some(Filter::from(email::query::Filter::in_mailbox(&inbox))),
            None::<Vec<_>>,
        )
        .await
        .unwrap();
    assert_eq!(found.ids(), [id.as_str()]);
    let e = alice
        .email_get(
            &id,
            Some([
                Property::Subject,
                Property::From,
                Property::Keywords,
                Property::ThreadId,
            ]),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(e.subject(), Some("Status"));
    assert_eq!(e.from().unwrap()[0].email(), "bob@example.test");
    alice.email_set_keyword(&id, "$seen", true).await.unwrap();
    let e = alice.email_get(&id, Some([Property::Keywords])).await.unwrap().unwrap();
    assert!(e.keywords().contains(&"$seen"));

    // The push stream reports the new state within a few seconds.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut saw_email_change = false;
    while !saw_email_change && Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_secs(5), push.next()).await {
            Ok(Some(Ok(jmap_client::event_source::PushNotification::StateChange(changes)))) => {
                saw_email_change = changes
                    .changes(alice.default_account_id())
                    .is_some_and(|mut c| c.any(|(t, _)| *t == DataType::Email));
            }
            Ok(Some(Ok(_))) => {}
            other => panic!("push stream ended: {other:?}"),
        }
    }
    assert!(saw_email_change);

    // Upload an attachment, create an email with it, submit it to Bob.
    let up = alice
        .upload(None, b"%PDF-1.4 fake".to_vec(), Some("application/pdf"))
        .await
        .unwrap();
    assert_eq!(up.size(), 13);
    let mut request = alice.build();
    let create = request.set_email().create();
    create
        .mailbox_ids([sent.clone()])
        .from(["alice@example.test"])
        .to(["bob@example.test"])
        .subject("Quarterly report")
        .text_body(email::EmailBodyPart::new().part_id("t"))
        .body_value("t".to_string(), "Attached.")
        .attachment(
            email::EmailBodyPart::new()
                .blob_id(up.blob_id())
                .content_type("application/pdf")
                .name("q.pdf"),
        );
    let cid = create.create_id().unwrap();
    let created = request
        .send_single::<EmailSetResponse>()
        .await
        .unwrap()
        .created(&cid)
        .unwrap();
    let mut request = alice.build();
    request.get_identity();
    let identities = request.send_single::<IdentityGetResponse>().await;
    let ident = identities
        .ok()
        .and_then(|mut r| {
            r.take_list()
                .into_iter()
                .find(|i| i.email() == Some("alice@example.test"))
        })
        .expect("an identity for alice");
    alice
        .email_submission_create(created.id().unwrap(), ident.id().unwrap())
        .await
        .unwrap();

    let bob = connect(srv.http, "bob@example.test", "pw-bob").await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let ids = loop {
        let r = bob
            .email_query(
                Some(Filter::from(email::query::Filter::subject("Quarterly"))),
                None::<Vec<_>>,
            )
            .await
            .unwrap();
        if !r.ids().is_empty() || Instant::now() > deadline {
            break r.ids().to_vec();
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(ids.len(), 1);
    let got = bob
        .email_get(&ids[0], Some([Property::Attachments, Property::From]))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.attachments().unwrap()[0].name(), Some("q.pdf"));
    // Bob cannot see Alice's email by id.
    assert!(bob.email_get(&id, None::<Vec<_>>).await.unwrap().is_none());
}
