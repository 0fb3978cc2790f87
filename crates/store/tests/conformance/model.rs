//! The store conformance suite, part 2: the Store v2 model (one email in
//! many mailboxes, threads, the account-wide change log, isolation,
//! concurrency).

use super::basics::{inbox_target, setup};
use super::Backend;
use letterbox_store::*;

fn mail(headers: &str, body: &str) -> NewMessage {
    NewMessage {
        raw: format!("From: a@example.test\r\n{headers}\r\n\r\n{body}\r\n").into_bytes(),
        flags: vec![],
        internal_date: 1_700_000_000,
    }
}

async fn mailbox(store: &SharedStore, account: AccountId, name: &str) -> Mailbox {
    store.mailbox(account, name).await.unwrap().unwrap()
}

async fn thread_of(store: &SharedStore, account: AccountId, id: EmailId) -> ThreadId {
    store.emails(account, &[id]).await.unwrap()[0].thread_id
}

pub async fn copy_adds_a_membership_and_shares_keywords(b: &dyn Backend) {
    let (_g, store, alice) = setup(b).await;
    let inbox = mailbox(&store, alice, "INBOX").await;
    let archive = mailbox(&store, alice, "Archive").await;
    let a = store.append(inbox.id, mail("Subject: one", "x")).await.unwrap();
    let copied = store.copy(inbox.id, &[a.uid], archive.id).await.unwrap();
    let in_archive = store.messages(archive.id).await.unwrap();
    assert_eq!(in_archive.len(), 1);
    assert_eq!(in_archive[0].id, a.id, "one email, two mailboxes");
    assert_eq!(copied.uids, vec![(a.uid, in_archive[0].uid)]);
    let e = &store.emails(alice, &[a.id]).await.unwrap()[0];
    let mut both = vec![inbox.id, archive.id];
    both.sort_unstable();
    assert_eq!(e.mailboxes, both);
    let usage = store.account_by_id(alice).await.unwrap().unwrap().usage;
    assert_eq!(usage.messages, 1, "quota counts emails");

    // A keyword set in one mailbox shows in the other, with a new modseq.
    let before = mailbox(&store, alice, "Archive").await.highest_modseq;
    store
        .store_flags(inbox.id, &[a.uid], FlagOp::Add, &["\\Seen".into(), "$work".into()])
        .await
        .unwrap();
    let ch = store.changes(archive.id, before).await.unwrap();
    assert_eq!(ch.changed.len(), 1);
    assert_eq!(ch.changed[0].flags, vec!["$work", "\\Seen"]);
    assert!(ch.highest_modseq > before);
    assert_eq!(mailbox(&store, alice, "Archive").await.unseen, 0);

    // \Deleted belongs to one mailbox.
    store
        .store_flags(inbox.id, &[a.uid], FlagOp::Add, &["\\Deleted".into()])
        .await
        .unwrap();
    assert_eq!(
        store.messages(inbox.id).await.unwrap()[0].flags,
        vec!["$work", "\\Deleted", "\\Seen"]
    );
    assert_eq!(
        store.messages(archive.id).await.unwrap()[0].flags,
        vec!["$work", "\\Seen"]
    );
    // ... and a membership marked deleted is not visible to JMAP.
    assert_eq!(
        store.emails(alice, &[a.id]).await.unwrap()[0].mailboxes,
        vec![archive.id]
    );

    // Expunging one membership keeps the email; the last one destroys it.
    assert_eq!(store.expunge(inbox.id, None).await.unwrap(), vec![a.uid]);
    assert_eq!(
        store.emails(alice, &[a.id]).await.unwrap()[0].mailboxes,
        vec![archive.id]
    );
    let e_state = store.state(alice, DataType::Email).await.unwrap();
    store
        .store_flags(archive.id, &[in_archive[0].uid], FlagOp::Add, &["\\Deleted".into()])
        .await
        .unwrap();
    store.expunge(archive.id, None).await.unwrap();
    assert!(store.emails(alice, &[a.id]).await.unwrap().is_empty());
    let ch = store
        .object_changes(alice, DataType::Email, e_state, 100)
        .await
        .unwrap();
    assert_eq!(ch.destroyed, vec![a.id]);
    assert_eq!(
        store.account_by_id(alice).await.unwrap().unwrap().usage,
        Usage::default()
    );
}

