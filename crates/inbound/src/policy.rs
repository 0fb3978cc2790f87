//! Step 3: what the authentication results mean for delivery (RFC 7489
//! §6.6.4 policy, RFC 8617 §7.2 ARC overrides, forged own domains).

use crate::Refusal;
use letterbox_mailauth::{AuthReport, DmarcPolicy, Outcome};

/// What a DMARC `p=reject` failure does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DmarcRejectAction {
    /// `550 5.7.1` at the end of DATA, before any 250.
    Reject,
    /// Delivered to Junk instead.
    Quarantine,
}

#[derive(Debug, Clone)]
pub struct PolicyConfig {
    pub dmarc_reject: DmarcRejectAction,
    /// ARC sealers (`d=` of ARC-Seal) trusted to report that a message
    /// passed DMARC before they forwarded it (mailing lists, forwarders).
    pub trusted_arc_sealers: Vec<String>,
    /// Treat unauthenticated mail from outside with a From: in one of our
    /// own domains as a DMARC reject, whatever that domain's DNS says.
    pub reject_forged_own_domain: bool,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        PolicyConfig {
            dmarc_reject: DmarcRejectAction::Reject,
            trusted_arc_sealers: Vec::new(),
            reject_forged_own_domain: true,
        }
    }
}

/// The policy step's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Deliver,
    Junk,
    Refuse(Refusal),
}

/// Decide on `auth` (absent: the message was not checked). `own_from`:
/// the From: domain is one of ours.
pub fn decide(cfg: &PolicyConfig, auth: Option<&AuthReport>, own_from: bool) -> Decision {
    let Some(r) = auth else {
        return Decision::Deliver;
    };
    if r.dmarc == Outcome::Pass {
        return Decision::Deliver;
    }
    // RFC 8617 §7.2: a chain that validates, sealed last by a forwarder we
    // trust that saw the message pass DMARC, vouches for it.
    let arc_vouches = r.arc == Outcome::Pass
        && r.arc_dmarc_pass
        && r.arc_sealer
            .as_deref()
            .is_some_and(|s| cfg.trusted_arc_sealers.iter().any(|t| t.eq_ignore_ascii_case(s)));
    if arc_vouches {
        return Decision::Deliver;
    }
    let forged_own = own_from && cfg.reject_forged_own_domain;
    if r.dmarc == Outcome::TempError {
        // Neither pass nor fail (RFC 7489 §6.6.2): no refusal on a DNS
        // hiccup; our own domain's name is kept out of the inbox though.
        return if forged_own { Decision::Junk } else { Decision::Deliver };
    }
    let reject = forged_own || (r.dmarc == Outcome::Fail && r.dmarc_policy == DmarcPolicy::Reject);
    if reject {
        return match cfg.dmarc_reject {
            DmarcRejectAction::Reject => Decision::Refuse(Refusal {
                code: 550,
                status: "5.7.1",
                text: if forged_own {
                    format!("Message claims to be from {} but is not authenticated", r.from_domain)
                } else {
                    format!("Rejected by the DMARC policy of {}", r.from_domain)
                },
            }),
            DmarcRejectAction::Quarantine => Decision::Junk,
        };
    }
    if r.dmarc == Outcome::Fail && r.dmarc_policy == DmarcPolicy::Quarantine {
        return Decision::Junk;
    }
    Decision::Deliver
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(dmarc: Outcome, policy: DmarcPolicy) -> AuthReport {
        AuthReport {
            header: String::new(),
            spf: Outcome::Fail,
            dkim: Vec::new(),
            arc: Outcome::None,
            arc_sealer: None,
            arc_dmarc_pass: false,
            dmarc,
            dmarc_policy: policy,
            from_domain: "a.test".into(),
            iprev: Outcome::None,
            dmarc_facts: None,
        }
    }

    #[test]
    fn policies() {
        let cfg = PolicyConfig::default();
        let d = |o, p, own| decide(&cfg, Some(&report(o, p)), own);
        assert!(matches!(
            d(Outcome::Fail, DmarcPolicy::Reject, false),
            Decision::Refuse(_)
        ));
        assert_eq!(d(Outcome::Fail, DmarcPolicy::Quarantine, false), Decision::Junk);
        assert_eq!(d(Outcome::Fail, DmarcPolicy::None, false), Decision::Deliver);
        assert_eq!(d(Outcome::Pass, DmarcPolicy::Reject, true), Decision::Deliver);
        assert!(matches!(d(Outcome::None, DmarcPolicy::None, true), Decision::Refuse(_)));
        assert_eq!(d(Outcome::TempError, DmarcPolicy::Reject, false), Decision::Deliver);
        assert_eq!(decide(&cfg, None, true), Decision::Deliver);
        let q = PolicyConfig {
            dmarc_reject: DmarcRejectAction::Quarantine,
            ..PolicyConfig::default()
        };
        assert_eq!(
            decide(&q, Some(&report(Outcome::Fail, DmarcPolicy::Reject)), false),
            Decision::Junk
        );
    }

    #[test]
    fn trusted_arc_overrides() {
        let cfg = PolicyConfig {
            trusted_arc_sealers: vec!["lists.test".into()],
            ..PolicyConfig::default()
        };
        let mut r = report(Outcome::Fail, DmarcPolicy::Reject);
        r.arc = Outcome::Pass;
        r.arc_dmarc_pass = true;
        r.arc_sealer = Some("other.test".into());
        assert!(matches!(decide(&cfg, Some(&r), false), Decision::Refuse(_)));
        r.arc_sealer = Some("lists.test".into());
        assert_eq!(decide(&cfg, Some(&r), false), Decision::Deliver);
        r.arc_dmarc_pass = false;
        assert!(matches!(decide(&cfg, Some(&r), false), Decision::Refuse(_)));
    }
}
