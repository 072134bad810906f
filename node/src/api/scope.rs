//! Scoped roles: a user whose `scope` names networks (or federated sites, by their networks)
//! sees only the assets in them, and the
//! dependencies, flows, advisories and alerts touching them. [`Scope`] is what a handler asks
//! for; the auth middleware refuses scoped callers every route that does not ask.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use ipnet::IpNet;

use super::params::Failure;
use super::AppState;
use crate::auth::Caller;

/// The networks a request may see: every one (no scope), or those of its user's scope.
#[derive(Clone, Debug, Default)]
pub struct Scope(Option<Arc<[IpNet]>>);

impl Scope {
    /// The scope of a user's `scope` list: None when it is empty (everything). `site:NAME`
    /// stands for the networks `sites` gives that site (a federation's `federation.networks`);
    /// a site without networks, and anything else that is not a network, matches nothing.
    pub fn of(scope: &[String], sites: Option<&BTreeMap<String, Vec<IpNet>>>) -> Scope {
        if scope.is_empty() {
            return Scope(None);
        }
        let mut nets: Vec<IpNet> = Vec::new();
        for entry in scope {
            if let Some(site) = entry.strip_prefix("site:") {
                nets.extend(sites.and_then(|s| s.get(site)).into_iter().flatten());
            } else if let Some(net) = entry
                .parse::<IpNet>()
                .ok()
                .or_else(|| entry.parse::<IpAddr>().ok().map(IpNet::from))
            {
                nets.push(net);
            }
        }
        Scope(Some(nets.into()))
    }

    /// Its networks; None when it does not limit.
    pub fn networks(&self) -> Option<Vec<IpNet>> {
        self.0.as_ref().map(|nets| nets.to_vec())
    }

    /// Whether it limits anything.
    pub fn is_limited(&self) -> bool {
        self.0.is_some()
    }

    /// Whether `ip` is in it.
    pub fn sees(&self, ip: &IpAddr) -> bool {
        self.0
            .as_ref()
            .is_none_or(|nets| nets.iter().any(|n| n.contains(ip)))
    }

    /// Whether either end of a conversation is in it.
    pub fn sees_either(&self, a: &IpAddr, b: &IpAddr) -> bool {
        self.sees(a) || self.sees(b)
    }

    /// Whether a subject sentence (an advisory's or alert's) names an address in it: words
    /// that are addresses, `address:port…` or dependency ids (`client>server:port/protocol`).
    pub fn sees_subject(&self, subject: &str) -> bool {
        if !self.is_limited() {
            return true;
        }
        subject
            .split(|c: char| c.is_whitespace() || ",;()[]>".contains(c))
            .filter_map(address_in)
            .any(|ip| self.sees(&ip))
    }

    /// Refuses `ip` when it is outside: 403, naming the scope.
    pub fn check(&self, ip: &IpAddr) -> Result<(), Failure> {
        if self.sees(ip) {
            return Ok(());
        }
        Err(Failure::Forbidden(format!(
            "{ip} is outside this role's scope ({})",
            self.describe()
        )))
    }

    /// The scope's networks, comma-separated.
    pub fn describe(&self) -> String {
        self.0.as_ref().map_or("everything".into(), |nets| {
            nets.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        })
    }
}

/// The address a word is or starts with (`10.0.0.1`, `10.0.0.1:443/6`, `2001:db8::1`).
fn address_in(word: &str) -> Option<IpAddr> {
    let word = word.trim_matches(|c: char| c == '.' || c == '\'' || c == '"' || c == '`');
    word.parse().ok().or_else(|| {
        let (host, _) = word.rsplit_once(':')?;
        host.trim_matches(['[', ']']).parse().ok()
    })
}

impl FromRequestParts<AppState> for Scope {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, s: &AppState) -> Result<Scope, Self::Rejection> {
        let sites = s.federation.as_ref().map(|f| &f.networks);
        Ok(parts
            .extensions
            .get::<Caller>()
            .map_or_else(Scope::default, |c| {
                Scope::of(&c.principal.user.scope, sites)
            }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scope_sees_its_networks_and_subjects_naming_them() {
        let all = Scope::of(&[], None);
        assert!(!all.is_limited() && all.sees(&"8.8.8.8".parse().unwrap()));
        let s = Scope::of(&["10.1.0.0/16".into(), "2001:db8::/32".into()], None);
        assert!(s.sees(&"10.1.2.3".parse().unwrap()));
        assert!(!s.sees(&"10.2.0.1".parse().unwrap()));
        assert!(s.sees_either(&"10.2.0.1".parse().unwrap(), &"10.1.0.1".parse().unwrap()));
        assert!(s.sees_subject("10.2.0.1>10.1.0.10:443/6"));
        assert!(s.sees_subject("Port scan from 10.1.9.9 (40 ports)"));
        assert!(s.sees_subject("2001:db8::5"));
        assert!(!s.sees_subject("10.2.0.1>10.3.0.10:443/6"));
        assert!(!s.sees_subject("node 1"));
        assert!(s.check(&"10.2.0.1".parse().unwrap()).is_err());
        assert_eq!(s.describe(), "10.1.0.0/16, 2001:db8::/32");

        let sites = BTreeMap::from([("paris".to_string(), vec!["10.7.0.0/16".parse().unwrap()])]);
        let paris = Scope::of(&["site:paris".into(), "site:nowhere".into()], Some(&sites));
        assert!(paris.sees(&"10.7.1.1".parse().unwrap()));
        assert!(!paris.sees(&"10.1.1.1".parse().unwrap()));
        let unknown = Scope::of(&["site:paris".into()], None);
        assert!(unknown.is_limited() && !unknown.sees(&"10.7.1.1".parse().unwrap()));
    }
}
