//! The store conformance suite, part 1 (from the v1 store's tests): UID/MODSEQ rules, quota,
//! atomicity, aliases, notifications, group commit under concurrency.

use super::Backend;
use letterbox_store::*;

pub(crate) fn msg(body: &str) -> NewMessage {
    NewMessage {
        raw: format!("From: a@example.test\r\nSubject: t\r\n\r\n{body}\r\n").into_bytes(),
        flags: vec![],
        internal_date: 1_700_000_000,
    }
}

pub(crate) async fn setup(b: &dyn Backend) -> (super::Guard, SharedStore, AccountId) {
    let (dir, store) = b.fresh();
    store.add_domain("example.test").await.unwrap();
    let id = store
        .add_account("alice@example.test", "hash", Quota::default())
        .await
        .unwrap();
    (dir, store, id)
}

pub(crate) fn inbox_target(account: AccountId) -> DeliveryTarget {
    DeliveryTarget {
        special_use: None,
        account_id: account,
        mailbox: "INBOX".into(),
        flags: vec![],
    }
}

pub async fn new_account_has_special_use_mailboxes(b: &dyn Backend) {
    let (_d, store, id) = setup(b).await;
    let boxes = store.list_mailboxes(id).await.unwrap();
    let names: Vec<_> = boxes.iter().map(|m| m.name.as_str()).collect();
    for n in ["INBOX", "Sent", "Drafts", "Trash", "Junk", "Archive"] {
        assert!(names.contains(&n), "{n} missing in {names:?}");
    }
    let sent = boxes.iter().find(|m| m.name == "Sent").unwrap();
    assert_eq!(sent.special_use, Some(SpecialUse::Sent));
    assert!(sent.subscribed);
    let uvs: std::collections::HashSet<_> = boxes.iter().map(|m| m.uid_validity).collect();
    assert_eq!(uvs.len(), boxes.len(), "UIDVALIDITY values must be distinct");
}

pub async fn uids_ascend_and_are_never_reused(b: &dyn Backend) {
    let (_d, store, id) = setup(b).await;
    let inbox = store.mailbox(id, "inbox").await.unwrap().unwrap();
    let a = store.append(inbox.id, msg("1")).await.unwrap();
    let b = store.append(inbox.id, msg("2")).await.unwrap();
    assert_eq!((a.uid, b.uid), (1, 2));
    store
        .store_flags(inbox.id, &[b.uid], FlagOp::Add, &["\\deleted".into()])
        .await
        .unwrap();
    assert_eq!(store.expunge(inbox.id, None).await.unwrap(), vec![2]);
    let c = store.append(inbox.id, msg("3")).await.unwrap();
    assert_eq!(c.uid, 3, "expunged UID 2 must not be reused");
    let mb = store.mailbox_by_id(inbox.id).await.unwrap().unwrap();
    assert_eq!(mb.uid_next, 4);
    assert_eq!(mb.messages, 2);
}

pub async fn modseq_grows_and_changes_report_expunges(b: &dyn Backend) {
    let (_d, store, id) = setup(b).await;
    let inbox = store.mailbox(id, "INBOX").await.unwrap().unwrap();
    store.append(inbox.id, msg("1")).await.unwrap();
    store.append(inbox.id, msg("2")).await.unwrap();
    let before = store.mailbox_by_id(inbox.id).await.unwrap().unwrap().highest_modseq;
    let changed = store
        .store_flags(inbox.id, &[1], FlagOp::Add, &["\\Seen".into(), "$Work".into()])
        .await
        .unwrap();
    assert_eq!(changed.len(), 1);
    assert!(changed[0].modseq > before);
    assert_eq!(changed[0].flags, vec!["$Work".to_string(), "\\Seen".to_string()]);
    // A no-op STORE does not bump the modseq.
    assert!(store
        .store_flags(inbox.id, &[1], FlagOp::Add, &["\\SEEN".into()])
        .await
        .unwrap()
        .is_empty());
    store
        .store_flags(inbox.id, &[2], FlagOp::Replace, &["\\Deleted".into()])
        .await
        .unwrap();
    store.expunge(inbox.id, None).await.unwrap();
    let ch = store.changes(inbox.id, before).await.unwrap();
    assert_eq!(ch.expunged, vec![2]);
    assert_eq!(ch.changed.iter().map(|m| m.uid).collect::<Vec<_>>(), vec![1]);
    assert!(ch.highest_modseq > changed[0].modseq);
}

