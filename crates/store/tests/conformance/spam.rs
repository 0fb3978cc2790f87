//! The store conformance suite, part 7: spam learning (issue 15). Moves
//! into and out of Junk record training events in their own transaction;
//! Bayes models count a message once per class; lists and correspondents.

use super::basics::{msg, setup};
use super::Backend;
use letterbox_store::*;

async fn boxes(store: &SharedStore, account: AccountId) -> (Mailbox, Mailbox, Mailbox) {
    let get = |n: &'static str| async move { store.mailbox(account, n).await.unwrap().unwrap() };
    (get("INBOX").await, get("Junk").await, get("Trash").await)
}

fn classes(events: &[TrainingEvent]) -> Vec<(EmailId, bool)> {
    events.iter().map(|e| (e.email_id, e.spam)).collect()
}

pub async fn moves_into_and_out_of_junk_record_training(b: &dyn Backend) {
    let (_g, store, alice) = setup(b).await;
    let (inbox, junk, trash) = boxes(&store, alice).await;
    let a = store.append(inbox.id, msg("a")).await.unwrap();
    let c = store.append(inbox.id, msg("c")).await.unwrap();
    assert!(
        store.training_events(10).await.unwrap().is_empty(),
        "delivery teaches nothing"
    );
    // IMAP MOVE into Junk: spam.
    let moved = store.move_messages(inbox.id, &[a.uid], junk.id).await.unwrap();
    let ev = store.training_events(10).await.unwrap();
    assert_eq!(classes(&ev), vec![(a.id, true)]);
    assert!(ev.iter().all(|e| e.account_id == alice));
    store
        .training_done(&ev.iter().map(|e| e.id).collect::<Vec<_>>())
        .await
        .unwrap();
    // Out of Junk to Trash: nothing; out of Junk to INBOX: ham.
    let junk_uid = moved.uids[0].1;
    store.copy(junk.id, &[junk_uid], trash.id).await.unwrap();
    assert!(store.training_events(10).await.unwrap().is_empty());
    store.move_messages(junk.id, &[junk_uid], inbox.id).await.unwrap();
    assert_eq!(classes(&store.training_events(10).await.unwrap()), vec![(a.id, false)]);
    let done: Vec<i64> = store.training_events(10).await.unwrap().iter().map(|e| e.id).collect();
    store.training_done(&done).await.unwrap();
    // JMAP: mailboxIds gain Junk (spam), then lose it for INBOX (ham).
    let patch = |add: Vec<MailboxId>, remove: Vec<MailboxId>| EmailPatch {
        keywords: None,
        add_keywords: vec![],
        remove_keywords: vec![],
        mailboxes: None,
        add_mailboxes: add,
        remove_mailboxes: remove,
    };
    store
        .update_emails(alice, vec![(c.id, patch(vec![junk.id], vec![inbox.id]))])
        .await
        .unwrap();
    store
        .update_emails(alice, vec![(c.id, patch(vec![inbox.id], vec![junk.id]))])
        .await
        .unwrap();
    assert_eq!(
        classes(&store.training_events(10).await.unwrap()),
        vec![(c.id, true), (c.id, false)]
    );
    let done: Vec<i64> = store.training_events(10).await.unwrap().iter().map(|e| e.id).collect();
    store.training_done(&done).await.unwrap();
    // $Junk and $NotJunk, when newly set.
    let (_, c_uid) = (c.id, store.messages(inbox.id).await.unwrap().last().unwrap().uid);
    store
        .store_flags(inbox.id, &[c_uid], FlagOp::Add, &["$Junk".into()])
        .await
        .unwrap();
    store
        .store_flags(inbox.id, &[c_uid], FlagOp::Add, &["$Junk".into(), "\\Seen".into()])
        .await
        .unwrap();
    store
        .store_flags(inbox.id, &[c_uid], FlagOp::Replace, &["$NotJunk".into()])
        .await
        .unwrap();
    assert_eq!(
        classes(&store.training_events(10).await.unwrap()),
        vec![(c.id, true), (c.id, false)]
    );
}

