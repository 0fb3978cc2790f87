//! Management commands: domains, accounts, aliases, local delivery.

use crate::cli::{AliasCmd, AppPasswordCmd, DeliverArgs, DkimCmd, DmarcCmd, DomainCmd, QuotaArgs, SpamCmd, UserCmd};
use crate::config::Config;
use anyhow::{bail, Context, Result};
use letterbox_store::sqlite::SqliteStore;
use letterbox_store::{
    DeliveryTarget, OutboundMessage, OutboundRecipient, OverQuota, Quota, Recipient, Store, StoreError, Usage,
};
use std::io::{BufRead, IsTerminal};

/// Longest password accepted from stdin or a prompt.
const MAX_PASSWORD_LEN: usize = 1024;

/// File name of the embedded database inside the data directory.
pub const DB_FILE: &str = "letterbox.db";

/// Create the data directory (mode 0700) and open the store in it.
pub fn open_store(cfg: &Config) -> Result<SqliteStore> {
    create_private_dir(&cfg.data_dir)?;
    SqliteStore::open(&cfg.data_dir.join(DB_FILE))
        .with_context(|| format!("cannot open the store in {}", cfg.data_dir.display()))
}

fn create_private_dir(dir: &std::path::Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if !dir.is_dir() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("cannot create data directory {}", dir.display()))?;
    }
    Ok(())
}

fn quota(cfg: &Config, q: &QuotaArgs) -> Quota {
    Quota {
        bytes: q.quota_bytes.unwrap_or(cfg.default_quota_bytes),
        messages: q.quota_messages.unwrap_or(cfg.default_quota_messages),
    }
}

/// Read a new password: twice at a terminal prompt, or one line of stdin.
fn read_password() -> Result<String> {
    let pw = if std::io::stdin().is_terminal() {
        let a = rpassword::prompt_password("New password: ").context("cannot read password")?;
        let b = rpassword::prompt_password("Repeat password: ").context("cannot read password")?;
        if a != b {
            bail!("the passwords do not match");
        }
        a
    } else {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .take(MAX_PASSWORD_LEN as u64 + 2)
            .read_line(&mut line)
            .context("cannot read password from standard input")?;
        line.trim_end_matches(['\r', '\n']).to_string()
    };
    if pw.is_empty() {
        bail!("the password must not be empty");
    }
    if pw.len() > MAX_PASSWORD_LEN {
        bail!("the password is longer than {MAX_PASSWORD_LEN} bytes");
    }
    Ok(pw)
}

use std::io::Read;

pub async fn hash(pw: String) -> Result<String> {
    tokio::task::spawn_blocking(move || letterbox_directory::hash_password(&pw))
        .await
        .context("password hashing task failed")?
        .context("cannot hash password")
}

pub async fn domain(cfg: &Config, cmd: DomainCmd) -> Result<()> {
    let store = open_store(cfg)?;
    match cmd {
        DomainCmd::Add { name } => {
            store.add_domain(&name).await?;
            let name = name.trim().to_lowercase();
            letterbox_mailauth::generate(&cfg.data_dir, &name, false)?;
            println!("domain {name} added; publish its DNS records (`letterbox dns {name}`)");
        }
        DomainCmd::List => {
            for d in store.list_domains().await? {
                println!("{}", d.name);
            }
        }
        DomainCmd::Remove { name } => {
            store.remove_domain(&name).await?;
            println!("domain {} removed", name.trim().to_lowercase());
        }
    }
    store.close();
    Ok(())
}

fn fmt_limit(v: u64) -> String {
    if v == 0 {
        "unlimited".into()
    } else {
        v.to_string()
    }
}

/// One account in `user list --json`: everything but the password hash.
#[derive(serde::Serialize)]
struct AccountSummary {
    address: String,
    quota: Quota,
    usage: Usage,
    /// PHC algorithm id of the stored hash (`argon2id`); null if malformed.
    password_scheme: Option<String>,
}

