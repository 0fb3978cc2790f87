//! The store conformance suite: EmailSubmission records (RFC 8621 §7). A
//! pending submission is sent once, by the intake that releases it; a
//! canceled one can never be released; the queue's outcomes reach each
//! recipient's delivery status; every change moves the account's
//! EmailSubmission state.

use super::basics::{inbox_target, msg, setup};
use super::Backend;
use letterbox_store::*;

fn new_submission(email_id: EmailId, rcpts: &[&str], send_at: i64) -> NewSubmission {
    NewSubmission {
        identity: "I1".into(),
        email_id,
        thread_id: 1,
        mail_from: "alice@example.test".into(),
        rcpt_to: rcpts.iter().map(|r| r.to_string()).collect(),
        envelope: "{}".into(),
        send_at,
    }
}

fn release(id: i64, local: &[&str], remote: &[&str]) -> Intake {
    Intake {
        locals: Vec::new(),
        local_dsn: Vec::new(),
        outbound: OutboundMessage {
            sender: "alice@example.test".into(),
            recipients: remote
                .iter()
                .map(|a| OutboundRecipient {
                    address: a.to_string(),
                    notify: None,
                    orcpt: None,
                })
                .collect(),
            raw: b"Subject: s\r\n\r\nsent\r\n".to_vec(),
            envid: None,
            ret: None,
        },
        over_quota: OverQuota::Bounce,
        submission: Some(SubmissionRelease {
            id,
            local: local.iter().map(|a| a.to_string()).collect(),
            remote: remote.iter().map(|a| a.to_string()).collect(),
        }),
    }
}

pub async fn submissions_are_released_once_and_follow_the_queue(b: &dyn Backend) {
    let (_d, store, alice) = setup(b).await;
    let state0 = store.state(alice, DataType::EmailSubmission).await.unwrap();
    let now = unix_now();
    let s = store
        .create_submission(alice, new_submission(7, &["bob@example.test", "far@remote.test"], now))
        .await
        .unwrap();
    assert_eq!(s.undo_status, UndoStatus::Pending);
    assert!(s.recipients.is_empty());
    assert_eq!(store.due_submissions(now, 10).await.unwrap().len(), 1);
    assert_eq!(store.next_submission_due().await.unwrap(), Some(now));

    let mut intake = release(s.id, &["bob@example.test"], &["far@remote.test"]);
    intake.locals = LocalCopy::only(msg("sent"), vec![inbox_target(alice)]);
    let accepted = store.accept(intake).await.unwrap();
    let queue_id = accepted.queue_id.expect("a queue entry");
    // A second release (another node) fails and stores nothing.
    let again = store.accept(release(s.id, &[], &["far@remote.test"])).await;
    assert!(matches!(again, Err(StoreError::NotFound(_))), "{again:?}");
    assert_eq!(store.list_queue().await.unwrap().len(), 1);
    assert!(store.due_submissions(now, 10).await.unwrap().is_empty());

    let [got] = store
        .submissions(alice, Some(vec![s.id]))
        .await
        .unwrap()
        .try_into()
        .unwrap();
    assert_eq!(got.undo_status, UndoStatus::Final);
    assert_eq!(got.queue_id, Some(queue_id));
    let status = |s: &Submission, a: &str| s.recipients.iter().find(|r| r.address == a).map(|r| r.delivered);
    assert_eq!(status(&got, "bob@example.test"), Some(Delivered::Yes));
    assert_eq!(status(&got, "far@remote.test"), Some(Delivered::Queued));

    store
        .record_outcomes(
            queue_id,
            vec![RecipientOutcome {
                address: "far@remote.test".into(),
                status: RecipientStatus::Failed,
                error: Some("550 5.1.1 no such user".into()),
                remote_mta: Some("mx.remote.test".into()),
            }],
        )
        .await
        .unwrap();
    let [got] = store
        .submissions(alice, Some(vec![s.id]))
        .await
        .unwrap()
        .try_into()
        .unwrap();
    let far = got.recipients.iter().find(|r| r.address == "far@remote.test").unwrap();
    assert_eq!(
        (far.delivered, far.smtp_reply.as_str()),
        (Delivered::No, "550 5.1.1 no such user")
    );
    assert_eq!(store.cancel_submission(alice, s.id).await.unwrap(), Cancel::NotPending);

    let ch = store
        .object_changes(alice, DataType::EmailSubmission, state0, 100)
        .await
        .unwrap();
    assert_eq!(ch.created, vec![s.id]);
    assert!(ch.new_state > state0);
}

pub async fn canceled_submissions_are_never_released(b: &dyn Backend) {
    let (_d, store, alice) = setup(b).await;
    let bob = store
        .add_account("bob@example.test", "hash", Quota::default())
        .await
        .unwrap();
    let later = unix_now() + 3600;
    let s = store
        .create_submission(alice, new_submission(3, &["far@remote.test"], later))
        .await
        .unwrap();
    assert!(store.due_submissions(unix_now(), 10).await.unwrap().is_empty());
    assert_eq!(store.due_submissions(later, 10).await.unwrap().len(), 1);
    // Other accounts cannot see, cancel or destroy it.
    assert!(store.submissions(bob, Some(vec![s.id])).await.unwrap().is_empty());
    assert_eq!(store.cancel_submission(bob, s.id).await.unwrap(), Cancel::NotFound);
    assert!(!store.destroy_submission(bob, s.id).await.unwrap());

    assert_eq!(store.cancel_submission(alice, s.id).await.unwrap(), Cancel::Canceled);
    let r = store.accept(release(s.id, &[], &["far@remote.test"])).await;
    assert!(matches!(r, Err(StoreError::NotFound(_))), "{r:?}");
    assert!(store.list_queue().await.unwrap().is_empty(), "nothing queued");
    assert!(store.due_submissions(later, 10).await.unwrap().is_empty());
    assert_eq!(
        store.submissions(alice, None).await.unwrap()[0].undo_status,
        UndoStatus::Canceled
    );

    // A held submission that cannot be sent ends failed, not pending.
    let f = store
        .create_submission(alice, new_submission(4, &["far@remote.test"], unix_now()))
        .await
        .unwrap();
    store.fail_submission(f.id, "550 5.0.0 gone").await.unwrap();
    let [got] = store
        .submissions(alice, Some(vec![f.id]))
        .await
        .unwrap()
        .try_into()
        .unwrap();
    assert_eq!(got.undo_status, UndoStatus::Final);
    assert_eq!(got.recipients[0].delivered, Delivered::No);

    assert!(store.destroy_submission(alice, s.id).await.unwrap());
    assert_eq!(store.submissions(alice, None).await.unwrap().len(), 1);
    // Finished ones are purged after the horizon.
    assert_eq!(store.purge_submissions(unix_now() + 1).await.unwrap(), 1);
    assert!(store.submissions(alice, None).await.unwrap().is_empty());
}