pub async fn deliver_stores_body_once_for_many_recipients_and_round_trips(b: &dyn Backend) {
    let (_d, store, alice) = setup(b).await;
    let bob = store
        .add_account("bob@example.test", "h", Quota::default())
        .await
        .unwrap();
    let m = msg("hello\r\n.leading dot\r\n\u{e9}t\u{e9}");
    let raw = m.raw.clone();
    let report = store
        .deliver(m, &[inbox_target(alice), inbox_target(bob), inbox_target(bob)])
        .await
        .unwrap();
    assert_eq!(report.delivered.len(), 2, "duplicate targets are delivered once");
    for acc in [alice, bob] {
        let inbox = store.mailbox(acc, "INBOX").await.unwrap().unwrap();
        let list = store.messages(inbox.id).await.unwrap();
        assert_eq!(list.len(), 1);
        assert_eq!(*store.raw_message(list[0].id).await.unwrap(), raw);
        assert_eq!(list[0].size, raw.len() as u64);
    }
}

pub async fn quota_refuses_delivery_and_append(b: &dyn Backend) {
    let (_d, store, alice) = setup(b).await;
    store
        .set_quota("alice@example.test", Quota { bytes: 0, messages: 1 })
        .await
        .unwrap();
    let r = store.deliver(msg("1"), &[inbox_target(alice)]).await.unwrap();
    assert_eq!(r.delivered.len(), 1);
    let r = store.deliver(msg("2"), &[inbox_target(alice)]).await.unwrap();
    assert!(r.delivered.is_empty());
    assert_eq!(r.over_quota, vec![(alice, false)]);
    let inbox = store.mailbox(alice, "INBOX").await.unwrap().unwrap();
    let e = store.append(inbox.id, msg("3")).await.unwrap_err();
    assert!(matches!(e, StoreError::QuotaExceeded { .. }), "{e:?}");
    store
        .set_quota("alice@example.test", Quota { bytes: 10, messages: 0 })
        .await
        .unwrap();
    let e = store
        .append(inbox.id, msg("a body far bigger than ten bytes"))
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::QuotaExceeded { permanent: true, .. }), "{e:?}");
}

pub async fn failed_copy_leaves_nothing_half_done(b: &dyn Backend) {
    let (_d, store, alice) = setup(b).await;
    let inbox = store.mailbox(alice, "INBOX").await.unwrap().unwrap();
    for i in 0..3 {
        store.append(inbox.id, msg(&i.to_string())).await.unwrap();
    }
    let usage = store.account_by_id(alice).await.unwrap().unwrap().usage;
    // Room for one more message only. Copying into another mailbox adds
    // memberships, which need no room; copying into the same mailbox makes
    // three new emails, which must fail as a whole.
    store
        .set_quota(
            "alice@example.test",
            Quota {
                bytes: 0,
                messages: usage.messages + 1,
            },
        )
        .await
        .unwrap();
    assert!(store.copy(inbox.id, &[1, 2, 3], inbox.id).await.is_err());
    assert_eq!(store.messages(inbox.id).await.unwrap().len(), 3);
    assert_eq!(store.account_by_id(alice).await.unwrap().unwrap().usage, usage);
    let trash = store.mailbox(alice, "Trash").await.unwrap().unwrap();
    let copied = store.copy(inbox.id, &[1, 2, 3], trash.id).await.unwrap();
    assert_eq!(copied.uids.len(), 3);
    assert_eq!(store.account_by_id(alice).await.unwrap().unwrap().usage, usage);
}

