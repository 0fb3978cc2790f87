//! The embedded backend: SQLite (WAL) holding metadata and message bodies.
//!
//! Bodies live in the same database as metadata, content-addressed by
//! SHA-256 and reference-counted, so a message delivered to N mailboxes is
//! stored once and a single WAL fsync makes body and metadata durable
//! together; separate files would need their own fsyncs (file and
//! directory) per message, defeating group commit.

mod credentials;
mod directory;
mod engine;
mod jmap;
mod mailboxes;
mod messages;
mod push;
mod query;
mod queue;
mod schema;
mod spam;
mod submission;
mod vacation;

pub use schema::SCHEMA_VERSION;

use crate::intake::OverQuotaAccount;
use crate::prepare::prepare_async;
use crate::{
    normalize_mailbox, Accepted, Account, AccountId, Alias, Appended, AttemptEnd, ChangeEvent, ChangeKind, Changes,
    ConditionalStore, Copied, DataType, DeliveryReport, DeliveryTarget, Domain, EmailId, EmailMeta, FlagOp, Intake,
    LocalDsn, Mailbox, MailboxId, MessageData, MessageId, MessageMeta, NewMessage, ObjectChanges, OutboundMessage,
    OutboundRecipient, OverQuota, QueueEntry, Quota, Recipient, RecipientOutcome, Result, SortRow, SpecialUse, Store,
    StoreError, ThreadId,
};
use async_trait::async_trait;
use engine::Engine;
use letterbox_mail::MessageInfo;
use messages::Op;
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use tokio::sync::broadcast;

/// [`Store::accept`] on the writer thread: everything in the job's
/// savepoint, so an error anywhere (quota rule, disk full, I/O) rolls back
/// the local copies and the queue entry together.
fn accept(
    c: &rusqlite::Connection,
    locals: &[(crate::prepare::PreparedBody, Vec<DeliveryTarget>)],
    local_dsn: &[LocalDsn],
    outbound: &OutboundMessage,
    policy: OverQuota,
    release: Option<&crate::SubmissionRelease>,
) -> Result<(Accepted, Vec<ChangeEvent>)> {
    let mut report = DeliveryReport::default();
    let mut events = Vec::new();
    for (body, targets) in locals {
        let (r, evs) = messages::deliver(c, body, targets)?;
        report.delivered.extend(r.delivered);
        report.over_quota.extend(r.over_quota);
        for e in evs {
            if !events.contains(&e) {
                events.push(e);
            }
        }
    }
    let mut over = Vec::with_capacity(report.over_quota.len());
    for &(account_id, permanent) in &report.over_quota {
        let address = directory::account_by_id(c, account_id)?
            .map(|a| a.address)
            .ok_or_else(|| StoreError::NotFound(format!("account {account_id}")))?;
        over.push(OverQuotaAccount {
            account_id,
            address,
            permanent,
        });
    }
    let decision = crate::intake::decide(
        policy,
        outbound.sender.is_empty(),
        !report.delivered.is_empty(),
        !outbound.recipients.is_empty(),
        over,
    )?;
    let bounces: Vec<(OutboundRecipient, &str)> = decision
        .bounce
        .iter()
        .map(|o| {
            let dsn = local_dsn.iter().find(|d| d.account_id == o.account_id);
            let r = OutboundRecipient {
                address: o.address.clone(),
                notify: dsn.and_then(|d| d.notify.clone()),
                orcpt: dsn.and_then(|d| d.orcpt.clone()),
            };
            (r, crate::intake::bounce_reason(o.permanent))
        })
        .collect();
    let queue_id = if outbound.recipients.is_empty() && bounces.is_empty() {
        None
    } else {
        events.push(ChangeEvent {
            account_id: 0,
            mailbox_id: None,
            kind: ChangeKind::Queued,
        });
        Some(queue::insert(c, outbound, &bounces)?)
    };
    if let Some(rel) = release {
        events.push(submission::release(c, rel, queue_id)?);
    }
    let accepted = Accepted {
        delivered: report.delivered,
        bounced: decision.bounce.iter().map(|o| (o.account_id, o.permanent)).collect(),
        dropped: decision.drop.iter().map(|o| o.account_id).collect(),
        queue_id,
    };
    Ok((accepted, events))
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Backend(e.to_string())
    }
}

pub(crate) fn now() -> i64 {
    crate::unix_now()
}

/// The embedded store. Cheap to clone.
#[derive(Clone)]
pub struct SqliteStore {
    engine: Arc<Engine>,
    cache: crate::cache::MessageCache,
    changes_cache: Arc<Mutex<HashMap<MailboxId, CachedChanges>>>,
    sort_cache: Arc<Mutex<SortCache>>,
}

/// Sort keys of recently sorted mailboxes. A message's keys never change,
/// and a mailbox's set of UIDs is identified by (UIDVALIDITY, UIDNEXT,
/// message count): appends raise UIDNEXT, expunges lower the count, so a
/// state never comes back. Webmail and clients re-sort the same mailbox
/// often; reading 100,000 rows each time was most of a SORT.
#[derive(Default)]
struct SortCache {
    entries: Vec<(MailboxId, SortCacheKey, Arc<Vec<SortRow>>)>,
}

/// (UIDVALIDITY, UIDNEXT, messages) of the mailbox the rows were read for.
type SortCacheKey = (u32, u32, u32);

/// Mailboxes whose sort keys are kept, and the most rows in all (about
/// 150 bytes each).
const SORT_CACHE_MAILBOXES: usize = 8;
const SORT_CACHE_ROWS: usize = 300_000;

/// The last `changes` answer per mailbox. A new message wakes every session
/// watching the mailbox at once, and they all ask the same question: one
/// of them reads, the rest reuse the answer while no commit touched the
/// mailbox since.
struct CachedChanges {
    since: u64,
    stamp: engine::Stamp,
    changes: Changes,
}

/// Mailboxes whose last `changes` answer is kept.
const CHANGES_CACHE_ENTRIES: usize = 4096;

impl SqliteStore {
    /// Open or create the database file `path` (its directory must exist).
    pub fn open(path: &Path) -> Result<SqliteStore> {
        let engine = Engine::open(path)?;
        Ok(SqliteStore {
            engine,
            cache: crate::cache::MessageCache::default(),
            sort_cache: Arc::default(),
            changes_cache: Arc::new(Mutex::new(HashMap::new())),
        })
    }