pub async fn copy_into_a_mailbox_holding_the_email_makes_a_new_one(b: &dyn Backend) {
    let (_g, store, alice) = setup(b).await;
    let inbox = mailbox(&store, alice, "INBOX").await;
    let a = store.append(inbox.id, mail("Subject: one", "x")).await.unwrap();
    store
        .store_flags(inbox.id, &[a.uid], FlagOp::Add, &["\\Flagged".into()])
        .await
        .unwrap();
    let copied = store.copy(inbox.id, &[a.uid], inbox.id).await.unwrap();
    let list = store.messages(inbox.id).await.unwrap();
    assert_eq!(list.len(), 2);
    assert_ne!(list[0].id, list[1].id);
    assert_eq!(copied.uids, vec![(a.uid, list[1].uid)]);
    assert_eq!(list[1].flags, vec!["\\Flagged"]);
    assert_eq!(list[0].thread_id, list[1].thread_id);
    assert_eq!(store.account_by_id(alice).await.unwrap().unwrap().usage.messages, 2);
    // MOVE into the same mailbox: a new UID, the old one expunged.
    let moved = store.move_messages(inbox.id, &[list[1].uid], inbox.id).await.unwrap();
    let after = store.messages(inbox.id).await.unwrap();
    assert_eq!(
        after.iter().map(|m| m.uid).collect::<Vec<_>>(),
        vec![a.uid, moved.uids[0].1]
    );
}

pub async fn replies_join_threads_and_new_subjects_start_new_ones(b: &dyn Backend) {
    let (_g, store, alice) = setup(b).await;
    let inbox = mailbox(&store, alice, "INBOX").await;
    let root = store
        .append(inbox.id, mail("Subject: Lunch\r\nMessage-ID: <root@x>", "a"))
        .await
        .unwrap();
    let reply = store
        .append(
            inbox.id,
            mail("Subject: Re: Lunch\r\nMessage-ID: <r1@x>\r\nIn-Reply-To: <root@x>", "b"),
        )
        .await
        .unwrap();
    let deeper = store
        .append(
            inbox.id,
            mail(
                "Subject: RE: [team] Lunch\r\nMessage-ID: <r2@x>\r\nReferences: <root@x> <r1@x>",
                "c",
            ),
        )
        .await
        .unwrap();
    let topic_change = store
        .append(
            inbox.id,
            mail(
                "Subject: Dinner instead?\r\nMessage-ID: <r3@x>\r\nIn-Reply-To: <r2@x>",
                "d",
            ),
        )
        .await
        .unwrap();
    let digest = store
        .append(
            inbox.id,
            mail(
                "Subject: Digest, Vol 3\r\nMessage-ID: <d@x>\r\nReferences: <root@x> <r1@x> <r2@x>",
                "e",
            ),
        )
        .await
        .unwrap();
    let no_id_1 = store.append(inbox.id, mail("Subject: Lunch", "f")).await.unwrap();
    let no_id_2 = store.append(inbox.id, mail("Subject: Lunch", "g")).await.unwrap();
    let t = thread_of(&store, alice, root.id).await;
    assert_eq!(thread_of(&store, alice, reply.id).await, t);
    assert_eq!(thread_of(&store, alice, deeper.id).await, t);
    assert_ne!(thread_of(&store, alice, topic_change.id).await, t);
    assert_ne!(thread_of(&store, alice, digest.id).await, t);
    let (n1, n2) = (
        thread_of(&store, alice, no_id_1.id).await,
        thread_of(&store, alice, no_id_2.id).await,
    );
    assert!(n1 != t && n2 != t && n1 != n2);
    assert_eq!(
        store.thread(alice, t).await.unwrap(),
        vec![root.id, reply.id, deeper.id]
    );
    // The same thread id appears in the IMAP view.
    let metas = store.messages_by_uid(inbox.id, &[reply.uid]).await.unwrap();
    assert_eq!(metas[0].thread_id, t);
}