pub async fn move_is_copy_plus_expunge_with_copyuid_data(b: &dyn Backend) {
    let (_d, store, alice) = setup(b).await;
    let inbox = store.mailbox(alice, "INBOX").await.unwrap().unwrap();
    let archive = store.mailbox(alice, "Archive").await.unwrap().unwrap();
    store.append(inbox.id, msg("1")).await.unwrap();
    store.append(inbox.id, msg("2")).await.unwrap();
    let moved = store.move_messages(inbox.id, &[2, 1, 99], archive.id).await.unwrap();
    assert_eq!(moved.uid_validity, archive.uid_validity);
    assert_eq!(moved.uids, vec![(1, 1), (2, 2)]);
    assert!(store.messages(inbox.id).await.unwrap().is_empty());
    assert_eq!(store.changes(inbox.id, 0).await.unwrap().expunged, vec![1, 2]);
}

pub async fn rename_inbox_moves_messages_and_keeps_inbox(b: &dyn Backend) {
    let (_d, store, alice) = setup(b).await;
    let inbox = store.mailbox(alice, "INBOX").await.unwrap().unwrap();
    store.append(inbox.id, msg("1")).await.unwrap();
    store.create_mailbox(alice, "Work", None).await.unwrap();
    store.create_mailbox(alice, "Work/2026", None).await.unwrap();
    store.rename_mailbox(alice, "Work", "Jobs").await.unwrap();
    assert!(store.mailbox(alice, "Jobs/2026").await.unwrap().is_some());
    assert!(store.mailbox(alice, "Work/2026").await.unwrap().is_none());
    store.rename_mailbox(alice, "INBOX", "Old").await.unwrap();
    let old = store.mailbox(alice, "Old").await.unwrap().unwrap();
    assert_eq!(store.messages(old.id).await.unwrap().len(), 1);
    let inbox = store.mailbox(alice, "INBOX").await.unwrap().unwrap();
    assert_eq!(inbox.messages, 0);
    assert!(store.delete_mailbox(alice, "INBOX").await.is_err());
}

pub async fn recreated_mailbox_gets_new_uidvalidity(b: &dyn Backend) {
    let (_d, store, alice) = setup(b).await;
    let a = store.create_mailbox(alice, "Tmp", None).await.unwrap();
    store.delete_mailbox(alice, "Tmp").await.unwrap();
    let b = store.create_mailbox(alice, "Tmp", None).await.unwrap();
    assert_ne!(a.uid_validity, b.uid_validity);
    assert!(store.create_mailbox(alice, "Tmp", None).await.is_err());
    assert!(store.create_mailbox(alice, "bad//name", None).await.is_err());
}

pub async fn aliases_catch_all_and_subaddress_resolve(b: &dyn Backend) {
    let (_d, store, alice) = setup(b).await;
    let bob = store
        .add_account("bob@example.test", "h", Quota::default())
        .await
        .unwrap();
    store
        .add_alias(
            "team@example.test",
            &["alice@example.test".into(), "bob@example.test".into()],
        )
        .await
        .unwrap();
    store
        .add_alias("fwd@example.test", &["someone@remote.test".into()])
        .await
        .unwrap();
    let Recipient::Local(r) = store.resolve_recipient("Team@Example.test").await.unwrap() else {
        panic!()
    };
    assert_eq!(r.accounts.len(), 2);
    assert!(r.accounts.contains(&alice) && r.accounts.contains(&bob));
    let Recipient::Local(r) = store.resolve_recipient("alice+news@example.test").await.unwrap() else {
        panic!()
    };
    assert_eq!(r.accounts, vec![alice]);
    let Recipient::Local(r) = store.resolve_recipient("fwd@example.test").await.unwrap() else {
        panic!()
    };
    assert_eq!(r.external, vec!["someone@remote.test".to_string()]);
    assert_eq!(
        store.resolve_recipient("nobody@example.test").await.unwrap(),
        Recipient::Unknown
    );
    assert_eq!(
        store.resolve_recipient("x@elsewhere.test").await.unwrap(),
        Recipient::NotLocal
    );
    store
        .add_alias("@example.test", &["bob@example.test".into()])
        .await
        .unwrap();
    let Recipient::Local(r) = store.resolve_recipient("nobody@example.test").await.unwrap() else {
        panic!()
    };
    assert_eq!(r.accounts, vec![bob]);
    assert!(store
        .sender_addresses(alice)
        .await
        .unwrap()
        .contains(&"team@example.test".to_string()));
    // A loop between aliases terminates.
    store
        .add_alias("x@example.test", &["y@example.test".into()])
        .await
        .unwrap();
    store
        .add_alias("y@example.test", &["x@example.test".into()])
        .await
        .unwrap();
    assert_eq!(
        store.resolve_recipient("x@example.test").await.unwrap(),
        Recipient::Unknown
    );
}