pub async fn bayes_counts_each_message_once_per_class(b: &dyn Backend) {
    let (_g, store, alice) = setup(b).await;
    let bob = store
        .add_account("bob@example.test", "hash", Quota::default())
        .await
        .unwrap();
    let empty = store.bayes_counts(alice, &[1, 2]).await.unwrap();
    assert_eq!(empty, BayesCounts::default());
    assert!(store.bayes_train(alice, 10, true, &[1, 2]).await.unwrap());
    assert!(store.bayes_train(alice, 11, true, &[2, 3]).await.unwrap());
    assert!(store.bayes_train(alice, 12, false, &[3, 4]).await.unwrap());
    // Again the same way: nothing changes.
    assert!(!store.bayes_train(alice, 10, true, &[1, 2]).await.unwrap());
    let c = store.bayes_counts(alice, &[1, 2, 3, 4, 5]).await.unwrap();
    assert_eq!((c.spam_messages, c.ham_messages), (2, 1));
    assert_eq!(c.tokens, vec![(1, 1, 0), (2, 2, 0), (3, 1, 1), (4, 0, 1)]);
    // The other way: its spam counts are taken back.
    assert!(store.bayes_train(alice, 11, false, &[2, 3]).await.unwrap());
    let c = store.bayes_counts(alice, &[1, 2, 3, 4]).await.unwrap();
    assert_eq!((c.spam_messages, c.ham_messages), (1, 2));
    assert_eq!(c.tokens, vec![(1, 1, 0), (2, 1, 1), (3, 0, 2), (4, 0, 1)]);
    // The site-wide model (0) learnt the same; bob's learnt nothing.
    let site = store.bayes_counts(0, &[3]).await.unwrap();
    assert_eq!(
        (site.spam_messages, site.ham_messages, site.tokens),
        (1, 2, vec![(3, 0, 2)])
    );
    assert_eq!(
        store.bayes_counts(bob, &[1, 2, 3]).await.unwrap(),
        BayesCounts::default()
    );
    // bob training a message alice also has (another email id) adds to the site.
    assert!(store.bayes_train(bob, 20, true, &[3]).await.unwrap());
    let site = store.bayes_counts(0, &[3]).await.unwrap();
    assert_eq!((site.spam_messages, site.tokens), (2, vec![(3, 1, 2)]));
    // Removing an account removes its model.
    store.remove_account("alice@example.test").await.unwrap();
    let gone = store.bayes_counts(alice, &[1]).await.unwrap();
    assert_eq!(gone, BayesCounts::default());
}

pub async fn lists_and_correspondents(b: &dyn Backend) {
    let (_g, store, alice) = setup(b).await;
    assert!(store.spam_list_match(alice, "x@spam.test").await.unwrap().is_none());
    store.set_spam_list(0, "@spam.test", Some(false)).await.unwrap();
    store
        .set_spam_list(alice, "Friend@Spam.test", Some(true))
        .await
        .unwrap();
    let m = store.spam_list_match(alice, "x@SPAM.test").await.unwrap().unwrap();
    assert_eq!((m.account_id, m.entry.as_str(), m.allow), (0, "@spam.test", false));
    // The account's own address entry wins over the site's domain entry.
    let m = store.spam_list_match(alice, "friend@spam.test").await.unwrap().unwrap();
    assert_eq!((m.account_id, m.allow), (alice, true));
    assert_eq!(store.spam_lists(Some(alice)).await.unwrap().len(), 1);
    assert_eq!(store.spam_lists(None).await.unwrap().len(), 2);
    assert!(store.set_spam_list(alice, "friend@spam.test", None).await.unwrap());
    assert!(!store.set_spam_list(alice, "friend@spam.test", None).await.unwrap());
    assert!(!store.is_correspondent(alice, "bob@far.test").await.unwrap());
    store
        .note_correspondents(alice, &["Bob@Far.test".into(), "carol@far.test".into()])
        .await
        .unwrap();
    assert!(store.is_correspondent(alice, "bob@far.test").await.unwrap());
    assert!(!store.is_correspondent(0, "bob@far.test").await.unwrap());
}