pub async fn user(cfg: &Config, cmd: UserCmd) -> Result<()> {
    let store = open_store(cfg)?;
    match cmd {
        UserCmd::Add { address, quota: q } => {
            letterbox_store::normalize_address(&address)?;
            if store.account(&address).await?.is_some() {
                bail!("account {} already exists", address.trim().to_lowercase());
            }
            let pw = read_password()?;
            let h = hash(pw).await?;
            store.add_account(&address, &h, quota(cfg, &q)).await?;
            println!("account {} added", address.trim().to_lowercase());
        }
        UserCmd::List { json: true } => {
            let accounts: Vec<AccountSummary> = store
                .list_accounts()
                .await?
                .into_iter()
                .map(|a| AccountSummary {
                    password_scheme: letterbox_directory::password_scheme(&a.password_hash),
                    address: a.address,
                    quota: a.quota,
                    usage: a.usage,
                })
                .collect();
            println!("{}", serde_json::to_string_pretty(&accounts)?);
        }
        UserCmd::List { json: false } => {
            println!(
                "{:<40} {:>12} {:>12} {:>9} {:>9}",
                "ADDRESS", "BYTES", "QUOTA", "MESSAGES", "QUOTA"
            );
            for a in store.list_accounts().await? {
                println!(
                    "{:<40} {:>12} {:>12} {:>9} {:>9}",
                    a.address,
                    a.usage.bytes,
                    fmt_limit(a.quota.bytes),
                    a.usage.messages,
                    fmt_limit(a.quota.messages)
                );
            }
        }
        UserCmd::Passwd { address } => {
            if store.account(&address).await?.is_none() {
                bail!("account {} does not exist", address.trim().to_lowercase());
            }
            let h = hash(read_password()?).await?;
            store.set_password(&address, &h).await?;
            println!("password of {} changed", address.trim().to_lowercase());
        }
        UserCmd::Quota { address, quota: q } => {
            let Some(a) = store.account(&address).await? else {
                bail!("account {} does not exist", address.trim().to_lowercase());
            };
            let new = Quota {
                bytes: q.quota_bytes.unwrap_or(a.quota.bytes),
                messages: q.quota_messages.unwrap_or(a.quota.messages),
            };
            store.set_quota(&address, new).await?;
            println!(
                "quota of {}: {} bytes, {} messages",
                a.address,
                fmt_limit(new.bytes),
                fmt_limit(new.messages)
            );
        }
        UserCmd::Remove { address } => {
            store.remove_account(&address).await?;
            println!("account {} removed", address.trim().to_lowercase());
        }
        UserCmd::AppPassword(cmd) => app_password(&store, cmd).await?,
    }
    store.close();
    Ok(())
}

async fn app_password(store: &dyn letterbox_store::Store, cmd: AppPasswordCmd) -> Result<()> {
    let address = match &cmd {
        AppPasswordCmd::Add { address, .. }
        | AppPasswordCmd::List { address }
        | AppPasswordCmd::Remove { address, .. } => address,
    };
    let Some(account) = store.account(address).await? else {
        bail!("account {} does not exist", address.trim().to_lowercase());
    };
    match cmd {
        AppPasswordCmd::Add { name, .. } => {
            let password = letterbox_directory::generate_app_password();
            let form = letterbox_directory::app_password_form(&password)
                .ok_or_else(|| anyhow::anyhow!("generated app password has an unexpected form"))?;
            let p = store
                .add_app_password(account.id, &name, &letterbox_directory::secret_digest(&form))
                .await?;
            println!("app password {} ({}) for {}: {password}", p.id, p.name, account.address);
        }
        AppPasswordCmd::List { .. } => {
            println!("{:>6}  {:<20}  NAME", "ID", "CREATED");
            for p in store.app_passwords(account.id).await? {
                let created = letterbox_jmap::date::utc(p.created);
                println!("{:>6}  {created:<20}  {}", p.id, p.name);
            }
        }
        AppPasswordCmd::Remove { id, .. } => {
            if !store.remove_app_password(account.id, id).await? {
                bail!("{} has no app password {id}", account.address);
            }
            println!("app password {id} of {} revoked", account.address);
        }
    }
    Ok(())
}

pub async fn alias(cfg: &Config, cmd: AliasCmd) -> Result<()> {
    let store = open_store(cfg)?;
    match cmd {
        AliasCmd::Add { source, targets } => {
            store.add_alias(&source, &targets).await?;
            println!("alias {} -> {} added", source.trim().to_lowercase(), targets.join(", "));
        }
        AliasCmd::List => {
            for a in store.list_aliases().await? {
                println!("{} -> {}", a.source, a.targets.join(", "));
            }
        }
        AliasCmd::Remove { source } => {
            store.remove_alias(&source).await?;
            println!("alias {} removed", source.trim().to_lowercase());
        }
    }
    store.close();
    Ok(())
}