pub async fn directory_errors_are_specific(b: &dyn Backend) {
    let (_d, store, _) = setup(b).await;
    assert!(matches!(
        store.add_domain("example.test").await,
        Err(StoreError::AlreadyExists(_))
    ));
    assert!(matches!(
        store.add_account("alice@example.test", "h", Quota::default()).await,
        Err(StoreError::AlreadyExists(_))
    ));
    assert!(matches!(
        store.add_account("x@unknown.test", "h", Quota::default()).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.add_account("not-an-address", "h", Quota::default()).await,
        Err(StoreError::Invalid(_))
    ));
    assert!(matches!(
        store.remove_domain("example.test").await,
        Err(StoreError::Invalid(_))
    ));
    store.remove_account("alice@example.test").await.unwrap();
    store.remove_domain("example.test").await.unwrap();
    assert!(store.list_domains().await.unwrap().is_empty());
}

pub async fn watchers_hear_committed_changes(b: &dyn Backend) {
    let (_d, store, alice) = setup(b).await;
    let mut rx = store.subscribe();
    let inbox = store.mailbox(alice, "INBOX").await.unwrap().unwrap();
    store.append(inbox.id, msg("1")).await.unwrap();
    let ev = rx.recv().await.unwrap();
    assert_eq!(ev.kind, ChangeKind::Added);
    assert_eq!(ev.mailbox_id, Some(inbox.id));
    store
        .store_flags(inbox.id, &[1], FlagOp::Add, &["\\Seen".into()])
        .await
        .unwrap();
    assert_eq!(rx.recv().await.unwrap().kind, ChangeKind::Flags);
}

pub async fn concurrent_deliveries_all_land_with_distinct_uids(b: &dyn Backend) {
    let (_d, store, alice) = setup(b).await;
    let mut tasks = Vec::new();
    for i in 0..200 {
        let s = store.clone();
        tasks.push(tokio::spawn(async move {
            s.deliver(msg(&format!("m{i}")), &[inbox_target(alice)]).await
        }));
    }
    let mut uids = Vec::new();
    for t in tasks {
        uids.push(t.await.unwrap().unwrap().delivered[0].2);
    }
    uids.sort_unstable();
    uids.dedup();
    assert_eq!(uids.len(), 200);
    assert_eq!(*uids.last().unwrap(), 200);
}

pub async fn data_survives_reopen(b: &dyn Backend) {
    let (guard, store) = b.fresh();
    {
        store.add_domain("example.test").await.unwrap();
        let id = store
            .add_account("alice@example.test", "h", Quota::default())
            .await
            .unwrap();
        store.deliver(msg("persist"), &[inbox_target(id)]).await.unwrap();
        store.close();
    }
    let store = b.reopen(&guard);
    let a = store.account("alice@example.test").await.unwrap().unwrap();
    let inbox = store.mailbox(a.id, "INBOX").await.unwrap().unwrap();
    let list = store.messages(inbox.id).await.unwrap();
    assert_eq!(list.len(), 1);
    assert!(String::from_utf8_lossy(&store.raw_message(list[0].id).await.unwrap()).contains("persist"));
    assert_eq!(a.usage.messages, 1);
}

