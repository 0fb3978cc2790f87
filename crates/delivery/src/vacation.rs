//! The vacation responder: automatic replies to mail that reaches an
//! account whose VacationResponse (RFC 8621 §8) is on, under the rules of
//! RFC 3834 (automatic responses to electronic mail):
//! - §2: never to a null sender, an automatic message (`Auto-Submitted`
//!   other than `no`), a list (`List-*`, `Precedence: bulk/list/junk`), or
//!   mail that does not name the user in To/Cc/Bcc; at most one reply per
//!   sender per period ([`VACATION_PERIOD_SECS`]); never to oneself.
//! - §3: the reply goes to the envelope sender, from a null return path
//!   (§3.3), with `Auto-Submitted: auto-replied` (§5), `In-Reply-To` and
//!   `References` (§3.1.3–4) and a subject that says what it is (§3.1.5).
//!
//! Senders that are robots by name (MAILER-DAEMON, `owner-`, `-request`,
//! `noreply`) and Microsoft's `X-Auto-Response-Suppress` are skipped too,
//! as Sieve's vacation (RFC 5230 §4.6) and Exchange do.

use letterbox_store::vacation::VACATION_PERIOD_SECS;
use letterbox_store::{AccountId, AfterDelivery, OutboundRecipient, Recipient, SharedStore, Vacation};
use mail_builder::headers::address::Address as BAddress;
use mail_builder::headers::raw::Raw;
use mail_builder::MessageBuilder;
use mail_parser::{HeaderValue, MessageParser};
use std::sync::Arc;

/// What the responder needs to know of the incoming message.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Incoming {
    pub subject: Option<String>,
    pub message_id: Option<String>,
    pub references: Vec<String>,
    /// Lower-cased addresses of To, Cc and Bcc.
    pub recipients: Vec<String>,
    /// Why no automatic reply may be sent, read off the header.
    pub automatic: Option<&'static str>,
}

/// Most bytes of header read; a header past this is not worth answering.
const MAX_HEADER: usize = 256 * 1024;

fn ids(v: &HeaderValue<'_>) -> Vec<String> {
    match v {
        HeaderValue::Text(t) => vec![t.to_string()],
        HeaderValue::TextList(l) => l.iter().map(|t| t.to_string()).collect(),
        _ => vec![],
    }
}

impl Incoming {
    pub fn read(raw: &[u8]) -> Incoming {
        let head = &raw[..raw.len().min(MAX_HEADER)];
        let Some(m) = MessageParser::default().parse_headers(head) else {
            return Incoming {
                automatic: Some("unparsable header"),
                ..Incoming::default()
            };
        };
        let text = |name: &str| m.header_raw(name).map(|v| v.trim().to_ascii_lowercase());
        let automatic = if text("Auto-Submitted").is_some_and(|v| !v.starts_with("no")) {
            Some("Auto-Submitted")
        } else if text("Precedence").is_some_and(|v| matches!(v.as_str(), "bulk" | "list" | "junk")) {
            Some("Precedence")
        } else if ["List-Id", "List-Unsubscribe", "List-Post", "List-Help", "List-Owner"]
            .iter()
            .any(|h| m.header_raw(*h).is_some())
        {
            Some("list header")
        } else if text("X-Auto-Response-Suppress").is_some_and(|v| v.contains("oof") || v.contains("all")) {
            Some("X-Auto-Response-Suppress")
        } else {
            None
        };
        let mut recipients = Vec::new();
        for list in [m.to(), m.cc(), m.bcc()].into_iter().flatten() {
            recipients.extend(list.iter().filter_map(|a| a.address()).map(str::to_ascii_lowercase));
        }
        Incoming {
            subject: m.subject().map(str::to_string),
            message_id: m.message_id().map(str::to_string),
            references: ids(m.references()),
            recipients,
            automatic,
        }
    }
}

/// RFC 3834 §2: why `incoming` from `sender` gets no reply from an account
/// with the addresses `own`, or `None` when it may get one.
pub fn skip_reason(sender: &str, incoming: &Incoming, own: &[String]) -> Option<&'static str> {
    let sender = sender.to_ascii_lowercase();
    let Some((local, _)) = sender.rsplit_once('@') else {
        return Some("null or local-only sender");
    };
    if let Some(why) = incoming.automatic {
        return Some(why);
    }
    let robot = [
        "mailer-daemon",
        "postmaster",
        "listserv",
        "majordomo",
        "noreply",
        "no-reply",
        "donotreply",
    ];
    if robot.contains(&local)
        || local.starts_with("owner-")
        || local.ends_with("-request")
        || local.ends_with("-bounces")
    {
        return Some("sender is a robot");
    }
    if own.iter().any(|o| o.eq_ignore_ascii_case(&sender)) {
        return Some("sender is the account itself");
    }
    if !incoming
        .recipients
        .iter()
        .any(|r| own.iter().any(|o| o.eq_ignore_ascii_case(r)))
    {
        return Some("the account is not named in To, Cc or Bcc");
    }
    None
}

