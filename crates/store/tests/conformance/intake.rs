//! The store conformance suite, part 3: `Store::accept`, one mail
//! transaction in one store transaction (RFC 5321 §6.1: after a 250,
//! deliver or bounce). Local copies, the queue entry for remote recipients
//! and forwards, and bounces for accounts over quota commit together or
//! not at all.

use super::basics::{inbox_target, msg, setup};
use super::Backend;
use letterbox_store::*;

fn remote(address: &str) -> OutboundRecipient {
    OutboundRecipient {
        address: address.into(),
        notify: None,
        orcpt: None,
    }
}

fn intake(sender: &str, targets: Vec<DeliveryTarget>, remote_rcpts: &[&str], over_quota: OverQuota) -> Intake {
    Intake {
        locals: LocalCopy::only(msg("intake"), targets),
        local_dsn: Vec::new(),
        outbound: OutboundMessage {
            sender: sender.into(),
            recipients: remote_rcpts.iter().map(|a| remote(a)).collect(),
            raw: b"Subject: t\r\n\r\nintake\r\n".to_vec(),
            envid: None,
            ret: None,
        },
        over_quota,
        submission: None,
    }
}

async fn inbox_count(store: &SharedStore, account: AccountId) -> usize {
    let inbox = store.mailbox(account, "INBOX").await.unwrap().unwrap();
    store.messages(inbox.id).await.unwrap().len()
}

/// A second account, full: one message stored, a quota of one message.
async fn full_bob(store: &SharedStore) -> AccountId {
    let bob = store
        .add_account("bob@example.test", "hash", Quota::default())
        .await
        .unwrap();
    store.deliver(msg("earlier"), &[inbox_target(bob)]).await.unwrap();
    store
        .set_quota("bob@example.test", Quota { bytes: 0, messages: 1 })
        .await
        .unwrap();
    bob
}

pub async fn accept_commits_local_copies_and_queue_entry_together(b: &dyn Backend) {
    let (_d, store, alice) = setup(b).await;
    let mut events = store.subscribe();
    let a = store
        .accept(intake(
            "x@remote.test",
            vec![inbox_target(alice)],
            &["fwd@far.test"],
            OverQuota::Bounce,
        ))
        .await
        .unwrap();
    assert_eq!(a.delivered.len(), 1);
    assert!(a.bounced.is_empty() && a.dropped.is_empty());
    let id = a.queue_id.expect("a queue entry for the remote recipient");
    let q = store.list_queue().await.unwrap();
    assert_eq!(q.len(), 1);
    assert_eq!(q[0].id, id);
    assert_eq!(q[0].sender, "x@remote.test");
    assert_eq!(q[0].recipients.len(), 1);
    assert_eq!(q[0].recipients[0].address, "fwd@far.test");
    assert_eq!(q[0].recipients[0].status, RecipientStatus::Pending);
    assert_eq!(inbox_count(&store, alice).await, 1);
    let mut kinds = Vec::new();
    while let Ok(e) = events.try_recv() {
        kinds.push(e.kind);
    }
    assert!(
        kinds.contains(&ChangeKind::Added) && kinds.contains(&ChangeKind::Queued),
        "{kinds:?}"
    );
    // Local only: no queue entry.
    let a = store
        .accept(intake(
            "x@remote.test",
            vec![inbox_target(alice)],
            &[],
            OverQuota::Bounce,
        ))
        .await
        .unwrap();
    assert_eq!(a.queue_id, None);
    assert_eq!(store.list_queue().await.unwrap().len(), 1);
}

pub async fn accept_is_all_or_nothing(b: &dyn Backend) {
    let (_d, store, alice) = setup(b).await;
    let bob = full_bob(&store).await;
    // Refuse: alice's copy was written inside the transaction before bob's
    // quota failed; it must be rolled back with the queue entry.
    let r = store
        .accept(intake(
            "x@remote.test",
            vec![inbox_target(alice), inbox_target(bob)],
            &["fwd@far.test"],
            OverQuota::Refuse,
        ))
        .await;
    assert!(
        matches!(r, Err(StoreError::QuotaExceeded { permanent: false, .. })),
        "{r:?}"
    );
    assert_eq!(inbox_count(&store, alice).await, 0);
    assert_eq!(inbox_count(&store, bob).await, 1);
    assert!(store.list_queue().await.unwrap().is_empty());
    let usage = store.account_by_id(alice).await.unwrap().unwrap().usage;
    assert_eq!(usage.messages, 0, "quota charged in a rolled-back delivery is not kept");
    // A remote address that is not one: nothing either.
    let r = store
        .accept(intake(
            "x@remote.test",
            vec![inbox_target(alice)],
            &["no-at-sign"],
            OverQuota::Bounce,
        ))
        .await;
    assert!(matches!(r, Err(StoreError::Invalid(_))), "{r:?}");
    assert_eq!(inbox_count(&store, alice).await, 0);
    assert!(store.list_queue().await.unwrap().is_empty());
}