pub async fn outbound_messages_are_queued_durably(b: &dyn Backend) {
    let (_d, store, _) = setup(b).await;
    let m = OutboundMessage {
        sender: "alice@example.test".into(),
        recipients: vec![OutboundRecipient {
            address: "x@remote.test".into(),
            notify: None,
            orcpt: None,
        }],
        raw: b"Subject: out\r\n\r\nhi\r\n".to_vec(),
        envid: Some("E1".into()),
        ret: None,
    };
    let id = store.enqueue(m).await.unwrap();
    let q = store.list_queue().await.unwrap();
    assert_eq!(q.len(), 1);
    assert_eq!(q[0].id, id);
    assert_eq!(q[0].recipients[0].address, "x@remote.test");
    assert_eq!(q[0].size, 20);
    let empty = OutboundMessage {
        sender: String::new(),
        recipients: vec![],
        raw: vec![],
        envid: None,
        ret: None,
    };
    assert!(store.enqueue(empty).await.is_err());
}

pub async fn bare_lf_messages_are_stored_in_wire_form(b: &dyn Backend) {
    let (_d, store, alice) = setup(b).await;
    let inbox = store.mailbox(alice, "INBOX").await.unwrap().unwrap();
    let m = NewMessage {
        raw: b"Subject: lf\n\nline\n".to_vec(),
        flags: vec![],
        internal_date: 0,
    };
    store.append(inbox.id, m).await.unwrap();
    let list = store.messages(inbox.id).await.unwrap();
    assert_eq!(
        *store.raw_message(list[0].id).await.unwrap(),
        b"Subject: lf\r\n\r\nline\r\n"
    );
    assert_eq!(list[0].size, 21);
    let info = store.message_info(list[0].id).await.unwrap();
    assert_eq!(info.subject, "lf");
}

fn outbound(rcpts: &[&str]) -> OutboundMessage {
    OutboundMessage {
        sender: "alice@example.test".into(),
        recipients: rcpts
            .iter()
            .map(|a| OutboundRecipient {
                address: a.to_string(),
                notify: None,
                orcpt: None,
            })
            .collect(),
        raw: b"Subject: out\r\n\r\nhi\r\n".to_vec(),
        envid: None,
        ret: None,
    }
}