/// The reply (RFC 3834 §3), from `from` to `to`.
pub fn build_reply(v: &Vacation, from: &str, to: &str, incoming: &Incoming, hostname: &str) -> Vec<u8> {
    let subject = match (&v.subject, &incoming.subject) {
        (Some(s), _) if !s.trim().is_empty() => s.clone(),
        // §3.1.5: the original subject, prefixed so people see it is automatic.
        (_, Some(orig)) => format!("Auto: {orig}"),
        _ => "Automatic reply".to_string(),
    };
    let mut b = MessageBuilder::new()
        .from(BAddress::from(from.to_string()))
        .to(BAddress::from(to.to_string()))
        .subject(subject)
        .message_id(format!("{}@{}", unique(), hostname))
        .header("Auto-Submitted", Raw::new("auto-replied"));
    if let Some(id) = &incoming.message_id {
        let mut refs = incoming.references.clone();
        if !refs.contains(id) {
            refs.push(id.clone());
        }
        b = b.in_reply_to(id.clone()).references(refs);
    }
    let text = v
        .text_body
        .clone()
        .or_else(|| v.html_body.as_deref().map(html_to_text))
        .unwrap_or_else(|| "I am away and will read your message when I return.\n".to_string());
    b = b.text_body(text);
    if let Some(h) = &v.html_body {
        b = b.html_body(h.clone());
    }
    b.write_to_vec().unwrap_or_default()
}

/// A plain rendering of an HTML body for the text/plain part: tags dropped,
/// the common entities decoded.
fn html_to_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.replace("&nbsp;", " ")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

fn unique() -> String {
    use rand::Rng;
    let n: u128 = rand::thread_rng().gen();
    format!("vacation.{n:032x}")
}

/// The responder the server hands to every protocol that delivers.
pub struct Responder {
    store: SharedStore,
    inbound: letterbox_inbound::Inbound,
    hostname: String,
}

impl Responder {
    pub fn new(store: SharedStore, inbound: letterbox_inbound::Inbound, hostname: String) -> Arc<Responder> {
        Arc::new(Responder {
            store,
            inbound,
            hostname,
        })
    }

    /// Answer for one account, if due. Errors are logged: a reply that
    /// could not be sent loses no mail.
    async fn answer(&self, account: AccountId, sender: &str, incoming: &Incoming) {
        let now = letterbox_store::unix_now();
        let v = match self.store.vacation(account).await {
            Ok(v) if v.active_at(now) => v,
            Ok(_) => return,
            Err(e) => {
                tracing::warn!(account, error = %e, "vacation settings unreadable");
                return;
            }
        };
        let Ok(Some(acc)) = self.store.account_by_id(account).await else {
            return;
        };
        let own = match self.store.sender_addresses(account).await {
            Ok(o) => o,
            Err(_) => vec![acc.address.clone()],
        };
        if let Some(why) = skip_reason(sender, incoming, &own) {
            tracing::debug!(account, sender, why, "no vacation reply");
            return;
        }
        match self
            .store
            .vacation_reply_due(account, sender, now, VACATION_PERIOD_SECS)
            .await
        {
            Ok(true) => {}
            Ok(false) => return,
            Err(e) => {
                tracing::warn!(account, error = %e, "vacation memory unavailable");
                return;
            }
        }
        let raw = build_reply(&v, &acc.address, sender, incoming, &self.hostname);
        let (accounts, remote) = match self.store.resolve_recipient(sender).await {
            Ok(Recipient::Local(res)) => (res.accounts, vec![]),
            Ok(Recipient::NotLocal) => (vec![], vec![OutboundRecipient::plain(sender.to_string())]),
            _ => return,
        };
        // §3.3: a null return path, so nothing answers the answer.
        let arrival = letterbox_inbound::Arrival::from_null_sender(raw, &accounts, remote);
        match self.inbound.deliver(arrival).await {
            Ok(letterbox_inbound::Delivery::Accepted { accepted: a, .. }) => {
                tracing::info!(account, to = sender, queue_id = ?a.queue_id, "vacation reply sent")
            }
            Ok(letterbox_inbound::Delivery::Refused(r)) => {
                tracing::warn!(account, to = sender, reason = %r.text, "vacation reply refused")
            }
            Err(e) => tracing::warn!(account, to = sender, error = %e, "vacation reply not sent"),
        }
    }
}