/// `letterbox spam`: allow/block lists, per account or site-wide (account 0).
pub async fn spam(cfg: &Config, cmd: SpamCmd) -> Result<()> {
    let store = open_store(cfg)?;
    let result = spam_cmd(&store, cmd).await;
    store.close();
    result
}

async fn spam_cmd(store: &SqliteStore, cmd: SpamCmd) -> Result<()> {
    let owner = |user: &Option<String>| {
        let user = user.clone();
        async move {
            match user {
                None => Ok::<_, anyhow::Error>((0, "every account".to_string())),
                Some(u) => {
                    let a = store.account(&u).await?.with_context(|| format!("no account {u}"))?;
                    Ok((a.id, a.address))
                }
            }
        }
    };
    let check = |entry: &str| -> Result<String> { Ok(letterbox_store::spam_list_entry(entry)?) };
    match cmd {
        SpamCmd::Allow { entry, user } => {
            let (id, who) = owner(&user).await?;
            let e = check(&entry)?;
            store.set_spam_list(id, &e, Some(true)).await?;
            println!("mail from {e} is allowed for {who}");
        }
        SpamCmd::Block { entry, user } => {
            let (id, who) = owner(&user).await?;
            let e = check(&entry)?;
            store.set_spam_list(id, &e, Some(false)).await?;
            println!("mail from {e} goes to Junk for {who}");
        }
        SpamCmd::Remove { entry, user } => {
            let (id, who) = owner(&user).await?;
            let e = entry.trim().to_lowercase();
            if !store.set_spam_list(id, &e, None).await? {
                bail!("{e} is not listed for {who}");
            }
            println!("{e} removed for {who}");
        }
        SpamCmd::Learn { user, spam, files, .. } => {
            let (id, who) = owner(&user).await?;
            let mut n = 0;
            for f in &files {
                let raw = read_message_file(f)?;
                let tokens = letterbox_inbound::spam::bayes::tokens(&raw);
                // Not an email of the store: a negative id from the
                // content, so learning the same file twice counts once.
                let key = -(i64::from_be_bytes(content_key(&raw)) & i64::MAX) - 1;
                if store.bayes_train(id, key, spam, &tokens).await? {
                    n += 1;
                }
            }
            let class = if spam { "spam" } else { "ham" };
            println!("{n} of {} message(s) learnt as {class} for {who}", files.len());
        }
        SpamCmd::Check { user, files } => {
            // Without --user: the site-wide model (account 0) judges.
            let accounts = vec![owner(&user).await?.0];
            let shared: letterbox_store::SharedStore = std::sync::Arc::new(store.clone());
            let cfg = letterbox_inbound::SpamConfig::default();
            for f in &files {
                let raw = read_message_file(f)?;
                let facts = letterbox_inbound::spam::Facts {
                    auth: None,
                    client: None,
                    hostname: "localhost".into(),
                };
                let verdict =
                    letterbox_inbound::spam::judge(shared.clone(), &cfg, std::sync::Arc::new(raw), facts, &accounts)
                        .await?;
                let v = verdict.for_account(accounts[0]);
                let tests: Vec<String> = v.hits.iter().map(|h| format!("{}={:.1}", h.name, h.score)).collect();
                println!(
                    "{} score={:.1} junk={} tests={}",
                    f.display(),
                    v.score,
                    if v.junk { "yes" } else { "no" },
                    tests.join(",")
                );
            }
        }
        SpamCmd::Stats { user, json } => {
            let (id, who) = owner(&user).await?;
            let c = store.bayes_counts(id, &[]).await?;
            if json {
                println!(
                    "{}",
                    serde_json::json!({"spam": c.spam_messages, "ham": c.ham_messages})
                );
            } else {
                let model = if id == 0 {
                    "site-wide model".to_string()
                } else {
                    format!("model of {who}")
                };
                println!("{model}: {} spam, {} ham learnt", c.spam_messages, c.ham_messages);
            }
        }
        SpamCmd::List { user } => {
            let filter = match &user {
                Some(_) => Some(owner(&user).await?.0),
                None => None,
            };
            let accounts = store.list_accounts().await?;
            for e in store.spam_lists(filter).await? {
                let who = if e.account_id == 0 {
                    "*".to_string()
                } else {
                    accounts
                        .iter()
                        .find(|a| a.id == e.account_id)
                        .map_or_else(|| e.account_id.to_string(), |a| a.address.clone())
                };
                println!("{} {} {}", if e.allow { "allow" } else { "block" }, e.entry, who);
            }
        }
    }
    Ok(())
}