pub async fn queue_lease_outcomes_and_schedule(b: &dyn Backend) {
    let (_d, store, _) = setup(b).await;
    let id = store
        .enqueue(outbound(&["a@r.test", "b@r.test", "c@s.test"]))
        .await
        .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    // Due at once; a claim leases it, so a second worker gets nothing.
    let got = store.claim_queue("w1", now, 60, 10).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].recipients.len(), 3);
    assert!(store.claim_queue("w2", now, 60, 10).await.unwrap().is_empty());
    // The lease expires: another worker may take it.
    assert_eq!(store.claim_queue("w2", now + 61, 60, 10).await.unwrap().len(), 1);
    // The old owner cannot finish any more.
    let end = AttemptEnd {
        outcomes: vec![],
        next_attempt: now + 100,
        warned: false,
    };
    assert!(!store.finish_attempt(id, "w1", end.clone()).await.unwrap());
    assert_eq!(
        store.queue_entry(id).await.unwrap().unwrap().lease_owner.as_deref(),
        Some("w2")
    );
    let outcome = |a: &str, s| RecipientOutcome {
        address: a.into(),
        status: s,
        error: Some("451 4.3.0 later".into()),
        remote_mta: Some("mx.r.test".into()),
    };
    store
        .record_outcomes(id, vec![outcome("a@r.test", RecipientStatus::Delivered)])
        .await
        .unwrap();
    let end = AttemptEnd {
        outcomes: vec![
            outcome("b@r.test", RecipientStatus::Failed),
            outcome("c@s.test", RecipientStatus::Pending),
            // A late report cannot undo a final state.
            outcome("a@r.test", RecipientStatus::Pending),
        ],
        next_attempt: now + 100,
        warned: true,
    };
    assert!(!store.finish_attempt(id, "w2", end).await.unwrap());
    let e = store.queue_entry(id).await.unwrap().unwrap();
    assert_eq!(e.attempts, 1);
    assert_eq!(e.next_attempt, now + 100);
    assert!(e.warned);
    assert_eq!(e.lease_owner, None);
    let st: Vec<_> = e.recipients.iter().map(|r| (r.address.as_str(), r.status)).collect();
    assert_eq!(
        st,
        vec![
            ("a@r.test", RecipientStatus::Delivered),
            ("b@r.test", RecipientStatus::Failed),
            ("c@s.test", RecipientStatus::Pending)
        ]
    );
    assert_eq!(e.recipients[2].last_error.as_deref(), Some("451 4.3.0 later"));
    // Not due before next_attempt; retry makes it due.
    assert!(store.claim_queue("w1", now + 1, 60, 10).await.unwrap().is_empty());
    assert_eq!(store.retry_queue(Some(id)).await.unwrap(), 1);
    assert_eq!(store.claim_queue("w1", now + 1, 60, 10).await.unwrap().len(), 1);
    // A restarted worker drops its leases.
    assert_eq!(store.release_leases("w1").await.unwrap(), 1);
    let got = store.claim_queue("w3", now + 1, 60, 10).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(store.queue_raw(id).await.unwrap(), b"Subject: out\r\n\r\nhi\r\n");
    // The last pending recipient done: the entry goes.
    let end = AttemptEnd {
        outcomes: vec![outcome("c@s.test", RecipientStatus::Delivered)],
        next_attempt: 0,
        warned: false,
    };
    assert!(store.finish_attempt(id, "w3", end).await.unwrap());
    assert!(store.queue_entry(id).await.unwrap().is_none());
    assert!(store.list_queue().await.unwrap().is_empty());
    let id2 = store.enqueue(outbound(&["x@r.test"])).await.unwrap();
    assert!(store.delete_queued(id2).await.unwrap());
    assert!(!store.delete_queued(id2).await.unwrap());
}

pub async fn messages_by_uid_returns_present_uids_in_order(b: &dyn Backend) {
    let (_d, store, id) = setup(b).await;
    let inbox = store.mailbox(id, "INBOX").await.unwrap().unwrap();
    for i in 0..6 {
        store.append(inbox.id, msg(&i.to_string())).await.unwrap();
    }
    store
        .store_flags(inbox.id, &[3, 4], FlagOp::Add, &["\\deleted".into()])
        .await
        .unwrap();
    assert_eq!(store.expunge(inbox.id, None).await.unwrap(), vec![3, 4]);
    let got = store.messages_by_uid(inbox.id, &[1, 2, 3, 4, 6, 9]).await.unwrap();
    let uids: Vec<u32> = got.iter().map(|m| m.uid).collect();
    assert_eq!(uids, vec![1, 2, 6]);
    let all = store.messages(inbox.id).await.unwrap();
    assert_eq!(got[2], *all.iter().find(|m| m.uid == 6).unwrap());
    assert!(store.messages_by_uid(inbox.id, &[]).await.unwrap().is_empty());
}