pub async fn a_late_parent_joins_its_replies_thread(b: &dyn Backend) {
    let (_g, store, alice) = setup(b).await;
    let inbox = mailbox(&store, alice, "INBOX").await;
    // Two replies arrive before the message they answer.
    let r1 = store
        .append(
            inbox.id,
            mail("Subject: Re: Plan\r\nMessage-ID: <r1@x>\r\nIn-Reply-To: <p@x>", "a"),
        )
        .await
        .unwrap();
    let r2 = store
        .append(
            inbox.id,
            mail(
                "Subject: Re: Plan\r\nMessage-ID: <r2@x>\r\nReferences: <p@x> <r1@x>",
                "b",
            ),
        )
        .await
        .unwrap();
    let t = thread_of(&store, alice, r1.id).await;
    assert_eq!(thread_of(&store, alice, r2.id).await, t);
    let t_state = store.state(alice, DataType::Thread).await.unwrap();
    let parent = store
        .append(inbox.id, mail("Subject: Plan\r\nMessage-ID: <p@x>", "c"))
        .await
        .unwrap();
    assert_eq!(
        thread_of(&store, alice, parent.id).await,
        t,
        "the parent joins, nothing splits"
    );
    let ch = store
        .object_changes(alice, DataType::Thread, t_state, 10)
        .await
        .unwrap();
    assert_eq!((ch.created, ch.updated), (vec![], vec![t]));
}

pub async fn change_log_answers_from_every_state(b: &dyn Backend) {
    let (_g, store, alice) = setup(b).await;
    let inbox = mailbox(&store, alice, "INBOX").await;
    let s0 = store.state(alice, DataType::Email).await.unwrap();
    let a = store.append(inbox.id, mail("Subject: a", "a")).await.unwrap();
    let s1 = store.state(alice, DataType::Email).await.unwrap();
    let bb = store.append(inbox.id, mail("Subject: b", "b")).await.unwrap();
    let s2 = store.state(alice, DataType::Email).await.unwrap();
    store
        .store_flags(inbox.id, &[a.uid], FlagOp::Add, &["\\Seen".into()])
        .await
        .unwrap();
    let s3 = store.state(alice, DataType::Email).await.unwrap();
    store.delete_messages(inbox.id, &[bb.id]).await.unwrap();
    let s4 = store.state(alice, DataType::Email).await.unwrap();
    assert!(s0 < s1 && s1 < s2 && s2 < s3 && s3 < s4);
    let c = |since| {
        let store = store.clone();
        async move {
            let c = store.object_changes(alice, DataType::Email, since, 100).await.unwrap();
            assert_eq!((c.old_state, c.new_state, c.has_more), (since, s4, false));
            (c.created, c.updated, c.destroyed)
        }
    };
    assert_eq!(c(s0).await, (vec![a.id], vec![], vec![]));
    assert_eq!(c(s1).await, (vec![], vec![a.id], vec![]));
    assert_eq!(c(s2).await, (vec![], vec![a.id], vec![bb.id]));
    assert_eq!(c(s3).await, (vec![], vec![], vec![bb.id]));
    assert_eq!(c(s4).await, (vec![], vec![], vec![]));
    // A state from the future, or from before the log, cannot be answered.
    assert!(matches!(
        store.object_changes(alice, DataType::Email, s4 + 1000, 100).await,
        Err(StoreError::CannotCalculateChanges)
    ));
    assert!(matches!(
        store.object_changes(alice, DataType::Email, 0, 100).await,
        Err(StoreError::CannotCalculateChanges)
    ));
}