pub async fn accept_bounces_over_quota_accounts_in_the_same_entry(b: &dyn Backend) {
    let (_d, store, alice) = setup(b).await;
    let bob = full_bob(&store).await;
    let mut i = intake(
        "x@remote.test",
        vec![inbox_target(alice), inbox_target(bob)],
        &["fwd@far.test"],
        OverQuota::Bounce,
    );
    i.local_dsn = vec![LocalDsn {
        account_id: bob,
        notify: Some("FAILURE".into()),
        orcpt: Some("rfc822;bob@example.test".into()),
    }];
    let a = store.accept(i).await.unwrap();
    assert_eq!(a.delivered.len(), 1);
    assert_eq!(a.bounced, vec![(bob, false)]);
    assert_eq!(inbox_count(&store, alice).await, 1);
    assert_eq!(inbox_count(&store, bob).await, 1, "bob's copy is not stored");
    let id = a.queue_id.unwrap();
    let e = store.queue_entry(id).await.unwrap().unwrap();
    assert_eq!(e.sender, "x@remote.test");
    let by = |addr: &str| e.recipients.iter().find(|r| r.address == addr).cloned().unwrap();
    assert_eq!(by("fwd@far.test").status, RecipientStatus::Pending);
    let bounce = by("bob@example.test");
    assert_eq!(bounce.status, RecipientStatus::Bounce);
    assert_eq!(bounce.notify.as_deref(), Some("FAILURE"));
    assert_eq!(bounce.orcpt.as_deref(), Some("rfc822;bob@example.test"));
    assert!(
        bounce.last_error.as_deref().unwrap_or("").contains("5.2.2"),
        "{bounce:?}"
    );

    // Local only, bob over quota: the entry holds just the bounce.
    let a = store
        .accept(intake(
            "x@remote.test",
            vec![inbox_target(alice), inbox_target(bob)],
            &[],
            OverQuota::Bounce,
        ))
        .await
        .unwrap();
    let e = store.queue_entry(a.queue_id.unwrap()).await.unwrap().unwrap();
    assert_eq!(e.recipients.len(), 1);
    assert_eq!(e.recipients[0].status, RecipientStatus::Bounce);

    // Every recipient fails: refused, nothing queued.
    let before = store.list_queue().await.unwrap().len();
    let r = store
        .accept(intake("x@remote.test", vec![inbox_target(bob)], &[], OverQuota::Bounce))
        .await;
    assert!(matches!(r, Err(StoreError::QuotaExceeded { .. })), "{r:?}");
    assert_eq!(store.list_queue().await.unwrap().len(), before);
}

pub async fn accept_never_bounces_a_null_sender(b: &dyn Backend) {
    let (_d, store, alice) = setup(b).await;
    let bob = full_bob(&store).await;
    // Temporary: refused for everyone (the sending server keeps it).
    let r = store
        .accept(intake(
            "",
            vec![inbox_target(alice), inbox_target(bob)],
            &["fwd@far.test"],
            OverQuota::Bounce,
        ))
        .await;
    assert!(
        matches!(r, Err(StoreError::QuotaExceeded { permanent: false, .. })),
        "{r:?}"
    );
    assert_eq!(inbox_count(&store, alice).await, 0);
    assert!(store.list_queue().await.unwrap().is_empty());
    // Can never fit: the others get it, bob's copy is dropped, no report.
    store
        .set_quota("bob@example.test", Quota { bytes: 10, messages: 0 })
        .await
        .unwrap();
    let a = store
        .accept(intake(
            "",
            vec![inbox_target(alice), inbox_target(bob)],
            &[],
            OverQuota::Bounce,
        ))
        .await
        .unwrap();
    assert_eq!(a.delivered.len(), 1);
    assert_eq!(a.dropped, vec![bob]);
    assert!(a.bounced.is_empty());
    assert_eq!(a.queue_id, None);
    assert!(store.list_queue().await.unwrap().is_empty());
}

pub async fn owed_bounces_keep_the_entry_until_reported(b: &dyn Backend) {
    let (_d, store, alice) = setup(b).await;
    let bob = full_bob(&store).await;
    let a = store
        .accept(intake(
            "x@remote.test",
            vec![inbox_target(alice), inbox_target(bob)],
            &[],
            OverQuota::Bounce,
        ))
        .await
        .unwrap();
    let id = a.queue_id.unwrap();
    let now = unix_now();
    let claimed = store.claim_queue("n1", now, 60, 10).await.unwrap();
    assert_eq!(claimed.len(), 1, "an entry owing a bounce is due at once");
    // The report could not be stored: still owed, the entry stays.
    let still_owed = RecipientOutcome {
        address: "bob@example.test".into(),
        status: RecipientStatus::Bounce,
        error: None,
        remote_mta: None,
    };
    let end = |o: RecipientOutcome| AttemptEnd {
        outcomes: vec![o],
        next_attempt: now,
        warned: false,
    };
    assert!(!store.finish_attempt(id, "n1", end(still_owed)).await.unwrap());
    let e = store.queue_entry(id).await.unwrap().unwrap();
    assert_eq!(e.recipients[0].status, RecipientStatus::Bounce);
    assert!(e.recipients[0].last_error.is_some(), "the reason is kept");
    // A late "pending" never reopens it.
    store
        .record_outcomes(
            id,
            vec![RecipientOutcome {
                address: "bob@example.test".into(),
                status: RecipientStatus::Pending,
                error: None,
                remote_mta: None,
            }],
        )
        .await
        .unwrap();
    assert_eq!(
        store.queue_entry(id).await.unwrap().unwrap().recipients[0].status,
        RecipientStatus::Bounce
    );
    // Reported: failed, and the entry is done.
    store.claim_queue("n1", now, 60, 10).await.unwrap();
    let reported = RecipientOutcome {
        address: "bob@example.test".into(),
        status: RecipientStatus::Failed,
        error: None,
        remote_mta: None,
    };
    assert!(store.finish_attempt(id, "n1", end(reported)).await.unwrap());
    assert!(store.list_queue().await.unwrap().is_empty());
}