impl AfterDelivery for Responder {
    fn delivered(&self, sender: &str, message: Arc<Vec<u8>>, mut accounts: Vec<AccountId>) {
        if sender.is_empty() || accounts.is_empty() {
            return;
        }
        accounts.sort_unstable();
        accounts.dedup();
        let me = Responder {
            store: self.store.clone(),
            inbound: self.inbound.clone(),
            hostname: self.hostname.clone(),
        };
        let sender = sender.to_string();
        tokio::spawn(async move {
            // Header parsing is bounded (MAX_HEADER) and cheap.
            let incoming = Incoming::read(&message);
            for account in accounts {
                me.answer(account, &sender, &incoming).await;
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OWN: &[&str] = &["alice@example.test", "a@example.test"];

    fn own() -> Vec<String> {
        OWN.iter().map(|s| s.to_string()).collect()
    }

    fn msg(extra: &str) -> Incoming {
        let raw = format!(
            "From: Bob <bob@remote.test>\r\nTo: Alice <alice@example.test>\r\nSubject: Plans\r\n\
             Message-ID: <m1@remote.test>\r\nReferences: <m0@remote.test>\r\n{extra}\r\nHi\r\n"
        );
        Incoming::read(raw.as_bytes())
    }

    #[test]
    fn personal_mail_from_a_person_gets_a_reply() {
        assert_eq!(skip_reason("bob@remote.test", &msg(""), &own()), None);
        assert_eq!(
            skip_reason("bob@remote.test", &msg("Auto-Submitted: no\r\n"), &own()),
            None
        );
    }

    #[test]
    fn automatic_list_robot_null_self_and_unnamed_are_skipped() {
        for extra in [
            "Auto-Submitted: auto-replied\r\n",
            "Auto-Submitted: auto-generated\r\n",
            "Precedence: bulk\r\n",
            "Precedence: list\r\n",
            "List-Id: <dev.lists.remote.test>\r\n",
            "List-Unsubscribe: <mailto:u@remote.test>\r\n",
            "X-Auto-Response-Suppress: OOF\r\n",
        ] {
            assert!(skip_reason("bob@remote.test", &msg(extra), &own()).is_some(), "{extra}");
        }
        for sender in [
            "",
            "MAILER-DAEMON@remote.test",
            "owner-dev@remote.test",
            "dev-request@remote.test",
            "noreply@remote.test",
        ] {
            assert!(skip_reason(sender, &msg(""), &own()).is_some(), "{sender}");
        }
        assert!(skip_reason("Alice@example.test", &msg(""), &own()).is_some());
        let bcc = Incoming::read(b"From: bob@remote.test\r\nTo: list@remote.test\r\nSubject: x\r\n\r\nHi\r\n");
        assert!(skip_reason("bob@remote.test", &bcc, &own()).is_some());
    }

    #[test]
    fn reply_is_marked_threaded_and_addressed() {
        let v = Vacation {
            enabled: true,
            text_body: Some("Back on Monday.".into()),
            ..Vacation::default()
        };
        let raw = String::from_utf8(build_reply(
            &v,
            "alice@example.test",
            "bob@remote.test",
            &msg(""),
            "mx.test",
        ))
        .unwrap();
        assert!(raw.contains("Auto-Submitted: auto-replied\r\n"), "{raw}");
        assert!(raw.contains("Subject: Auto: Plans\r\n"));
        assert!(raw.contains("In-Reply-To: <m1@remote.test>\r\n"));
        assert!(raw.contains("<m0@remote.test>") && raw.contains("References:"));
        assert!(raw.contains("To: <bob@remote.test>\r\n") || raw.contains("To: bob@remote.test\r\n"));
        assert!(raw.contains("Back on Monday."));
        let html = Vacation {
            enabled: true,
            subject: Some("Away".into()),
            html_body: Some("<p>Away &amp; back soon</p>".into()),
            ..Vacation::default()
        };
        let raw = String::from_utf8(build_reply(
            &html,
            "alice@example.test",
            "bob@remote.test",
            &msg(""),
            "mx.test",
        ))
        .unwrap();
        assert!(raw.contains("Subject: Away\r\n") && raw.contains("multipart/alternative"));
        assert!(raw.contains("Away & back soon"));
    }
}