pub async fn changes_page_at_intermediate_states(b: &dyn Backend) {
    let (_g, store, alice) = setup(b).await;
    let inbox = mailbox(&store, alice, "INBOX").await;
    let start = store.state(alice, DataType::Email).await.unwrap();
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(
            store
                .append(inbox.id, mail("Subject: p", &i.to_string()))
                .await
                .unwrap()
                .id,
        );
    }
    let mut since = start;
    let mut seen = Vec::new();
    loop {
        let c = store.object_changes(alice, DataType::Email, since, 2).await.unwrap();
        assert!(c.created.len() <= 2);
        seen.extend(c.created);
        since = c.new_state;
        if !c.has_more {
            break;
        }
    }
    assert_eq!(seen, ids);
    assert_eq!(since, store.state(alice, DataType::Email).await.unwrap());
}

pub async fn mailbox_changes_are_logged(b: &dyn Backend) {
    let (_g, store, alice) = setup(b).await;
    let s0 = store.state(alice, DataType::Mailbox).await.unwrap();
    let work = store.create_mailbox(alice, "Work", None).await.unwrap();
    let c = store.object_changes(alice, DataType::Mailbox, s0, 100).await.unwrap();
    assert_eq!(c.created, vec![work.id]);
    let s1 = c.new_state;
    store.rename_mailbox(alice, "Work", "Job").await.unwrap();
    let c = store.object_changes(alice, DataType::Mailbox, s1, 100).await.unwrap();
    assert_eq!((c.created, c.updated), (vec![], vec![work.id]));
    let s2 = c.new_state;
    // New mail changes the counts: the mailbox is updated.
    store
        .deliver(mail("Subject: x", "x"), &[inbox_target(alice)])
        .await
        .unwrap();
    let inbox = mailbox(&store, alice, "INBOX").await;
    let c = store.object_changes(alice, DataType::Mailbox, s2, 100).await.unwrap();
    assert_eq!(c.updated, vec![inbox.id]);
    let s3 = c.new_state;
    store.delete_mailbox(alice, "Job").await.unwrap();
    let c = store.object_changes(alice, DataType::Mailbox, s3, 100).await.unwrap();
    assert_eq!(c.destroyed, vec![work.id]);
    // Created and destroyed since s0: not reported at all.
    let c = store.object_changes(alice, DataType::Mailbox, s0, 100).await.unwrap();
    assert!(!c.created.contains(&work.id) && !c.destroyed.contains(&work.id));
    // The mailbox's HIGHESTMODSEQ follows the account counter.
    assert!(inbox.highest_modseq >= s2);
}

pub async fn accounts_cannot_see_each_others_mail(b: &dyn Backend) {
    let (_g, store, alice) = setup(b).await;
    let bob = store
        .add_account("bob@example.test", "hash", Quota::default())
        .await
        .unwrap();
    let report = store
        .deliver(
            mail("Subject: shared\r\nMessage-ID: <s@x>", "x"),
            &[inbox_target(alice), inbox_target(bob)],
        )
        .await
        .unwrap();
    assert_eq!(report.delivered.len(), 2);
    let a_inbox = mailbox(&store, alice, "INBOX").await;
    let b_inbox = mailbox(&store, bob, "INBOX").await;
    let a_msg = &store.messages(a_inbox.id).await.unwrap()[0];
    let b_msg = &store.messages(b_inbox.id).await.unwrap()[0];
    assert_ne!(a_msg.id, b_msg.id, "each account has its own email");
    assert_ne!(a_msg.thread_id, b_msg.thread_id, "and its own thread");
    assert!(store.emails(bob, &[a_msg.id]).await.unwrap().is_empty());
    assert!(store.thread(bob, a_msg.thread_id).await.unwrap().is_empty());
    // Alice's changes do not move Bob's state.
    let b_state = store.state(bob, DataType::Email).await.unwrap();
    store
        .store_flags(a_inbox.id, &[a_msg.uid], FlagOp::Add, &["\\Seen".into()])
        .await
        .unwrap();
    assert_eq!(store.state(bob, DataType::Email).await.unwrap(), b_state);
    assert!(store.copy(a_inbox.id, &[a_msg.uid], b_inbox.id).await.is_err());
}

