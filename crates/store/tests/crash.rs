//! Durability across `kill -9`: a child process appends messages and prints
//! each acknowledgement; the parent kills it with SIGKILL mid-stream, reopens
//! the database and checks that every acknowledged message is there, intact.

use letterbox_store::sqlite::SqliteStore;
use letterbox_store::*;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;

const CHILD_ENV: &str = "LETTERBOX_CRASH_CHILD_DB";
const ACKS_BEFORE_KILL: usize = 60;

fn body(n: u32) -> Vec<u8> {
    format!("Subject: crash {n}\r\n\r\n{}\r\n", "x".repeat(n as usize * 37 % 5000)).into_bytes()
}

/// Child half (runs only when spawned by `acknowledged_writes_survive_kill_9`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_child_writer() {
    let Ok(db) = std::env::var(CHILD_ENV) else { return };
    let store = Arc::new(SqliteStore::open(std::path::Path::new(&db)).unwrap());
    store.add_domain("example.test").await.unwrap();
    let acc = store
        .add_account("a@example.test", "h", Quota::default())
        .await
        .unwrap();
    let inbox = store.mailbox(acc, "INBOX").await.unwrap().unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    // Several concurrent writers so kills land inside group commits.
    for w in 0..4u32 {
        let (s, tx) = (store.clone(), tx.clone());
        tokio::spawn(async move {
            for i in 0.. {
                let n = w * 1_000_000 + i;
                let m = NewMessage {
                    raw: body(n),
                    flags: vec![],
                    internal_date: 0,
                };
                let a = s.append(inbox.id, m).await.unwrap();
                if tx.send((a.uid, n)).is_err() {
                    break;
                }
            }
        });
    }
    let mut out = std::io::stdout();
    while let Some((uid, n)) = rx.recv().await {
        writeln!(out, "ACK {uid} {n}").unwrap();
        out.flush().unwrap();
    }
}

#[test]
fn acknowledged_writes_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("crash.db");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "crash_child_writer", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, &db)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut acked = Vec::new();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    while acked.len() < ACKS_BEFORE_KILL {
        let line = lines.next().expect("child ended early").unwrap();
        if let Some(rest) = line.strip_prefix("ACK ") {
            let mut it = rest.split(' ');
            let uid: u32 = it.next().unwrap().parse().unwrap();
            let n: u32 = it.next().unwrap().parse().unwrap();
            acked.push((uid, n));
        }
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let store = SqliteStore::open(&db).unwrap();
        let acc = store.account("a@example.test").await.unwrap().unwrap();
        let inbox = store.mailbox(acc.id, "INBOX").await.unwrap().unwrap();
        let msgs = store.messages(inbox.id).await.unwrap();
        for (uid, n) in &acked {
            let m = msgs
                .iter()
                .find(|m| m.uid == *uid)
                .unwrap_or_else(|| panic!("acked UID {uid} lost"));
            assert_eq!(*store.raw_message(m.id).await.unwrap(), body(*n), "UID {uid} corrupted");
        }
        // Counters stay consistent with what survived.
        assert!(inbox.uid_next > msgs.last().map(|m| m.uid).unwrap_or(0));
        assert_eq!(acc.usage.messages, msgs.len() as u64);
        // And the store is writable again.
        let a = store
            .append(
                inbox.id,
                NewMessage {
                    raw: body(1),
                    flags: vec![],
                    internal_date: 0,
                },
            )
            .await
            .unwrap();
        assert!(a.uid >= inbox.uid_next);
    });
}