    /// Bytes on disk of the full-text index and of the message bodies
    /// (SQLite's `dbstat`), for benchmark reports.
    pub async fn space_report(&self) -> Result<Vec<(String, u64)>> {
        self.engine
            .read(|c| {
                let size = |like: &str| -> Result<u64> {
                    let n: i64 = c.query_row(
                        "SELECT COALESCE(SUM(pgsize), 0) FROM dbstat WHERE name LIKE ?1",
                        [like],
                        |r| r.get(0),
                    )?;
                    Ok(n as u64)
                };
                Ok(vec![
                    ("full-text index".to_string(), size("email_fts%")? + size("blob_text%")?),
                    ("message bodies".to_string(), size("blobs")?),
                ])
            })
            .await
    }

    /// Drop cached bodies once mail is deleted for good (mailbox or account
    /// removed). Bodies of expunged messages may be served from the cache a
    /// little past their grace period, but only to a caller holding the id.
    fn forget_bodies(&self) {
        self.cache.forget_bodies();
    }

    fn cached_changes(&self, mailbox: MailboxId, since: u64) -> Option<Changes> {
        let stamp = self.engine.notifier.stamp(mailbox)?;
        let cache = self.changes_cache.lock().ok()?;
        let hit = cache.get(&mailbox)?;
        if hit.stamp != stamp {
            return None;
        }
        if hit.since == since {
            return Some(hit.changes.clone());
        }
        // Nothing committed since: nothing changed after the highest modseq
        // then seen (a session asking again right after its own command).
        let highest = hit.changes.highest_modseq;
        (since >= highest).then(|| Changes {
            highest_modseq: highest,
            ..Changes::default()
        })
    }
}