pub async fn a_reader_during_writes_sees_whole_commits(b: &dyn Backend) {
    let (_g, store, alice) = setup(b).await;
    let inbox = mailbox(&store, alice, "INBOX").await;
    let writer = {
        let store = store.clone();
        tokio::spawn(async move {
            for i in 0..60 {
                // Each append_many commits three messages at once.
                let batch = (0..3).map(|j| mail("Subject: w", &format!("{i}-{j}"))).collect();
                store.append_many(inbox.id, batch).await.unwrap();
            }
        })
    };
    let mut last = 0;
    while !writer.is_finished() {
        let list = store.messages(inbox.id).await.unwrap();
        assert_eq!(list.len() % 3, 0, "a read never sees part of a commit");
        assert!(list.len() >= last);
        assert!(list.windows(2).all(|w| w[0].uid < w[1].uid));
        let mb = mailbox(&store, alice, "INBOX").await;
        assert!(mb.messages as usize >= list.len());
        last = list.len();
        tokio::task::yield_now().await;
    }
    writer.await.unwrap();
    assert_eq!(store.messages(inbox.id).await.unwrap().len(), 180);
}

pub async fn two_writers_on_one_message_both_land(b: &dyn Backend) {
    let (_g, store, alice) = setup(b).await;
    let inbox = mailbox(&store, alice, "INBOX").await;
    let a = store.append(inbox.id, mail("Subject: x", "x")).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..20 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let kw = format!("$k{i}");
            store.store_flags(inbox.id, &[a.uid], FlagOp::Add, &[kw]).await.unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let m = &store.messages(inbox.id).await.unwrap()[0];
    assert_eq!(m.flags.len(), 20, "{:?}", m.flags);
    let e = &store.emails(alice, &[a.id]).await.unwrap()[0];
    assert_eq!(e.keywords.len(), 20);
}