/// `letterbox dmarc`: send the recorded results now, or read reports received.
pub async fn dmarc(cfg: &Config, cmd: DmarcCmd) -> Result<()> {
    let store = open_store(cfg)?;
    let shared: letterbox_store::SharedStore = std::sync::Arc::new(store.clone());
    let result = async {
        match cmd {
            DmarcCmd::Send => {
                let dns = letterbox_dns::HickoryDns::new(cfg.delivery.dns_server).context("DNS resolver set-up failed")?;
                let inbound = crate::serve::inbound_pipeline(cfg, shared.clone(), &dns);
                let n = inbound
                    .send_dmarc_reports(letterbox_store::unix_now() + 1, true)
                    .await?;
                println!("{n} DMARC report(s) sent");
            }
            DmarcCmd::Report { address, mailbox, json } => {
                let account = store
                    .account(&address)
                    .await?
                    .with_context(|| format!("no account {address}"))?;
                let mb = store
                    .mailbox(account.id, &mailbox)
                    .await?
                    .with_context(|| format!("{address} has no mailbox {mailbox}"))?;
                let mut out = Vec::new();
                for m in store.messages(mb.id).await? {
                    let raw = store.raw_message(m.id).await?;
                    if let Some(r) = letterbox_mailauth::dmarc_report::read_report(&raw, 16 << 20) {
                        out.push(r);
                    }
                }
                if json {
                    let v: Vec<serde_json::Value> = out
                        .iter()
                        .map(|r| {
                            serde_json::json!({
                                "org": r.org, "report_id": r.report_id, "domain": r.domain,
                                "begin": r.begin, "end": r.end,
                                "rows": r.rows.iter().map(|(ip, n, d, dk, sp, hf)| serde_json::json!({
                                    "source_ip": ip, "count": n, "disposition": d, "dkim": dk, "spf": sp, "header_from": hf,
                                })).collect::<Vec<_>>(),
                            })
                        })
                        .collect();
                    println!("{}", serde_json::Value::Array(v));
                } else {
                    for r in &out {
                        println!("{} for {} ({}..{}), report {}", r.org, r.domain, r.begin, r.end, r.report_id);
                        for (ip, n, d, dk, sp, hf) in &r.rows {
                            println!("  {ip:<40} {n:>6}  disposition={d} dkim={dk} spf={sp} from={hf}");
                        }
                    }
                    if out.is_empty() {
                        println!("no DMARC reports in {address} {mailbox}");
                    }
                }
            }
        }
        Ok::<(), anyhow::Error>(())
    }
    .await;
    store.close();
    result
}

/// A message file for `spam learn/check`: bare LF line ends become CRLF.
fn read_message_file(path: &std::path::Path) -> Result<Vec<u8>> {
    let meta = std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
    if meta.len() > MAX_DELIVER_SIZE {
        bail!("{} is larger than {MAX_DELIVER_SIZE} bytes", path.display());
    }
    let raw = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(letterbox_mail::to_wire(&raw))
}

/// Eight bytes identifying a message's content.
fn content_key(raw: &[u8]) -> [u8; 8] {
    use sha2::Digest;
    let d = sha2::Sha256::digest(raw);
    let mut k = [0u8; 8];
    k.copy_from_slice(&d[..8]);
    k
}

/// Largest message `deliver` accepts on standard input.
const MAX_DELIVER_SIZE: u64 = 64 * 1024 * 1024;

/// `letterbox deliver`: store one message from standard input for a local
/// address, through the same `Store::accept` the SMTP server uses.
pub async fn deliver(cfg: &Config, args: DeliverArgs) -> Result<()> {
    let mut raw = Vec::new();
    std::io::stdin()
        .lock()
        .take(MAX_DELIVER_SIZE + 1)
        .read_to_end(&mut raw)
        .context("cannot read the message from standard input")?;
    if raw.len() as u64 > MAX_DELIVER_SIZE {
        bail!("the message is larger than {MAX_DELIVER_SIZE} bytes");
    }
    if raw.is_empty() {
        bail!("no message on standard input");
    }
    let store = open_store(cfg)?;
    let shared: letterbox_store::SharedStore = std::sync::Arc::new(store.clone());
    let result = deliver_to(&shared, &args, raw).await;
    store.close();
    result
}

/// `letterbox deliver` failed in a way worth retrying (a mailbox full for
/// now, a storage error): it exits with `EX_TEMPFAIL` (75, sysexits.h), so
/// a calling MTA defers instead of bouncing. Nothing was stored.
#[derive(Debug)]
pub struct TempFail(pub String);