fn mailbox_event(account_id: AccountId, mailbox_id: Option<MailboxId>, kind: ChangeKind) -> ChangeEvent {
    ChangeEvent {
        account_id,
        mailbox_id,
        kind,
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn add_domain(&self, name: &str) -> Result<()> {
        let name = name.to_string();
        self.engine
            .write(move |c| Ok((directory::add_domain(c, &name)?, vec![])))
            .await
    }

    async fn list_domains(&self) -> Result<Vec<Domain>> {
        self.engine.read(directory::list_domains).await
    }

    async fn remove_domain(&self, name: &str) -> Result<()> {
        let name = name.to_string();
        self.engine
            .write(move |c| Ok((directory::remove_domain(c, &name)?, vec![])))
            .await
    }

    async fn add_account(&self, address: &str, password_hash: &str, quota: Quota) -> Result<AccountId> {
        let (a, h) = (address.to_string(), password_hash.to_string());
        self.engine
            .write(move |c| Ok((directory::add_account(c, &a, &h, quota)?, vec![])))
            .await
    }

    async fn set_password(&self, address: &str, password_hash: &str) -> Result<()> {
        let (a, h) = (address.to_string(), password_hash.to_string());
        self.engine
            .write(move |c| Ok((directory::set_password(c, &a, &h)?, vec![])))
            .await
    }

    async fn set_quota(&self, address: &str, quota: Quota) -> Result<()> {
        let a = address.to_string();
        self.engine
            .write(move |c| Ok((directory::set_quota(c, &a, quota)?, vec![])))
            .await
    }

    async fn remove_account(&self, address: &str) -> Result<()> {
        let a = address.to_string();
        self.engine
            .write(move |c| Ok(((), directory::remove_account(c, &a)?)))
            .await?;
        self.forget_bodies();
        Ok(())
    }

    async fn list_accounts(&self) -> Result<Vec<Account>> {
        self.engine.read(directory::list_accounts).await
    }

    async fn account(&self, address: &str) -> Result<Option<Account>> {
        let a = address.to_string();
        self.engine.read(move |c| directory::account(c, &a)).await
    }

    async fn account_by_id(&self, id: AccountId) -> Result<Option<Account>> {
        self.engine.read(move |c| directory::account_by_id(c, id)).await
    }

    async fn add_alias(&self, source: &str, targets: &[String]) -> Result<()> {
        let (s, t) = (source.to_string(), targets.to_vec());
        self.engine
            .write(move |c| Ok((directory::add_alias(c, &s, &t)?, vec![])))
            .await
    }

    async fn remove_alias(&self, source: &str) -> Result<()> {
        let s = source.to_string();
        self.engine
            .write(move |c| Ok((directory::remove_alias(c, &s)?, vec![])))
            .await
    }

    async fn list_aliases(&self) -> Result<Vec<Alias>> {
        self.engine.read(directory::list_aliases).await
    }

    async fn resolve_recipient(&self, address: &str) -> Result<Recipient> {
        let a = address.to_string();
        self.engine.read(move |c| directory::resolve_recipient(c, &a)).await
    }

    async fn sender_addresses(&self, account: AccountId) -> Result<Vec<String>> {
        self.engine.read(move |c| directory::sender_addresses(c, account)).await
    }

    async fn push_subscriptions(&self, account: AccountId) -> Result<Vec<crate::PushSubscription>> {
        let now = now();
        self.engine.read(move |c| push::list(c, account, now)).await
    }

    async fn create_push_subscription(
        &self,
        account: AccountId,
        new: crate::NewPushSubscription,
    ) -> Result<crate::PushSubscription> {
        let now = now();
        self.engine
            .write(move |c| Ok((push::create(c, account, &new, now)?, vec![])))
            .await
    }

    async fn update_push_subscription(&self, account: AccountId, id: i64, update: crate::PushUpdate) -> Result<bool> {
        self.engine
            .write(move |c| Ok((push::update(c, account, id, &update)?, vec![])))
            .await
    }

    async fn remove_push_subscription(&self, account: AccountId, id: i64) -> Result<bool> {
        self.engine
            .write(move |c| Ok((push::remove(c, account, id)?, vec![])))
            .await
    }

    async fn health(&self) -> Result<crate::Health> {
        let now = now();
        self.engine
            .write(move |c| {
                c.execute("INSERT OR REPLACE INTO health(id, checked) VALUES (1, ?1)", [now])?;
                Ok(((), vec![]))
            })
            .await?;
        let dir = self.engine.path.parent().map(Path::to_path_buf).unwrap_or_default();
        let free = tokio::task::spawn_blocking(move || rustix::fs::statvfs(&dir).ok())
            .await
            .ok()
            .flatten()
            .map(|v| v.f_bavail.saturating_mul(v.f_frsize));
        Ok(crate::Health { free_bytes: free })
    }

    async fn create_submission(&self, account: AccountId, new: crate::NewSubmission) -> Result<crate::Submission> {
        self.engine.write(move |c| submission::create(c, account, &new)).await
    }

    async fn submissions(&self, account: AccountId, ids: Option<Vec<i64>>) -> Result<Vec<crate::Submission>> {
        self.engine
            .read(move |c| submission::list(c, account, ids.as_deref()))
            .await
    }

    async fn cancel_submission(&self, account: AccountId, id: i64) -> Result<crate::Cancel> {
        self.engine.write(move |c| submission::cancel(c, account, id)).await
    }

    async fn destroy_submission(&self, account: AccountId, id: i64) -> Result<bool> {
        self.engine.write(move |c| submission::destroy(c, account, id)).await
    }

    async fn due_submissions(&self, now: i64, limit: usize) -> Result<Vec<crate::Submission>> {
        self.engine.read(move |c| submission::due(c, now, limit)).await
    }

    async fn next_submission_due(&self) -> Result<Option<i64>> {
        self.engine.read(submission::next_due).await
    }

    async fn fail_submission(&self, id: i64, reason: &str) -> Result<()> {
        let reason = reason.to_string();
        self.engine
            .write(move |c| Ok(((), submission::fail(c, id, &reason)?)))
            .await
    }

    async fn purge_submissions(&self, before: i64) -> Result<usize> {
        self.engine
            .write(move |c| {
                let events = submission::purge(c, before)?;
                Ok((events.len(), events))
            })
            .await
    }

    async fn identity_settings(&self, account: AccountId) -> Result<Vec<crate::IdentitySettings>> {
        self.engine
            .read(move |c| submission::identity_settings(c, account))
            .await
    }

    async fn set_identity(&self, account: AccountId, object_id: i64, settings: crate::IdentitySettings) -> Result<()> {
        self.engine
            .write(move |c| Ok(((), submission::set_identity(c, account, object_id, &settings)?)))
            .await
    }

    async fn bayes_counts(&self, account: AccountId, tokens: &[u64]) -> Result<crate::BayesCounts> {
        let tokens = tokens.to_vec();
        self.engine.read(move |c| spam::counts(c, account, &tokens)).await
    }

    async fn bayes_train(&self, account: AccountId, email: EmailId, is_spam: bool, tokens: &[u64]) -> Result<bool> {
        let tokens = tokens.to_vec();
        self.engine
            .write(move |c| Ok((spam::train(c, account, email, is_spam, &tokens)?, vec![])))
            .await
    }

    async fn training_events(&self, limit: usize) -> Result<Vec<crate::TrainingEvent>> {
        self.engine.read(move |c| spam::events(c, limit)).await
    }

    async fn training_done(&self, ids: &[i64]) -> Result<()> {
        let ids = ids.to_vec();
        self.engine
            .write(move |c| Ok((spam::events_done(c, &ids)?, vec![])))
            .await
    }

    async fn note_correspondents(&self, account: AccountId, addresses: &[String]) -> Result<()> {
        let addresses = addresses.to_vec();
        self.engine
            .write(move |c| Ok((spam::note_correspondents(c, account, &addresses, now())?, vec![])))
            .await
    }

    async fn is_correspondent(&self, account: AccountId, address: &str) -> Result<bool> {
        let address = address.to_string();
        self.engine
            .read(move |c| spam::is_correspondent(c, account, &address))
            .await
    }

    async fn set_spam_list(&self, account: AccountId, entry: &str, allow: Option<bool>) -> Result<bool> {
        let entry = entry.to_string();
        self.engine
            .write(move |c| Ok((spam::set_list(c, account, &entry, allow)?, vec![])))
            .await
    }

    async fn spam_lists(&self, account: Option<AccountId>) -> Result<Vec<crate::SpamListEntry>> {
        self.engine.read(move |c| spam::lists(c, account)).await
    }

    async fn spam_list_match(&self, account: AccountId, address: &str) -> Result<Option<crate::SpamListEntry>> {
        let address = address.to_string();
        self.engine.read(move |c| spam::list_match(c, account, &address)).await
    }

    async fn spam_facts(
        &self,
        accounts: &[AccountId],
        from: Option<&str>,
        tokens: &[u64],
    ) -> Result<Vec<crate::SpamFacts>> {
        let (accounts, from, tokens) = (accounts.to_vec(), from.map(str::to_string), tokens.to_vec());
        self.engine
            .read(move |c| {
                accounts
                    .iter()
                    .map(|&a| {
                        Ok(crate::SpamFacts {
                            counts: spam::counts(c, a, &tokens)?,
                            list: match &from {
                                Some(f) => spam::list_match(c, a, f)?,
                                None => None,
                            },
                            correspondent: match &from {
                                Some(f) if a != 0 => spam::is_correspondent(c, a, f)?,
                                _ => false,
                            },
                        })
                    })
                    .collect()
            })
            .await
    }

    async fn record_dmarc(&self, record: crate::DmarcRecord) -> Result<()> {
        self.engine
            .write(move |c| Ok((spam::record_dmarc(c, &record)?, vec![])))
            .await
    }

    async fn dmarc_records(&self, before: i64, limit: usize) -> Result<Vec<crate::DmarcRecord>> {
        self.engine.read(move |c| spam::dmarc_records(c, before, limit)).await
    }

    async fn delete_dmarc_records(&self, ids: &[i64]) -> Result<()> {
        let ids = ids.to_vec();
        self.engine
            .write(move |c| Ok((spam::delete_dmarc_records(c, &ids)?, vec![])))
            .await
    }

    async fn vacation(&self, account: AccountId) -> Result<crate::Vacation> {
        self.engine.read(move |c| vacation::get(c, account)).await
    }

    async fn set_vacation(&self, account: AccountId, v: crate::Vacation) -> Result<()> {
        self.engine
            .write(move |c| Ok(((), vacation::set(c, account, &v)?)))
            .await
    }

    async fn vacation_reply_due(&self, account: AccountId, sender: &str, now: i64, period: i64) -> Result<bool> {
        let sender = sender.to_string();
        self.engine
            .write(move |c| Ok((vacation::reply_due(c, account, &sender, now, period)?, vec![])))
            .await
    }

    async fn add_app_password(&self, account: AccountId, name: &str, digest: &str) -> Result<crate::AppPassword> {
        let (n, d) = (name.to_string(), digest.to_string());
        self.engine
            .write(move |c| Ok((credentials::add_app_password(c, account, &n, &d, now())?, vec![])))
            .await
    }

    async fn app_passwords(&self, account: AccountId) -> Result<Vec<crate::AppPassword>> {
        self.engine.read(move |c| credentials::app_passwords(c, account)).await
    }

    async fn remove_app_password(&self, account: AccountId, id: i64) -> Result<bool> {
        self.engine
            .write(move |c| Ok((credentials::remove_app_password(c, account, id)?, vec![])))
            .await
    }

    async fn check_app_password(&self, account: AccountId, digest: &str) -> Result<bool> {
        let d = digest.to_string();
        self.engine
            .read(move |c| credentials::check_app_password(c, account, &d))
            .await
    }

    async fn create_grant(
        &self,
        account: AccountId,
        client_id: &str,
        scope: &str,
        tokens: Vec<crate::NewToken>,
    ) -> Result<crate::Grant> {
        let (client, scope) = (client_id.to_string(), scope.to_string());
        self.engine
            .write(move |c| {
                Ok((
                    credentials::create_grant(c, account, &client, &scope, &tokens, now())?,
                    vec![],
                ))
            })
            .await
    }

    async fn token(&self, digest: &str) -> Result<Option<crate::TokenRecord>> {
        let d = digest.to_string();
        self.engine.read(move |c| credentials::token(c, &d, now())).await
    }

    async fn exchange_token(
        &self,
        digest: &str,
        kind: crate::TokenKind,
        tokens: Vec<crate::NewToken>,
    ) -> Result<crate::Exchange> {
        let d = digest.to_string();
        self.engine
            .write(move |c| Ok((credentials::exchange_token(c, &d, kind, &tokens, now())?, vec![])))
            .await
    }

    async fn revoke_token(&self, digest: &str) -> Result<bool> {
        let d = digest.to_string();
        self.engine
            .write(move |c| Ok((credentials::revoke_token(c, &d)?, vec![])))
            .await
    }

    async fn grants(&self, account: AccountId) -> Result<Vec<crate::Grant>> {
        self.engine.read(move |c| credentials::grants(c, account, now())).await
    }

    async fn revoke_grant(&self, account: AccountId, grant: i64) -> Result<bool> {
        self.engine
            .write(move |c| Ok((credentials::revoke_grant(c, account, grant)?, vec![])))
            .await
    }

    async fn list_mailboxes(&self, account: AccountId) -> Result<Vec<Mailbox>> {
        self.engine.read(move |c| mailboxes::list(c, account)).await
    }

    async fn mailbox(&self, account: AccountId, name: &str) -> Result<Option<Mailbox>> {
        let n = name.to_string();
        self.engine.read(move |c| mailboxes::by_name(c, account, &n)).await
    }

    async fn mailbox_by_id(&self, id: MailboxId) -> Result<Option<Mailbox>> {
        self.engine.read(move |c| mailboxes::by_id(c, id)).await
    }

    async fn create_mailbox(&self, account: AccountId, name: &str, special_use: Option<SpecialUse>) -> Result<Mailbox> {
        let n = name.to_string();
        self.engine
            .write(move |c| {
                let mb = mailboxes::create(c, account, &n, special_use)?;
                let ev = mailbox_event(account, Some(mb.id), ChangeKind::Mailboxes);
                Ok((mb, vec![ev]))
            })
            .await
    }

    async fn delete_mailbox(&self, account: AccountId, name: &str) -> Result<()> {
        let n = name.to_string();
        self.engine
            .write(move |c| {
                let id = mailboxes::delete(c, account, &n)?;
                Ok(((), vec![mailbox_event(account, Some(id), ChangeKind::Mailboxes)]))
            })
            .await?;
        self.forget_bodies();
        Ok(())
    }

    async fn rename_mailbox(&self, account: AccountId, from: &str, to: &str) -> Result<()> {
        let (f, t) = (from.to_string(), to.to_string());
        self.engine
            .write(move |c| Ok(((), mailboxes::rename(c, account, &f, &t)?)))
            .await
    }

    async fn set_subscribed(&self, account: AccountId, name: &str, subscribed: bool) -> Result<()> {
        let n = name.to_string();
        self.engine
            .write(move |c| {
                mailboxes::set_subscribed(c, account, &n, subscribed)?;
                Ok(((), vec![mailbox_event(account, None, ChangeKind::Mailboxes)]))
            })
            .await
    }

    async fn subscriptions(&self, account: AccountId) -> Result<Vec<String>> {
        self.engine.read(move |c| mailboxes::subscriptions(c, account)).await
    }

    async fn deliver(&self, message: NewMessage, targets: &[DeliveryTarget]) -> Result<DeliveryReport> {
        let body = prepare_async(message).await?;
        let targets: Vec<DeliveryTarget> = targets
            .iter()
            .map(|t| DeliveryTarget {
                mailbox: normalize_mailbox(&t.mailbox),
                ..t.clone()
            })
            .collect();
        self.engine.write(move |c| messages::deliver(c, &body, &targets)).await
    }

    async fn accept(&self, intake: Intake) -> Result<Accepted> {
        let Intake {
            locals,
            local_dsn,
            outbound,
            over_quota,
            submission,
        } = intake;
        for r in &outbound.recipients {
            crate::normalize_address(&r.address)?;
        }
        let mut prepared = Vec::with_capacity(locals.len());
        for copy in locals.into_iter().filter(|c| !c.targets.is_empty()) {
            let targets: Vec<DeliveryTarget> = copy
                .targets
                .into_iter()
                .map(|t| DeliveryTarget {
                    mailbox: normalize_mailbox(&t.mailbox),
                    ..t
                })
                .collect();
            prepared.push((prepare_async(copy.message).await?, targets));
        }
        self.engine
            .write(move |c| accept(c, &prepared, &local_dsn, &outbound, over_quota, submission.as_ref()))
            .await
    }

    async fn append(&self, mailbox: MailboxId, message: NewMessage) -> Result<Appended> {
        let body = prepare_async(message).await?;
        self.engine.write(move |c| messages::append(c, mailbox, &body)).await
    }

    async fn append_many(&self, mailbox: MailboxId, messages: Vec<NewMessage>) -> Result<Vec<Appended>> {
        let mut bodies = Vec::with_capacity(messages.len());
        for m in messages {
            bodies.push(prepare_async(m).await?);
        }
        self.engine
            .write(move |c| {
                // One job: a failure rolls back every message of it.
                let mut appended = Vec::with_capacity(bodies.len());
                let mut events = Vec::new();
                for b in &bodies {
                    let (a, evs) = messages::append(c, mailbox, b)?;
                    appended.push(a);
                    for e in evs {
                        if !events.contains(&e) {
                            events.push(e);
                        }
                    }
                }
                Ok((appended, events))
            })
            .await
    }

    async fn messages(&self, mailbox: MailboxId) -> Result<Vec<MessageMeta>> {
        self.engine.read(move |c| messages::list(c, mailbox)).await
    }

    async fn messages_by_uid(&self, mailbox: MailboxId, uids: &[u32]) -> Result<Vec<MessageMeta>> {
        let ranges = messages::uid_ranges(uids);
        self.engine
            .read(move |c| messages::list_ranges(c, mailbox, &ranges))
            .await
    }

    async fn expunged_ids(&self, mailbox: MailboxId, uids: &[u32]) -> Result<Vec<(u32, MessageId)>> {
        let uids = uids.to_vec();
        self.engine
            .read(move |c| messages::expunged_ids(c, mailbox, &uids))
            .await
    }

    async fn changes(&self, mailbox: MailboxId, since: u64) -> Result<Changes> {
        if let Some(hit) = self.cached_changes(mailbox, since) {
            return Ok(hit);
        }
        let slot = self.engine.read_slot().await?;
        // Another session may have answered while this one waited.
        if let Some(hit) = self.cached_changes(mailbox, since) {
            return Ok(hit);
        }
        let stamp = self.engine.notifier.stamp(mailbox);
        let changes = self
            .engine
            .read_in(slot, move |c| messages::changes(c, mailbox, since))
            .await?;
        if let (Some(stamp), Ok(mut cache)) = (stamp, self.changes_cache.lock()) {
            if cache.len() >= CHANGES_CACHE_ENTRIES {
                cache.clear();
            }
            let entry = CachedChanges {
                since,
                stamp,
                changes: changes.clone(),
            };
            cache.insert(mailbox, entry);
        }
        Ok(changes)
    }

    async fn raw_message(&self, id: MessageId) -> Result<Arc<Vec<u8>>> {
        if let Some(hit) = self.cache.body(id) {
            return Ok(hit);
        }
        let raw = Arc::new(self.engine.read(move |c| messages::raw(c, id)).await?);
        self.cache.put_body(id, &raw);
        Ok(raw)
    }

    async fn message_info(&self, id: MessageId) -> Result<Arc<MessageInfo>> {
        if let Some(hit) = self.cache.info(id) {
            return Ok(hit);
        }
        let (hash, json, version) = self.engine.read(move |c| messages::info_json(c, id)).await?;
        let current = (version == letterbox_mail::ANALYSIS_VERSION)
            .then(|| serde_json::from_str::<MessageInfo>(&json).ok())
            .flatten();
        let info = match current {
            Some(info) => info,
            None => {
                // Analysed by an older analyser, or undecodable: redo it.
                let raw = self.raw_message(id).await?;
                let info = tokio::task::spawn_blocking(move || letterbox_mail::analyze(&raw))
                    .await
                    .map_err(|e| StoreError::Backend(format!("message analysis failed: {e}")))?;
                let json = crate::prepare::info_json(&info);
                let version = letterbox_mail::ANALYSIS_VERSION;
                // Best effort: the answer is right either way.
                if let Err(e) = self
                    .engine
                    .write_lazy(move |c| Ok((messages::update_info(c, &hash, &json, version)?, vec![])))
                    .await
                {
                    tracing::warn!(error = %e, "store: keeping a re-analysis failed");
                }
                info
            }
        };
        let info = Arc::new(info);
        self.cache.put_info(id, &info);
        Ok(info)
    }

    async fn message_data(&self, ids: &[MessageId], info: bool, raw: bool) -> Result<HashMap<MessageId, MessageData>> {
        let mut out: HashMap<MessageId, MessageData> = HashMap::with_capacity(ids.len());
        let mut need = Vec::new();
        for &id in ids {
            let d = MessageData {
                info: if info { self.cache.info(id) } else { None },
                raw: if raw { self.cache.body(id) } else { None },
            };
            let (wi, wr) = (info && d.info.is_none(), raw && d.raw.is_none());
            if wi || wr {
                need.push((id, wi, wr));
            }
            out.insert(id, d);
        }
        if need.is_empty() {
            return Ok(out);
        }
        let read = self
            .engine
            .read(move |c| {
                need.into_iter()
                    .map(|(id, wi, wr)| Ok((id, messages::data(c, id, wi, wr)?)))
                    .collect::<Result<Vec<_>>>()
            })
            .await?;
        for (id, found) in read {
            let Some(found) = found else {
                out.remove(&id);
                continue;
            };
            let entry = out.entry(id).or_default();
            if let Some(raw) = found.raw {
                let raw = Arc::new(raw);
                self.cache.put_body(id, &raw);
                entry.raw = Some(raw);
            }
            match found.info {
                Some(Some(info)) => {
                    let info = Arc::new(info);
                    self.cache.put_info(id, &info);
                    entry.info = Some(info);
                }
                // Stale analysis: the single-message path redoes and keeps it.
                Some(None) => match self.message_info(id).await {
                    Ok(info) => entry.info = Some(info),
                    Err(StoreError::NotFound(_)) => {
                        out.remove(&id);
                    }
                    Err(e) => return Err(e),
                },
                None => {}
            }
        }
        Ok(out)
    }

    async fn store_flags(
        &self,
        mailbox: MailboxId,
        uids: &[u32],
        op: FlagOp,
        flags: &[String],
    ) -> Result<Vec<MessageMeta>> {
        Ok(self.store_flags_if(mailbox, uids, op, flags, None).await?.changed)
    }

    async fn store_flags_if(
        &self,
        mailbox: MailboxId,
        uids: &[u32],
        op: FlagOp,
        flags: &[String],
        unchanged_since: Option<u64>,
    ) -> Result<ConditionalStore> {
        let (u, f) = (uids.to_vec(), flags.to_vec());
        self.engine
            .write_lazy(move |c| messages::store_flags(c, mailbox, &u, op, &f, unchanged_since))
            .await
    }

    async fn sort_rows(&self, mailbox: MailboxId) -> Result<Arc<Vec<SortRow>>> {
        let Some(m) = self.mailbox_by_id(mailbox).await? else {
            return Err(StoreError::NotFound(format!("mailbox {mailbox}")));
        };
        let key = (m.uid_validity, m.uid_next, m.messages);
        let cached = {
            let cache = self.sort_cache.lock().unwrap_or_else(|e| e.into_inner());
            cache
                .entries
                .iter()
                .find(|e| e.0 == mailbox && e.1 == key)
                .map(|e| e.2.clone())
        };
        if let Some(rows) = cached {
            return Ok(rows);
        }
        let (key, rows) = self
            .engine
            .read(move |c| {
                // The key and the rows from one read transaction.
                let m =
                    mailboxes::by_id(c, mailbox)?.ok_or_else(|| StoreError::NotFound(format!("mailbox {mailbox}")))?;
                Ok((
                    (m.uid_validity, m.uid_next, m.messages),
                    messages::sort_rows(c, mailbox)?,
                ))
            })
            .await?;
        let rows = Arc::new(rows);
        let mut cache = self.sort_cache.lock().unwrap_or_else(|e| e.into_inner());
        cache.entries.retain(|e| e.0 != mailbox);
        cache.entries.push((mailbox, key, rows.clone()));
        while cache.entries.len() > SORT_CACHE_MAILBOXES
            || (cache.entries.len() > 1 && cache.entries.iter().map(|e| e.2.len()).sum::<usize>() > SORT_CACHE_ROWS)
        {
            cache.entries.remove(0);
        }
        Ok(rows)
    }

    async fn expunged_since(&self, mailbox: MailboxId, since: u64) -> Result<Vec<u32>> {
        self.engine
            .read(move |c| messages::expunged_since(c, mailbox, since))
            .await
    }

    async fn expunge(&self, mailbox: MailboxId, uids: Option<&[u32]>) -> Result<Vec<u32>> {
        let u = uids.map(|u| u.to_vec());
        self.engine
            .write_lazy(move |c| messages::expunge(c, mailbox, u.as_deref()))
            .await
    }

    async fn delete_messages(&self, mailbox: MailboxId, ids: &[MessageId]) -> Result<Vec<u32>> {
        let ids = ids.to_vec();
        self.engine
            .write_lazy(move |c| messages::delete_ids(c, mailbox, &ids))
            .await
    }

    async fn copy(&self, from: MailboxId, uids: &[u32], to: MailboxId) -> Result<Copied> {
        let u = uids.to_vec();
        self.engine
            .write(move |c| {
                let mut op = Op::new(mailboxes::account_of(c, to)?);
                let copied = messages::copy(c, &mut op, from, &u, to)?;
                Ok((copied, op.events()))
            })
            .await
    }

    async fn move_messages(&self, from: MailboxId, uids: &[u32], to: MailboxId) -> Result<Copied> {
        let u = uids.to_vec();
        self.engine
            .write(move |c| {
                let mut op = Op::new(mailboxes::account_of(c, to)?);
                let copied = messages::copy(c, &mut op, from, &u, to)?;
                let moved: Vec<u32> = copied.uids.iter().map(|(s, _)| *s).collect();
                messages::remove_uids(c, &mut op, from, &moved)?;
                Ok((copied, op.events()))
            })
            .await
    }

    async fn claim_recent(&self, mailbox: MailboxId, up_to: u32) -> Result<u32> {
        self.engine
            .write_lazy(move |c| Ok((mailboxes::claim_recent(c, mailbox, up_to)?, vec![])))
            .await
    }

    async fn state(&self, account: AccountId, data: DataType) -> Result<u64> {
        self.engine.read(move |c| messages::state(c, account, data)).await
    }

    async fn object_changes(
        &self,
        account: AccountId,
        data: DataType,
        since: u64,
        max: usize,
    ) -> Result<ObjectChanges> {
        self.engine
            .read(move |c| messages::object_changes(c, account, data, since, max))
            .await
    }

    async fn emails(&self, account: AccountId, ids: &[EmailId]) -> Result<Vec<EmailMeta>> {
        let ids = ids.to_vec();
        self.engine.read(move |c| messages::emails(c, account, &ids)).await
    }

    async fn query_emails(&self, account: AccountId, query: crate::Query) -> Result<crate::QueryResult> {
        self.engine.read(move |c| query::query_emails(c, account, &query)).await
    }

    async fn search_uids(&self, mailbox: MailboxId, filter: crate::Filter) -> Result<Vec<u32>> {
        self.engine.read(move |c| query::search_uids(c, mailbox, &filter)).await
    }

    async fn thread(&self, account: AccountId, thread: ThreadId) -> Result<Vec<EmailId>> {
        self.engine.read(move |c| messages::thread(c, account, thread)).await
    }

    async fn update_emails(
        &self,
        account: AccountId,
        patches: Vec<(EmailId, crate::EmailPatch)>,
    ) -> Result<Vec<crate::PatchOutcome>> {
        self.engine
            .write_lazy(move |c| jmap::update_emails(c, account, &patches))
            .await
    }

    async fn destroy_emails(&self, account: AccountId, ids: &[EmailId]) -> Result<Vec<bool>> {
        let ids = ids.to_vec();
        self.engine
            .write_lazy(move |c| jmap::destroy_emails(c, account, &ids))
            .await
    }

    async fn import_email(
        &self,
        account: AccountId,
        mailboxes: &[MailboxId],
        message: NewMessage,
    ) -> Result<EmailMeta> {
        let body = prepare_async(message).await?;
        let boxes = mailboxes.to_vec();
        self.engine
            .write(move |c| jmap::import_email(c, account, &boxes, &body))
            .await
    }

    async fn mailbox_counts(&self, account: AccountId) -> Result<Vec<crate::MailboxCounts>> {
        self.engine.read(move |c| jmap::mailbox_counts(c, account)).await
    }

    async fn upload_blob(&self, account: AccountId, data: Vec<u8>) -> Result<crate::UploadedBlob> {
        let hash = {
            use sha2::Digest;
            hex::encode(sha2::Sha256::digest(&data))
        };
        self.engine
            .write(move |c| Ok((jmap::upload(c, account, &hash, &data, now())?, vec![])))
            .await
    }

    async fn blob(&self, account: AccountId, blob_id: &str) -> Result<Option<Arc<Vec<u8>>>> {
        let Some(hash) = blob_id
            .strip_prefix('G')
            .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()))
            .map(str::to_string)
        else {
            return Ok(None);
        };
        let found = self.engine.read(move |c| jmap::blob(c, account, &hash, now())).await?;
        Ok(found.map(Arc::new))
    }

    async fn enqueue(&self, message: OutboundMessage) -> Result<i64> {
        self.engine
            .write(move |c| {
                let id = queue::enqueue(c, &message)?;
                let event = ChangeEvent {
                    account_id: 0,
                    mailbox_id: None,
                    kind: ChangeKind::Queued,
                };
                Ok((id, vec![event]))
            })
            .await
    }

    async fn list_queue(&self) -> Result<Vec<QueueEntry>> {
        self.engine.read(queue::list).await
    }

    async fn queue_entry(&self, id: i64) -> Result<Option<QueueEntry>> {
        self.engine.read(move |c| queue::get(c, id)).await
    }

    async fn queue_raw(&self, id: i64) -> Result<Vec<u8>> {
        self.engine.read(move |c| queue::raw(c, id)).await
    }

    async fn claim_queue(&self, owner: &str, now: i64, lease_secs: i64, limit: usize) -> Result<Vec<QueueEntry>> {
        let owner = owner.to_string();
        self.engine
            .write(move |c| Ok((queue::claim(c, &owner, now, lease_secs, limit)?, vec![])))
            .await
    }

    async fn record_outcomes(&self, id: i64, outcomes: Vec<RecipientOutcome>) -> Result<()> {
        self.engine
            .write(move |c| Ok(((), queue::record(c, id, &outcomes)?)))
            .await
    }

    async fn finish_attempt(&self, id: i64, owner: &str, end: AttemptEnd) -> Result<bool> {
        let owner = owner.to_string();
        self.engine.write(move |c| queue::finish(c, id, &owner, &end)).await
    }

    async fn retry_queue(&self, id: Option<i64>) -> Result<usize> {
        self.engine.write(move |c| Ok((queue::retry(c, id)?, vec![]))).await
    }

    async fn delete_queued(&self, id: i64) -> Result<bool> {
        self.engine.write(move |c| Ok((queue::delete(c, id)?, vec![]))).await
    }

    async fn release_leases(&self, owner: &str) -> Result<usize> {
        let owner = owner.to_string();
        self.engine
            .write(move |c| Ok((queue::release(c, &owner)?, vec![])))
            .await
    }

    fn subscribe(&self) -> broadcast::Receiver<ChangeEvent> {
        self.engine.notifier.events.subscribe()
    }

    fn close(&self) {
        self.engine.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Quota;

    fn msg(body: &str) -> NewMessage {
        NewMessage {
            raw: format!("Subject: t\r\n\r\n{body}\r\n").into_bytes(),
            flags: vec!["\\Deleted".into()],
            internal_date: 1_700_000_000,
        }
    }

    /// A store at `path` with one account; its INBOX.
    async fn one_account(path: &Path) -> (SqliteStore, AccountId, Mailbox) {
        let store = SqliteStore::open(path).unwrap();
        store.add_domain("example.test").await.unwrap();
        let account = store
            .add_account("a@example.test", "h", Quota::default())
            .await
            .unwrap();
        let inbox = store.mailbox(account, "INBOX").await.unwrap().unwrap();
        (store, account, inbox)
    }

    #[tokio::test]
    async fn expunged_bodies_stay_readable_for_the_grace_period_only() {
        let dir = tempfile::tempdir().unwrap();
        let (store, account, inbox) = one_account(&dir.path().join("s.db")).await;
        let a = store.append(inbox.id, msg("one")).await.unwrap();
        let b = store.append(inbox.id, msg("two")).await.unwrap();
        assert_eq!(store.expunge(inbox.id, Some(&[a.uid])).await.unwrap(), vec![a.uid]);
        // Gone from the mailbox, body still readable by id for a while.
        assert!(store.messages_by_uid(inbox.id, &[a.uid]).await.unwrap().is_empty());
        assert!(store.raw_message(a.id).await.unwrap().ends_with(b"one\r\n"));
        assert_eq!(
            store.expunged_ids(inbox.id, &[a.uid, b.uid]).await.unwrap(),
            vec![(a.uid, a.id)]
        );
        // After the grace period the reference is released.
        let later = crate::unix_now() + messages::EXPUNGED_GRACE_SECS + 1;
        let released = store
            .engine
            .write(move |c| Ok((messages::release_expired(c, later)?, Vec::new())))
            .await
            .unwrap();
        assert_eq!(released, 1);
        // (A fresh handle: this one may still have the body in its cache.)
        let fresh = SqliteStore::open(&dir.path().join("s.db")).unwrap();
        assert!(matches!(fresh.raw_message(a.id).await, Err(StoreError::NotFound(_))));
        assert!(store.expunged_ids(inbox.id, &[a.uid]).await.unwrap().is_empty());
        // Deleting a mailbox releases what its tombstones still hold.
        let other = store.create_mailbox(account, "X", None).await.unwrap();
        let c = store.append(other.id, msg("three")).await.unwrap();
        store.expunge(other.id, None).await.unwrap();
        assert!(store.raw_message(c.id).await.is_ok());
        store.delete_mailbox(account, "X").await.unwrap();
        assert!(matches!(store.raw_message(c.id).await, Err(StoreError::NotFound(_))));
        assert!(store.raw_message(b.id).await.is_ok());
    }

    /// A failed write leaves nothing behind, alone in its transaction or
    /// batched with others that succeed (which then commit).
    #[tokio::test]
    async fn failed_writes_roll_back_alone_or_in_a_batch() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("s.db")).unwrap();
        let insert = |name: String, fail: bool| {
            let engine = store.engine.clone();
            async move {
                engine
                    .write(move |c| {
                        c.execute("INSERT INTO domains(name, created) VALUES (?1, 0)", [&name])?;
                        if fail {
                            return Err(StoreError::Invalid("no".into()));
                        }
                        Ok(((), Vec::new()))
                    })
                    .await
            }
        };
        assert!(insert("alone.test".into(), true).await.is_err());
        // Many at once, so some share a batch.
        let jobs: Vec<_> = (0..40)
            .map(|i| tokio::spawn(insert(format!("d{i}.test"), i % 3 == 0)))
            .collect();
        for (i, job) in jobs.into_iter().enumerate() {
            assert_eq!(job.await.unwrap().is_ok(), i % 3 != 0, "job {i}");
        }
        let mut got: Vec<String> = store
            .list_domains()
            .await
            .unwrap()
            .into_iter()
            .map(|d| d.name)
            .collect();
        let mut want: Vec<String> = (0..40).filter(|i| i % 3 != 0).map(|i| format!("d{i}.test")).collect();
        got.sort();
        want.sort();
        assert_eq!(got, want);
    }

    /// A cached statement must stay compiled when rebound: SQLite would
    /// otherwise re-parse it per call for any parameter its planner looked
    /// at (see `engine::open_conn`).
    #[tokio::test]
    async fn cached_statements_are_not_reprepared_when_rebound() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let (store, _, inbox) = one_account(&path).await;
        let mut uids = Vec::new();
        for i in 0..3 {
            uids.push(store.append(inbox.id, msg(&format!("m{i}"))).await.unwrap().uid);
        }
        let conn = engine::open_conn(&path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
        let hot = [
            // messages::one, changes, list_ranges and a LIMIT, as used per command.
            "SELECT m.uid FROM email_mailboxes m JOIN emails e ON e.id = m.email_id \
             WHERE m.mailbox_id = ?1 AND m.uid = ?2",
            "SELECT m.uid FROM email_mailboxes m JOIN emails e ON e.id = m.email_id \
             WHERE m.mailbox_id = ?1 AND m.modseq > ?2 ORDER BY m.uid",
            "SELECT uid FROM expunged WHERE mailbox_id = ?1 AND modseq > ?2 ORDER BY uid",
            "SELECT m.uid FROM email_mailboxes m WHERE m.mailbox_id = ?1 ORDER BY m.uid LIMIT ?2",
        ];
        for sql in hot {
            let mut st = conn.prepare(sql).unwrap();
            for (k, &uid) in uids.iter().enumerate() {
                let _ = st
                    .query_map(rusqlite::params![inbox.id, uid + k as u32], |r| r.get::<_, i64>(0))
                    .unwrap()
                    .count();
            }
            let n = st.get_status(rusqlite::StatementStatus::RePrepare);
            assert_eq!(n, 0, "re-prepared {n} times: {sql}");
        }
    }

    /// Text filters match through `emails.text_id` and, for an email
    /// without one (schema v15 fills it; a body indexed later has none),
    /// through the blob hash: both kinds are found, nothing else is.
    #[tokio::test]
    async fn text_search_matches_with_and_without_text_ids() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _, inbox) = one_account(&dir.path().join("s.db")).await;
        let a = store.append(inbox.id, msg("a zebracorn here")).await.unwrap();
        let b = store.append(inbox.id, msg("another zebracorn")).await.unwrap();
        store.append(inbox.id, msg("nothing to see")).await.unwrap();
        let body = |w: &str| crate::Filter::Contains(crate::query::TextField::Body, w.into());
        let ids: i64 = store
            .engine
            .read(|c| Ok(c.query_row("SELECT COUNT(text_id) FROM emails", [], |r| r.get(0))?))
            .await
            .unwrap();
        assert_eq!(ids, 3, "every new email carries its text row");
        assert_eq!(
            store.search_uids(inbox.id, body("zebracorn")).await.unwrap(),
            vec![a.uid, b.uid]
        );
        let b_id = b.id;
        store
            .engine
            .write(move |c| {
                c.execute("UPDATE emails SET text_id = NULL WHERE id = ?1", [b_id])?;
                Ok(((), Vec::new()))
            })
            .await
            .unwrap();
        assert_eq!(
            store.search_uids(inbox.id, body("zebracorn")).await.unwrap(),
            vec![a.uid, b.uid]
        );
        assert_eq!(store.search_uids(inbox.id, body("another")).await.unwrap(), vec![b.uid]);
        assert!(store.search_uids(inbox.id, body("absent")).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn stale_analyses_are_redone_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let (store, _, inbox) = one_account(&path).await;
        let raw = b"Subject: Re: t\r\nIn-Reply-To: <p@x>\r\n\r\nbody\r\n".to_vec();
        let a = store
            .append(
                inbox.id,
                NewMessage {
                    raw,
                    flags: vec![],
                    internal_date: 1,
                },
            )
            .await
            .unwrap();
        // What an older analyser left behind: fewer fields, older version.
        store
            .engine
            .write(|c| Ok((c.execute("UPDATE blobs SET info = '{}', info_version = 1", [])?, vec![])))
            .await
            .unwrap();
        let fresh = SqliteStore::open(&path).unwrap();
        let info = fresh.message_info(a.id).await.unwrap();
        assert_eq!(info.in_reply_to, vec!["p@x".to_string()]);
        let version: i64 = fresh
            .engine
            .read(|c| Ok(c.query_row("SELECT info_version FROM blobs", [], |r| r.get(0))?))
            .await
            .unwrap();
        assert_eq!(version, i64::from(letterbox_mail::ANALYSIS_VERSION));
    }
}
