//! The vacation responder's settings (RFC 8621 §8 VacationResponse, one per
//! account) and its memory of whom it answered (RFC 3834 §2: at most one
//! reply per sender per period).

/// RFC 8621 §8.1: the singleton VacationResponse of an account.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Vacation {
    pub enabled: bool,
    /// Unix seconds; replies only from then (inclusive).
    pub from_date: Option<i64>,
    /// Unix seconds; replies only before then.
    pub to_date: Option<i64>,
    pub subject: Option<String>,
    pub text_body: Option<String>,
    pub html_body: Option<String>,
}

impl Vacation {
    /// Whether it answers mail arriving at `now`.
    pub fn active_at(&self, now: i64) -> bool {
        self.enabled && self.from_date.is_none_or(|f| now >= f) && self.to_date.is_none_or(|t| now < t)
    }
}

/// Largest subject or body the store keeps (bytes).
pub const MAX_VACATION_TEXT: usize = 64 * 1024;

/// RFC 3834 §2 suggests a period of several days; seven, as Sieve's
/// vacation (RFC 5230 §4.1) defaults to.
pub const VACATION_PERIOD_SECS: i64 = 7 * 24 * 3600;

/// Most senders remembered per account; the oldest are forgotten first.
pub const MAX_VACATION_SENDERS: i64 = 10_000;
