//! The store conformance suite against the embedded (SQLite) backend.

mod conformance;

use conformance::{Backend, Guard};
use letterbox_store::sqlite::SqliteStore;
use letterbox_store::SharedStore;
use std::sync::Arc;

struct Sqlite;

impl Backend for Sqlite {
    fn fresh(&self) -> (Guard, SharedStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("store.db")).unwrap();
        (Box::new(dir), Arc::new(store))
    }

    fn reopen(&self, guard: &Guard) -> SharedStore {
        let dir = guard.downcast_ref::<tempfile::TempDir>().unwrap();
        Arc::new(SqliteStore::open(&dir.path().join("store.db")).unwrap())
    }
}

conformance_tests!(Sqlite;
    basics::new_account_has_special_use_mailboxes,
    basics::uids_ascend_and_are_never_reused,
    basics::modseq_grows_and_changes_report_expunges,
    basics::deliver_stores_body_once_for_many_recipients_and_round_trips,
    basics::quota_refuses_delivery_and_append,
    basics::held_expunged_bodies_yield_to_the_quota,
    basics::mailbox_counts_follow_every_change,
    basics::failed_copy_leaves_nothing_half_done,
    basics::move_is_copy_plus_expunge_with_copyuid_data,
    basics::rename_inbox_moves_messages_and_keeps_inbox,
    basics::recreated_mailbox_gets_new_uidvalidity,
    basics::aliases_catch_all_and_subaddress_resolve,
    basics::directory_errors_are_specific,
    basics::watchers_hear_committed_changes,
    basics::concurrent_deliveries_all_land_with_distinct_uids,
    basics::data_survives_reopen,
    basics::outbound_messages_are_queued_durably,
    basics::bare_lf_messages_are_stored_in_wire_form,
    basics::queue_lease_outcomes_and_schedule,
    basics::messages_by_uid_returns_present_uids_in_order,
    basics::repeated_changes_queries_see_every_later_commit,
    basics::append_many_is_all_or_nothing,
    model::copy_adds_a_membership_and_shares_keywords,
    model::copy_into_a_mailbox_holding_the_email_makes_a_new_one,
    model::replies_join_threads_and_new_subjects_start_new_ones,
    model::a_late_parent_joins_its_replies_thread,
    model::change_log_answers_from_every_state,
    model::changes_page_at_intermediate_states,
    model::mailbox_changes_are_logged,
    model::accounts_cannot_see_each_others_mail,
    model::a_reader_during_writes_sees_whole_commits,
    model::two_writers_on_one_message_both_land,
    model::queries_filter_sort_page_and_collapse_threads,
    model::text_search_decodes_and_matches_substrings,
    jmap::patches_change_keywords_everywhere_and_move_between_mailboxes,
    jmap::destroy_and_import,
    jmap::mailbox_counts_follow_jmap_visibility,
    jmap::uploads_and_blobs_are_per_account,
    credentials::app_passwords_are_per_account_and_revocable,
    credentials::codes_exchange_once_and_refresh_tokens_rotate,
    credentials::expired_tokens_are_gone_and_revocation_takes_the_grant,
    vacation::vacation_settings_round_trip_and_change_state,
    vacation::vacation_replies_once_per_sender_per_period,
    vacation::push_subscriptions_are_per_account_and_expire,
    intake::accept_commits_local_copies_and_queue_entry_together,
    intake::accept_is_all_or_nothing,
    intake::accept_bounces_over_quota_accounts_in_the_same_entry,
    intake::accept_never_bounces_a_null_sender,
    intake::owed_bounces_keep_the_entry_until_reported,
    submission::submissions_are_released_once_and_follow_the_queue,
    submission::canceled_submissions_are_never_released,
    spam::moves_into_and_out_of_junk_record_training,
    spam::bayes_counts_each_message_once_per_class,
    spam::lists_and_correspondents,
);

/// SQLite only: the queue insert fails inside the transaction, after the
/// local copy was written (what a full disk did between the two separate
/// commits of issue #18). A trigger stands in for the failing write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_queue_write_rolls_back_the_local_copy() {
    use letterbox_store::*;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let store = SqliteStore::open(&path).unwrap();
    store.add_domain("example.test").await.unwrap();
    let alice = store
        .add_account("alice@example.test", "hash", Quota::default())
        .await
        .unwrap();
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch(
            "CREATE TRIGGER queue_full BEFORE INSERT ON queue BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END;",
        )
        .unwrap();
    let intake = Intake {
        locals: LocalCopy::only(
            NewMessage {
                raw: b"Subject: t\r\n\r\nhi\r\n".to_vec(),
                flags: vec![],
                internal_date: 0,
            },
            inbox_targets(&[alice]),
        ),
        local_dsn: vec![],
        outbound: OutboundMessage {
            sender: "x@remote.test".into(),
            recipients: vec![OutboundRecipient {
                address: "fwd@far.test".into(),
                notify: None,
                orcpt: None,
            }],
            raw: b"Subject: t\r\n\r\nhi\r\n".to_vec(),
            envid: None,
            ret: None,
        },
        over_quota: OverQuota::Bounce,
        submission: None,
    };
    let r = store.accept(intake).await;
    assert!(matches!(r, Err(StoreError::Backend(_))), "{r:?}");
    let inbox = store.mailbox(alice, "INBOX").await.unwrap().unwrap();
    assert!(
        store.messages(inbox.id).await.unwrap().is_empty(),
        "the local copy was kept"
    );
    assert_eq!(store.account_by_id(alice).await.unwrap().unwrap().usage.messages, 0);
    assert!(store.list_queue().await.unwrap().is_empty());
}
