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
);