impl std::fmt::Display for TempFail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TempFail {}

/// All or nothing, like an SMTP transaction's 250 (RFC 5321 §6.1): every
/// receiving account's copy and the queue entry for the address's remote
/// forwards commit together, or nothing does and the command fails (its
/// caller owns the failure, so nothing is bounced from here).
async fn deliver_to(store: &letterbox_store::SharedStore, args: &DeliverArgs, raw: Vec<u8>) -> Result<()> {
    // `letterbox deliver` is the administrator's: no checks, no verdict.
    let inbound = letterbox_inbound::Inbound::new(store.clone(), "localhost", None, Default::default());
    let address = letterbox_store::normalize_address(&args.address)?;
    let (accounts, external) = match store.resolve_recipient(&address).await? {
        Recipient::Local(r) => (r.accounts, r.external),
        Recipient::NotLocal => bail!("{address} is not in a local domain"),
        Recipient::Unknown => bail!("no account or alias {address}"),
    };
    let sender = match &args.sender {
        Some(s) if !s.is_empty() => letterbox_store::normalize_address(s).context("--sender")?,
        _ => String::new(),
    };
    let targets: Vec<DeliveryTarget> = accounts
        .iter()
        .map(|&account_id| DeliveryTarget {
            account_id,
            mailbox: args.mailbox.clone(),
            special_use: None,
            flags: Vec::new(),
        })
        .collect();
    let forwards = external.len();
    let arrival = letterbox_inbound::Arrival {
        origin: letterbox_inbound::Origin::Local,
        message: raw.clone(),
        trace: String::new(),
        targets,
        local_dsn: Vec::new(),
        outbound: OutboundMessage {
            sender,
            recipients: external.into_iter().map(OutboundRecipient::plain).collect(),
            raw,
            envid: None,
            ret: None,
        },
        over_quota: OverQuota::Refuse,
        submission: None,
    };
    let accepted = match inbound.deliver(arrival).await {
        Ok(letterbox_inbound::Delivery::Accepted { accepted, .. }) => accepted,
        Ok(letterbox_inbound::Delivery::Refused(r)) => bail!("refused: {} {} {}", r.code, r.status, r.text),
        Err(StoreError::QuotaExceeded {
            account,
            permanent: true,
        }) => {
            bail!("the message does not fit in the quota of {account}; nothing was delivered")
        }
        Err(StoreError::QuotaExceeded { account, .. }) => {
            return Err(TempFail(format!("{account} is over quota; nothing was delivered")).into())
        }
        Err(e @ (StoreError::Backend(_) | StoreError::Closed)) => {
            return Err(TempFail(format!("storage failure, nothing was delivered: {e}")).into())
        }
        Err(e) => return Err(e.into()),
    };
    for (_, mailbox, uid) in &accepted.delivered {
        println!("delivered to {address} (mailbox id {mailbox}, uid {uid})");
    }
    if let Some(id) = accepted.queue_id {
        println!("queued for {forwards} remote address(es) of {address} (queue id {id})");
    }
    Ok(())
}

pub fn dkim(cfg: &Config, cmd: DkimCmd) -> Result<()> {
    match cmd {
        DkimCmd::Generate { domain, replace } => {
            let domain = domain.trim().to_lowercase();
            if letterbox_mailauth::generate(&cfg.data_dir, &domain, replace)? {
                println!("DKIM keys for {domain} generated; publish them (`letterbox dns {domain}`)");
            } else {
                println!("{domain} already has DKIM keys (use --replace to make new ones)");
            }
        }
    }
    Ok(())
}

pub async fn dns(cfg: &Config, domain: &str) -> Result<()> {
    let store = open_store(cfg)?;
    let domain = domain.trim().to_lowercase();
    let known = store.list_domains().await?.iter().any(|d| d.name == domain);
    store.close();
    if !known {
        bail!("{domain} is not a local domain (add it with `letterbox domain add {domain}`)");
    }
    let keys = letterbox_mailauth::DkimKeys::load(&cfg.data_dir, &domain)?;
    let selectors = letterbox_mailauth::Selectors::from_prefix(&cfg.dkim.selector);
    print!(
        "{}",
        letterbox_mailauth::dns_records(&domain, &cfg.hostname, keys.as_ref(), &selectors)?
    );
    Ok(())
}