pub async fn queries_filter_sort_page_and_collapse_threads(b: &dyn Backend) {
    let (_g, store, alice) = setup(b).await;
    let inbox = mailbox(&store, alice, "INBOX").await;
    let archive = mailbox(&store, alice, "Archive").await;
    let at = |t: i64, headers: &str, body: &str| NewMessage {
        internal_date: t,
        ..mail(headers, body)
    };
    // Thread A: root at 100, reply at 300. Thread B: one at 200 (bigger).
    let a1 = store
        .append(inbox.id, at(100, "Subject: A\r\nMessage-ID: <a1@x>", "x"))
        .await
        .unwrap();
    let b1 = store
        .append(inbox.id, at(200, "Subject: B\r\nMessage-ID: <b1@x>", &"y".repeat(500)))
        .await
        .unwrap();
    let a2 = store
        .append(
            inbox.id,
            at(300, "Subject: Re: A\r\nMessage-ID: <a2@x>\r\nIn-Reply-To: <a1@x>", "z"),
        )
        .await
        .unwrap();
    store
        .store_flags(inbox.id, &[a1.uid], FlagOp::Add, &["\\Seen".into(), "$Work".into()])
        .await
        .unwrap();
    store.copy(inbox.id, &[b1.uid], archive.id).await.unwrap();
    let q = |filter: Option<Filter>, sort: Vec<Sort>, collapse: bool, position: usize, limit: usize| Query {
        filter,
        sort,
        collapse_threads: collapse,
        count_total: true,
        position,
        limit,
    };
    let ids = |r: QueryResult| r.ids;
    // Newest first by default.
    let all = store.query_emails(alice, q(None, vec![], false, 0, 10)).await.unwrap();
    assert_eq!((all.ids.clone(), all.total), (vec![a2.id, b1.id, a1.id], 3));
    // Collapsed: the newest of each thread.
    let c = store.query_emails(alice, q(None, vec![], true, 0, 10)).await.unwrap();
    assert_eq!((c.ids.clone(), c.total), (vec![a2.id, b1.id], 2));
    // Oldest first: each thread's oldest; only matching emails represent a
    // thread; pages of representatives; a sort by size (another path).
    let oldest = vec![Sort {
        key: SortKey::ReceivedAt,
        ascending: true,
    }];
    let c = store.query_emails(alice, q(None, oldest, true, 0, 10)).await.unwrap();
    assert_eq!((c.ids, c.total), (vec![a1.id, b1.id], 2));
    let unseen = Some(Filter::Not(vec![Filter::HasKeyword("\\Seen".into())]));
    let c = store.query_emails(alice, q(unseen, vec![], true, 0, 10)).await.unwrap();
    assert_eq!(c.ids, vec![a2.id, b1.id]);
    let seen = Some(Filter::HasKeyword("\\Seen".into()));
    let c = store.query_emails(alice, q(seen, vec![], true, 0, 10)).await.unwrap();
    assert_eq!((c.ids, c.total), (vec![a1.id], 1));
    let c = store.query_emails(alice, q(None, vec![], true, 1, 1)).await.unwrap();
    assert_eq!((c.ids, c.total), (vec![b1.id], 2));
    let uncounted = Query {
        count_total: false,
        ..q(None, vec![], true, 0, 10)
    };
    let c = store.query_emails(alice, uncounted).await.unwrap();
    assert_eq!(
        (c.ids, c.total),
        (vec![a2.id, b1.id], 0),
        "no total asked, none counted"
    );
    let biggest = vec![Sort {
        key: SortKey::Size,
        ascending: false,
    }];
    let c = store.query_emails(alice, q(None, biggest, true, 0, 10)).await.unwrap();
    assert_eq!(c.ids[0], b1.id);
    assert_eq!(c.total, 2);
    // Paging.
    let p = store.query_emails(alice, q(None, vec![], false, 1, 1)).await.unwrap();
    assert_eq!((p.ids, p.total, p.position), (vec![b1.id], 3, 1));
    // Filters.
    let kw = Some(Filter::HasKeyword("$work".into()));
    assert_eq!(
        ids(store.query_emails(alice, q(kw, vec![], false, 0, 10)).await.unwrap()),
        vec![a1.id]
    );
    let unread = Some(Filter::Not(vec![Filter::HasKeyword("\\Seen".into())]));
    assert_eq!(
        ids(store
            .query_emails(alice, q(unread, vec![], false, 0, 10))
            .await
            .unwrap()),
        vec![a2.id, b1.id]
    );
    let in_archive = Some(Filter::InMailbox(archive.id));
    assert_eq!(
        ids(store
            .query_emails(alice, q(in_archive, vec![], false, 0, 10))
            .await
            .unwrap()),
        vec![b1.id]
    );
    let window = Some(Filter::And(vec![Filter::After(150), Filter::Before(300)]));
    assert_eq!(
        ids(store
            .query_emails(alice, q(window, vec![], false, 0, 10))
            .await
            .unwrap()),
        vec![b1.id]
    );
    let either = Some(Filter::Or(vec![
        Filter::MinSize(400),
        Filter::InThread(thread_of(&store, alice, a2.id).await),
    ]));
    assert_eq!(
        ids(store
            .query_emails(alice, q(either, vec![], false, 0, 10))
            .await
            .unwrap()),
        vec![a2.id, b1.id, a1.id]
    );
    // Sorting by size, smallest first (ties by id).
    let by_size = vec![Sort {
        key: SortKey::Size,
        ascending: true,
    }];
    let s = ids(store.query_emails(alice, q(None, by_size, false, 0, 10)).await.unwrap());
    assert_eq!(s.last(), Some(&b1.id));
    // Another account sees none of it; a runaway filter is refused.
    let bob = store
        .add_account("bob@example.test", "h", Quota::default())
        .await
        .unwrap();
    assert_eq!(
        store
            .query_emails(bob, q(None, vec![], false, 0, 10))
            .await
            .unwrap()
            .total,
        0
    );
    let mut deep = Filter::MinSize(1);
    for _ in 0..40 {
        deep = Filter::Not(vec![deep]);
    }
    assert!(matches!(
        store.query_emails(alice, q(Some(deep), vec![], false, 0, 10)).await,
        Err(StoreError::Invalid(_))
    ));
}