pub async fn repeated_changes_queries_see_every_later_commit(b: &dyn Backend) {
    let (_d, store, id) = setup(b).await;
    let inbox = store.mailbox(id, "INBOX").await.unwrap().unwrap();
    let since = inbox.highest_modseq;
    assert!(store.changes(inbox.id, since).await.unwrap().changed.is_empty());
    // Answered again from the cache: still nothing.
    assert!(store.changes(inbox.id, since).await.unwrap().changed.is_empty());
    let a = store.append(inbox.id, msg("1")).await.unwrap();
    let ch = store.changes(inbox.id, since).await.unwrap();
    assert_eq!(ch.changed.iter().map(|m| m.uid).collect::<Vec<_>>(), vec![a.uid]);
    store
        .store_flags(inbox.id, &[a.uid], FlagOp::Add, &["\\Seen".into()])
        .await
        .unwrap();
    let ch2 = store.changes(inbox.id, since).await.unwrap();
    assert_eq!(ch2.changed[0].flags, vec!["\\Seen".to_string()]);
    assert!(ch2.highest_modseq > ch.highest_modseq);
    // Asking from the highest modseq: nothing, until the next commit.
    let top = ch2.highest_modseq;
    assert_eq!(
        store.changes(inbox.id, top).await.unwrap(),
        Changes {
            highest_modseq: top,
            ..Changes::default()
        }
    );
    let c = store.append(inbox.id, msg("2")).await.unwrap();
    let ch3 = store.changes(inbox.id, top).await.unwrap();
    assert_eq!(ch3.changed.iter().map(|m| m.uid).collect::<Vec<_>>(), vec![c.uid]);
    let top = ch3.highest_modseq;
    assert!(store.changes(inbox.id, top).await.unwrap().changed.is_empty());
    store.expunge(inbox.id, None).await.unwrap();
    store
        .store_flags(inbox.id, &[c.uid], FlagOp::Add, &["\\Deleted".into()])
        .await
        .unwrap();
    store.expunge(inbox.id, None).await.unwrap();
    assert_eq!(store.changes(inbox.id, top).await.unwrap().expunged, vec![c.uid]);
    let ch2 = store.changes(inbox.id, since).await.unwrap();
    // Many concurrent askers all get the same, current answer.
    let mut asks = tokio::task::JoinSet::new();
    for _ in 0..50 {
        let store = store.clone();
        asks.spawn(async move { store.changes(inbox.id, since).await.unwrap() });
    }
    while let Some(got) = asks.join_next().await {
        assert_eq!(got.unwrap(), ch2);
    }
}

pub async fn append_many_is_all_or_nothing(b: &dyn Backend) {
    let (_d, store, id) = setup(b).await;
    let inbox = store.mailbox(id, "INBOX").await.unwrap().unwrap();
    let got = store
        .append_many(inbox.id, vec![msg("1"), msg("2"), msg("3")])
        .await
        .unwrap();
    assert_eq!(got.iter().map(|a| a.uid).collect::<Vec<_>>(), vec![1, 2, 3]);
    // Over quota on the third message: none of the three is stored.
    let used = store.account_by_id(id).await.unwrap().unwrap().usage.bytes;
    let one = msg("4").raw.len() as u64;
    store
        .set_quota(
            "alice@example.test",
            Quota {
                bytes: used + 2 * one + one / 2,
                messages: 0,
            },
        )
        .await
        .unwrap();
    let err = store
        .append_many(inbox.id, vec![msg("4"), msg("5"), msg("6")])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::QuotaExceeded { .. }), "{err:?}");
    assert_eq!(store.messages(inbox.id).await.unwrap().len(), 3);
    let next = store.append(inbox.id, msg("7")).await.unwrap();
    assert_eq!(next.uid, 4, "UIDs of a rolled-back append are not used");
}

/// Issue 18: bodies held after an expunge count against the byte quota
/// and are let go when space is short, so expunge-and-append cannot grow
/// an account past its quota.
pub async fn held_expunged_bodies_yield_to_the_quota(b: &dyn Backend) {
    let (_d, store, alice) = setup(b).await;
    let inbox = store.mailbox(alice, "INBOX").await.unwrap().unwrap();
    let one = msg(&"x".repeat(600));
    let size = one.raw.len() as u64;
    // Unlimited: the body stays held for its grace period.
    store.append(inbox.id, one.clone()).await.unwrap();
    store.expunge_all_for_test(inbox.id).await;
    store.append(inbox.id, one.clone()).await.unwrap();
    assert_eq!(store.expunged_ids(inbox.id, &[1]).await.unwrap().len(), 1);
    // Room for one and a half: the next append lets the held bodies go.
    store
        .set_quota(
            "alice@example.test",
            Quota {
                bytes: size * 3 / 2,
                messages: 0,
            },
        )
        .await
        .unwrap();
    store.expunge_all_for_test(inbox.id).await;
    assert_eq!(store.expunged_ids(inbox.id, &[1, 2]).await.unwrap().len(), 2);
    store.append(inbox.id, one.clone()).await.unwrap();
    assert!(store.expunged_ids(inbox.id, &[1, 2]).await.unwrap().is_empty());
    // And the quota still holds for what is stored.
    let e = store.append(inbox.id, one).await.unwrap_err();
    assert!(matches!(e, StoreError::QuotaExceeded { .. }), "{e:?}");
}

