//! The store conformance suite, part 3: the account-wide writes JMAP
//! uses (Email/set patches and destroys, import, mailbox counts,
//! uploads and blob access), seen from IMAP's side too.

use super::basics::setup;
use super::Backend;
use letterbox_store::*;

fn mail(subject: &str) -> NewMessage {
    NewMessage {
        raw: format!("From: a@example.test\r\nSubject: {subject}\r\n\r\nbody\r\n").into_bytes(),
        flags: vec![],
        internal_date: 1_700_000_000,
    }
}

async fn mailbox(store: &SharedStore, account: AccountId, name: &str) -> Mailbox {
    store.mailbox(account, name).await.unwrap().unwrap()
}

fn patch() -> EmailPatch {
    EmailPatch::default()
}

pub async fn patches_change_keywords_everywhere_and_move_between_mailboxes(b: &dyn Backend) {
    let (_g, store, alice) = setup(b).await;
    let inbox = mailbox(&store, alice, "INBOX").await;
    let archive = mailbox(&store, alice, "Archive").await;
    let a = store.append(inbox.id, mail("one")).await.unwrap();
    let state = store.state(alice, DataType::Email).await.unwrap();
    let inbox_before = mailbox(&store, alice, "INBOX").await.highest_modseq;

    let out = store
        .update_emails(
            alice,
            vec![
                (
                    a.id,
                    EmailPatch {
                        add_keywords: vec!["\\Seen".into(), "$work".into()],
                        ..patch()
                    },
                ),
                (
                    a.id + 1000,
                    EmailPatch {
                        add_keywords: vec!["\\Seen".into()],
                        ..patch()
                    },
                ),
                (
                    a.id,
                    EmailPatch {
                        add_keywords: vec!["\\Deleted".into()],
                        ..patch()
                    },
                ),
            ],
        )
        .await
        .unwrap();
    assert_eq!(out[0], PatchOutcome::Updated);
    assert_eq!(out[1], PatchOutcome::NotFound);
    assert!(matches!(out[2], PatchOutcome::Invalid(_)), "{out:?}");
    // IMAP sees the keywords, with a higher modseq.
    let ch = store.changes(inbox.id, inbox_before).await.unwrap();
    assert_eq!(ch.changed.len(), 1);
    assert_eq!(ch.changed[0].flags, vec!["$work", "\\Seen"]);
    let c = store.object_changes(alice, DataType::Email, state, 100).await.unwrap();
    assert_eq!((c.created, c.updated, c.destroyed), (vec![], vec![a.id], vec![]));

    // Move: add Archive, remove INBOX; INBOX gets an expunge, Archive a new UID.
    let mb_state = store.state(alice, DataType::Mailbox).await.unwrap();
    let before = mailbox(&store, alice, "INBOX").await.highest_modseq;
    let out = store
        .update_emails(
            alice,
            vec![(
                a.id,
                EmailPatch {
                    mailboxes: Some(vec![archive.id]),
                    remove_keywords: vec!["$WORK".into()],
                    ..patch()
                },
            )],
        )
        .await
        .unwrap();
    assert_eq!(out, vec![PatchOutcome::Updated]);
    assert_eq!(store.changes(inbox.id, before).await.unwrap().expunged, vec![a.uid]);
    let moved = store.messages(archive.id).await.unwrap();
    assert_eq!(moved.len(), 1);
    assert_eq!(moved[0].id, a.id);
    assert_eq!(moved[0].flags, vec!["\\Seen"]);
    let e = &store.emails(alice, &[a.id]).await.unwrap()[0];
    assert_eq!(e.mailboxes, vec![archive.id]);
    let mc = store
        .object_changes(alice, DataType::Mailbox, mb_state, 100)
        .await
        .unwrap();
    let mut touched = vec![inbox.id, archive.id];
    touched.sort_unstable();
    assert_eq!(mc.updated, touched);

    // An email cannot leave every mailbox, nor join another account's.
    store
        .add_account("bob@example.test", "h", Quota::default())
        .await
        .unwrap();
    let bob = store.account("bob@example.test").await.unwrap().unwrap().id;
    let bob_inbox = mailbox(&store, bob, "INBOX").await;
    let out = store
        .update_emails(
            alice,
            vec![
                (
                    a.id,
                    EmailPatch {
                        remove_mailboxes: vec![archive.id],
                        ..patch()
                    },
                ),
                (
                    a.id,
                    EmailPatch {
                        add_mailboxes: vec![bob_inbox.id],
                        ..patch()
                    },
                ),
            ],
        )
        .await
        .unwrap();
    assert!(out.iter().all(|o| matches!(o, PatchOutcome::Invalid(_))), "{out:?}");
    assert!(store.messages(bob_inbox.id).await.unwrap().is_empty());
    // Bob cannot patch Alice's email.
    let out = store
        .update_emails(
            bob,
            vec![(
                a.id,
                EmailPatch {
                    add_keywords: vec!["$x".into()],
                    ..patch()
                },
            )],
        )
        .await
        .unwrap();
    assert_eq!(out, vec![PatchOutcome::NotFound]);
}