pub async fn text_search_decodes_and_matches_substrings(b: &dyn Backend) {
    let (_g, store, alice) = setup(b).await;
    let inbox = mailbox(&store, alice, "INBOX").await;
    let qp = store
        .append(
            inbox.id,
            mail(
                "Subject: =?utf-8?q?Caf=C3=A9_menu?=\r\nTo: Team <team@example.test>\r\nX-Ticket: ZX-4411\r\n\
                 MIME-Version: 1.0\r\nContent-Type: text/plain; charset=iso-8859-1\r\n\
                 Content-Transfer-Encoding: quoted-printable",
                "Cr=E8me br=FBl=E9e tonight",
            ),
        )
        .await
        .unwrap();
    let b64 = store
        .append(
            inbox.id,
            mail(
                "Subject: html\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=x",
                "--x\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n\
                 PHA+SGVsbG8gPGI+V29ybGQ8L2I+PC9wPg==\r\n\
                 --x\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=\"budget-2027.pdf\"\r\n\
                 Content-Transfer-Encoding: base64\r\n\r\nJVBERi0=\r\n--x--",
            ),
        )
        .await
        .unwrap();
    let find = |field: TextField, text: &str| {
        let store = store.clone();
        let text = text.to_string();
        async move {
            store
                .search_uids(inbox.id, Filter::Contains(field, text))
                .await
                .unwrap()
        }
    };
    // QP and a legacy charset decoded; substring, not word; any case.
    assert_eq!(find(TextField::Body, "crème").await, vec![qp.uid]);
    assert_eq!(find(TextField::Body, "ÈME BR").await, vec![qp.uid]);
    assert_eq!(find(TextField::Body, "ûlé").await, vec![qp.uid]);
    // Base64 HTML as text; markup is not text.
    assert_eq!(find(TextField::Body, "hello world").await, vec![b64.uid]);
    assert!(find(TextField::Body, "<b>").await.is_empty());
    // Headers: decoded per field, and as written for TEXT.
    assert_eq!(find(TextField::Subject, "café").await, vec![qp.uid]);
    assert_eq!(find(TextField::To, "team@").await, vec![qp.uid]);
    assert!(find(TextField::From, "team@").await.is_empty());
    assert_eq!(find(TextField::Any, "zx-4411").await, vec![qp.uid]);
    assert_eq!(find(TextField::AttachmentName, "budget").await, vec![b64.uid]);
    assert!(find(TextField::Body, "budget").await.is_empty());
    // Quotes in the term are literal.
    assert!(find(TextField::Any, "a\"b\"c").await.is_empty());
    // Too short for the index: the caller must scan.
    assert!(matches!(
        store
            .search_uids(inbox.id, Filter::Contains(TextField::Body, "cr".into()))
            .await,
        Err(StoreError::Invalid(_))
    ));
    // JMAP-style query over the account, combined with other conditions.
    let q = Query {
        filter: Some(Filter::And(vec![
            Filter::InMailbox(inbox.id),
            Filter::Contains(TextField::Any, "tonight".into()),
        ])),
        sort: vec![],
        collapse_threads: false,
        count_total: true,
        position: 0,
        limit: 10,
    };
    assert_eq!(store.query_emails(alice, q).await.unwrap().ids, vec![qp.id]);
    // Destroyed emails leave the index: the same body again is found once.
    store.delete_messages(inbox.id, &[qp.id]).await.unwrap();
    assert!(find(TextField::Body, "crème").await.is_empty());
}