trait ExpungeAll {
    async fn expunge_all_for_test(&self, mailbox: MailboxId);
}

impl ExpungeAll for SharedStore {
    async fn expunge_all_for_test(&self, mailbox: MailboxId) {
        let uids: Vec<u32> = self.messages(mailbox).await.unwrap().iter().map(|m| m.uid).collect();
        self.store_flags(mailbox, &uids, FlagOp::Add, &["\\Deleted".to_string()])
            .await
            .unwrap();
        self.expunge(mailbox, None).await.unwrap();
    }
}

/// A mailbox's counts as its messages give them.
async fn recount(store: &SharedStore, mailbox: MailboxId) -> (u32, u32, u64) {
    let list = store.messages(mailbox).await.unwrap();
    let unseen = list.iter().filter(|m| !m.flags.iter().any(|f| f == "\\Seen")).count() as u32;
    (list.len() as u32, unseen, list.iter().map(|m| m.size).sum())
}

async fn counts(store: &SharedStore, mailbox: MailboxId) -> (u32, u32, u64) {
    let m = store.mailbox_by_id(mailbox).await.unwrap().unwrap();
    (m.messages, m.unseen, m.size)
}

/// The counts a mailbox reports (messages, unseen, bytes) stay exact
/// through every change that moves them, without a scan to compute them.
pub async fn mailbox_counts_follow_every_change(b: &dyn Backend) {
    let (_d, store, alice) = setup(b).await;
    let inbox = store.mailbox(alice, "INBOX").await.unwrap().unwrap().id;
    let trash = store.mailbox(alice, "Trash").await.unwrap().unwrap().id;
    let check = |label: &'static str| {
        let store = store.clone();
        async move {
            for mb in [inbox, trash] {
                assert_eq!(
                    counts(&store, mb).await,
                    recount(&store, mb).await,
                    "{label}, mailbox {mb}"
                );
            }
        }
    };
    for i in 0..4 {
        let mut m = msg(&"x".repeat(10 * (i + 1)));
        if i == 0 {
            m.flags = vec!["\\Seen".into()];
        }
        store.append(inbox, m).await.unwrap();
    }
    check("after appends").await;
    store
        .store_flags(inbox, &[2, 3], FlagOp::Add, &["\\Seen".to_string()])
        .await
        .unwrap();
    check("after \\Seen added").await;
    store
        .store_flags(inbox, &[1], FlagOp::Remove, &["\\Seen".to_string()])
        .await
        .unwrap();
    check("after \\Seen removed").await;
    store.copy(inbox, &[1, 2], trash).await.unwrap();
    check("after copy").await;
    store
        .store_flags(trash, &[1], FlagOp::Add, &["\\Seen".to_string()])
        .await
        .unwrap();
    check("after \\Seen on an email in two mailboxes").await;
    store.move_messages(inbox, &[3], trash).await.unwrap();
    check("after move").await;
    store
        .store_flags(inbox, &[4], FlagOp::Add, &["\\Deleted".to_string()])
        .await
        .unwrap();
    store.expunge(inbox, None).await.unwrap();
    check("after expunge").await;
    let ids: Vec<EmailId> = store.messages(trash).await.unwrap().iter().map(|m| m.id).collect();
    store.destroy_emails(alice, &ids[..1]).await.unwrap();
    check("after destroy").await;
    assert!(counts(&store, trash).await.0 > 0);
}
