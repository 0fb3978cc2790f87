//! Recipient resolution, the same for every backend: exact account, then
//! alias, then `local+tag` sub-address, then catch-all `@domain`, with
//! aliases expanded recursively up to a depth and a total, and remote
//! targets reported for forwarding. A backend only answers the three
//! lookups of [`Directory`] (from its database, or from a snapshot it
//! fetched for the purpose).

use crate::{normalize_address, AccountId, Recipient, Resolution, Result};

/// Deepest alias chain followed.
pub const MAX_ALIAS_DEPTH: usize = 8;
/// Most addresses one expansion may visit.
pub const MAX_EXPANSION: usize = 1000;

/// The lookups resolution needs; addresses and domains come lower-cased.
pub trait Directory {
    /// Whether `domain` is one of ours.
    fn domain_exists(&self, domain: &str) -> Result<bool>;
    /// The account with this login address.
    fn account_id(&self, address: &str) -> Result<Option<AccountId>>;
    /// The targets of the alias with this source (`user@domain` or `@domain`).
    fn alias_targets(&self, source: &str) -> Result<Option<Vec<String>>>;
}

fn domain_of(address: &str) -> &str {
    address.rsplit_once('@').map_or("", |(_, d)| d)
}

/// Targets of one address, one level deep: the account itself, an alias,
/// the sub-address's base (`local+tag`), the catch-all. `None` when nothing
/// matches.
fn lookup_one(dir: &impl Directory, address: &str) -> Result<Option<Vec<String>>> {
    if dir.account_id(address)?.is_some() {
        return Ok(Some(vec![address.to_string()]));
    }
    if let Some(t) = dir.alias_targets(address)? {
        return Ok(Some(t));
    }
    let Some((local, domain)) = address.rsplit_once('@') else {
        return Ok(None);
    };
    if let Some((base, _tag)) = local.split_once('+') {
        let base = format!("{base}@{domain}");
        if dir.account_id(&base)?.is_some() {
            return Ok(Some(vec![base]));
        }
        if let Some(t) = dir.alias_targets(&base)? {
            return Ok(Some(t));
        }
    }
    dir.alias_targets(&format!("@{domain}"))
}

/// Where mail for `address` goes.
pub fn resolve_recipient(dir: &impl Directory, address: &str) -> Result<Recipient> {
    let Ok(address) = normalize_address(address) else {
        return Ok(Recipient::NotLocal);
    };
    if !dir.domain_exists(domain_of(&address))? {
        return Ok(Recipient::NotLocal);
    }
    let mut res = Resolution::default();
    let mut seen = std::collections::HashSet::new();
    let mut frontier = vec![(address, 0usize)];
    let mut matched_any = false;
    while let Some((addr, depth)) = frontier.pop() {
        if !seen.insert(addr.clone()) || seen.len() > MAX_EXPANSION {
            continue;
        }
        if !dir.domain_exists(domain_of(&addr))? {
            if !res.external.contains(&addr) {
                res.external.push(addr);
            }
            continue;
        }
        if let Some(id) = dir.account_id(&addr)? {
            matched_any = true;
            if !res.accounts.contains(&id) {
                res.accounts.push(id);
            }
            continue;
        }
        if depth >= MAX_ALIAS_DEPTH {
            continue;
        }
        if let Some(targets) = lookup_one(dir, &addr)? {
            matched_any = true;
            for t in targets {
                frontier.push((t, depth + 1));
            }
        }
    }
    if !matched_any || (res.accounts.is_empty() && res.external.is_empty()) {
        return Ok(Recipient::Unknown);
    }
    Ok(Recipient::Local(res))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    struct Fake {
        accounts: HashMap<&'static str, AccountId>,
        aliases: HashMap<&'static str, Vec<String>>,
    }

    impl Directory for Fake {
        fn domain_exists(&self, d: &str) -> Result<bool> {
            Ok(d == "ex.test")
        }
        fn account_id(&self, a: &str) -> Result<Option<AccountId>> {
            Ok(self.accounts.get(a).copied())
        }
        fn alias_targets(&self, s: &str) -> Result<Option<Vec<String>>> {
            Ok(self.aliases.get(s).cloned())
        }
    }

    fn fake() -> Fake {
        let t = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        Fake {
            accounts: HashMap::from([("a@ex.test", 1), ("b@ex.test", 2)]),
            aliases: HashMap::from([
                ("team@ex.test", t(&["a@ex.test", "b@ex.test", "x@far.test"])),
                ("loop1@ex.test", t(&["loop2@ex.test"])),
                ("loop2@ex.test", t(&["loop1@ex.test"])),
                ("@ex.test", t(&["b@ex.test"])),
            ]),
        }
    }

    fn local(r: Recipient) -> Resolution {
        match r {
            Recipient::Local(r) => r,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn accounts_aliases_subaddresses_catch_all() {
        let d = fake();
        assert_eq!(local(resolve_recipient(&d, "A@EX.test").unwrap()).accounts, vec![1]);
        let team = local(resolve_recipient(&d, "team@ex.test").unwrap());
        let mut acc = team.accounts.clone();
        acc.sort_unstable();
        assert_eq!((acc, team.external), (vec![1, 2], vec!["x@far.test".to_string()]));
        assert_eq!(
            local(resolve_recipient(&d, "a+news@ex.test").unwrap()).accounts,
            vec![1]
        );
        assert_eq!(
            local(resolve_recipient(&d, "nobody@ex.test").unwrap()).accounts,
            vec![2]
        );
        assert_eq!(resolve_recipient(&d, "a@far.test").unwrap(), Recipient::NotLocal);
        assert_eq!(resolve_recipient(&d, "not an address").unwrap(), Recipient::NotLocal);
        // An alias loop ends (it matched, but leads nowhere).
        assert_eq!(resolve_recipient(&d, "loop1@ex.test").unwrap(), Recipient::Unknown);
    }
}