pub async fn destroy_and_import(b: &dyn Backend) {
    let (_g, store, alice) = setup(b).await;
    let inbox = mailbox(&store, alice, "INBOX").await;
    let archive = mailbox(&store, alice, "Archive").await;
    let state = store.state(alice, DataType::Email).await.unwrap();
    let mut m = mail("imported");
    m.flags = vec!["\\Seen".into()];
    let e = store.import_email(alice, &[inbox.id, archive.id], m).await.unwrap();
    let mut both = vec![inbox.id, archive.id];
    both.sort_unstable();
    assert_eq!(e.mailboxes, both);
    assert_eq!(e.keywords, vec!["\\Seen"]);
    assert_eq!(store.messages(archive.id).await.unwrap()[0].id, e.id);
    assert_eq!(store.account_by_id(alice).await.unwrap().unwrap().usage.messages, 1);
    let c = store.object_changes(alice, DataType::Email, state, 100).await.unwrap();
    assert_eq!(c.created, vec![e.id]);
    assert!(matches!(
        store.import_email(alice, &[], mail("x")).await,
        Err(StoreError::Invalid(_))
    ));

    let before = mailbox(&store, alice, "Archive").await.highest_modseq;
    let thread_state = store.state(alice, DataType::Thread).await.unwrap();
    assert_eq!(
        store.destroy_emails(alice, &[e.id, e.id + 99]).await.unwrap(),
        vec![true, false]
    );
    assert!(store.emails(alice, &[e.id]).await.unwrap().is_empty());
    assert_eq!(store.changes(archive.id, before).await.unwrap().expunged.len(), 1);
    assert_eq!(store.account_by_id(alice).await.unwrap().unwrap().usage.messages, 0);
    let t = store
        .object_changes(alice, DataType::Thread, thread_state, 100)
        .await
        .unwrap();
    assert_eq!(t.destroyed, vec![e.thread_id]);
}

pub async fn mailbox_counts_follow_jmap_visibility(b: &dyn Backend) {
    let (_g, store, alice) = setup(b).await;
    let inbox = mailbox(&store, alice, "INBOX").await;
    let parent = NewMessage {
        raw: b"From: a@x\r\nSubject: plan\r\nMessage-ID: <p@x>\r\n\r\n1\r\n".to_vec(),
        flags: vec!["\\Seen".into()],
        internal_date: 1,
    };
    let reply = NewMessage {
        raw: b"From: b@x\r\nSubject: Re: plan\r\nIn-Reply-To: <p@x>\r\n\r\n2\r\n".to_vec(),
        flags: vec![],
        internal_date: 2,
    };
    store.append(inbox.id, parent).await.unwrap();
    let r = store.append(inbox.id, reply).await.unwrap();
    let gone = store.append(inbox.id, mail("deleted")).await.unwrap();
    store
        .store_flags(inbox.id, &[gone.uid], FlagOp::Add, &["\\Deleted".into()])
        .await
        .unwrap();
    let counts = store.mailbox_counts(alice).await.unwrap();
    let c = counts.iter().find(|c| c.mailbox == inbox.id).unwrap();
    assert_eq!(
        (c.total_emails, c.unread_emails, c.total_threads, c.unread_threads),
        (2, 1, 1, 1)
    );
    store
        .store_flags(inbox.id, &[r.uid], FlagOp::Add, &["\\Seen".into()])
        .await
        .unwrap();
    let counts = store.mailbox_counts(alice).await.unwrap();
    let c = counts.iter().find(|c| c.mailbox == inbox.id).unwrap();
    assert_eq!((c.unread_emails, c.unread_threads), (0, 0));
    let sent = mailbox(&store, alice, "Sent").await;
    let s = counts.iter().find(|c| c.mailbox == sent.id).unwrap();
    assert_eq!(s.total_emails, 0);
}

pub async fn uploads_and_blobs_are_per_account(b: &dyn Backend) {
    let (_g, store, alice) = setup(b).await;
    store
        .add_account("bob@example.test", "h", Quota::default())
        .await
        .unwrap();
    let bob = store.account("bob@example.test").await.unwrap().unwrap().id;
    let up = store.upload_blob(alice, b"attachment bytes".to_vec()).await.unwrap();
    assert_eq!(up.size, 16);
    assert!(up.blob_id.starts_with('G'));
    assert_eq!(
        store
            .blob(alice, &up.blob_id)
            .await
            .unwrap()
            .as_deref()
            .map(Vec::as_slice),
        Some(&b"attachment bytes"[..])
    );
    assert_eq!(store.blob(bob, &up.blob_id).await.unwrap(), None);
    // Bob uploading the same bytes may read his own copy; Alice's stays hers.
    let bob_up = store.upload_blob(bob, b"attachment bytes".to_vec()).await.unwrap();
    assert_eq!(bob_up.blob_id, up.blob_id);
    assert!(store.blob(bob, &up.blob_id).await.unwrap().is_some());
    // A message body is readable by its owner only.
    let inbox = mailbox(&store, alice, "INBOX").await;
    let a = store.append(inbox.id, mail("mine")).await.unwrap();
    let meta = &store.emails(alice, &[a.id]).await.unwrap()[0];
    assert!(store.blob(alice, &meta.blob_id).await.unwrap().is_some());
    assert_eq!(store.blob(bob, &meta.blob_id).await.unwrap(), None);
    for bad in ["", "G", "Gzz", "E1", &format!("{}x", meta.blob_id)] {
        assert_eq!(store.blob(alice, bad).await.unwrap(), None, "{bad}");
    }
    assert!(up.expires > unix_now() + 3600, "kept at least an hour (RFC 8620 §6.1)");
}
