//! Classification of assets by CIDR rules: the rule (as the event log and API carry it), the
//! input a user submits, its validation, and [`RuleSet`], the longest-prefix matcher (then the
//! lower priority value, then the older rule) that says which rule classifies an address.
//! Pure: the node applies it when it answers, the web UI can check input with it.

use std::collections::HashMap;
use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// The environments an asset can belong to.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    rkyv::Archive,
    rkyv::Serialize,
    rkyv::Deserialize,
)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Environment {
    /// Production.
    Prod,
    /// User acceptance testing.
    Uat,
    /// Quality assurance.
    Qa,
    /// Test.
    Test,
    /// Development.
    Dev,
}

impl Environment {
    /// Every environment, in order.
    pub const ALL: [Environment; 5] = [
        Environment::Prod,
        Environment::Uat,
        Environment::Qa,
        Environment::Test,
        Environment::Dev,
    ];

    /// Its name (`prod`, `uat`, …).
    pub fn name(self) -> &'static str {
        match self {
            Environment::Prod => "prod",
            Environment::Uat => "uat",
            Environment::Qa => "qa",
            Environment::Test => "test",
            Environment::Dev => "dev",
        }
    }

    /// The environment of a name (`prod`, `PROD`, …).
    pub fn parse(name: &str) -> Option<Environment> {
        Environment::ALL
            .into_iter()
            .find(|e| e.name().eq_ignore_ascii_case(name))
    }
}

/// A classification rule: addresses in `cidr` get its attributes.
#[derive(
    Clone,
    Debug,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    rkyv::Archive,
    rkyv::Serialize,
    rkyv::Deserialize,
)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ClassificationRule {
    /// Assigned when the rule is created; stable across edits.
    pub id: String,
    /// What the network is (`payments-db`).
    pub name: String,
    /// The network, normalised (`10.1.0.0/16`; host bits cleared).
    pub cidr: String,
    /// Environment of the assets in it.
    pub environment: Option<Environment>,
    /// Data centre.
    pub datacenter: Option<String>,
    /// Location (site, city, rack…).
    pub location: Option<String>,
    /// Whether its assets count as internal (unset: decided by the configured networks).
    pub internal: Option<bool>,
    /// Among rules of the same prefix length, the lower value wins.
    pub priority: u32,
    /// When it was created, UTC ms.
    pub created_ms: u64,
    /// When it was last changed, UTC ms.
    pub updated_ms: u64,
}

/// A rule as a user submits it (create or replace).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RuleInput {
    /// 1 to 100 characters.
    pub name: String,
    /// An IPv4 or IPv6 network (`10.1.0.0/16`) or address.
    pub cidr: String,
    /// `prod`, `uat`, `qa`, `test` or `dev`.
    #[serde(default)]
    pub environment: Option<String>,
    /// Data centre, at most 100 characters.
    #[serde(default)]
    pub datacenter: Option<String>,
    /// Location, at most 100 characters.
    #[serde(default)]
    pub location: Option<String>,
    /// Whether its assets count as internal.
    #[serde(default)]
    pub internal: Option<bool>,
    /// Tie-break among rules of the same prefix length: lower wins (default 100).
    #[serde(default)]
    pub priority: Option<u32>,
}

/// A field of a rule that is wrong, and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {why}")]
pub struct RuleError {
    /// The field.
    pub field: &'static str,
    /// Why.
    pub why: String,
}

fn text(field: &'static str, value: Option<&str>, max: usize) -> Result<Option<String>, RuleError> {
    let Some(v) = value.map(str::trim) else {
        return Ok(None);
    };
    if v.is_empty() {
        return Ok(None);
    }
    if v.chars().count() > max || v.chars().any(char::is_control) {
        return Err(RuleError {
            field,
            why: format!("at most {max} characters, no control characters"),
        });
    }
    Ok(Some(v.to_string()))
}

impl RuleInput {
    /// Validates the input into a rule with `id`, stamped `now_ms` (`created_ms` kept from the
    /// rule it replaces, if any).
    pub fn into_rule(
        self,
        id: String,
        created_ms: Option<u64>,
        now_ms: u64,
    ) -> Result<ClassificationRule, RuleError> {
        let name = text("name", Some(&self.name), 100)?.ok_or(RuleError {
            field: "name",
            why: "required".into(),
        })?;
        let cidr = parse_cidr(&self.cidr).ok_or_else(|| RuleError {
            field: "cidr",
            why: format!(
                "`{}` is not an IP network (10.1.0.0/16) or address",
                self.cidr
            ),
        })?;
        let environment = match self.environment.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(e) => Some(Environment::parse(e).ok_or_else(|| RuleError {
                field: "environment",
                why: format!("`{e}` is not one of prod, uat, qa, test, dev"),
            })?),
        };
        Ok(ClassificationRule {
            id,
            name,
            cidr: cidr.to_string(),
            environment,
            datacenter: text("datacenter", self.datacenter.as_deref(), 100)?,
            location: text("location", self.location.as_deref(), 100)?,
            internal: self.internal,
            priority: self.priority.unwrap_or(100),
            created_ms: created_ms.unwrap_or(now_ms),
            updated_ms: now_ms,
        })
    }
}

/// A network or a single address (`/32`, `/128`), host bits cleared.
pub fn parse_cidr(s: &str) -> Option<IpNet> {
    let s = s.trim();
    s.parse::<IpNet>()
        .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
        .ok()
        .map(|n| n.trunc())
}

/// What the rules say about one address.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Classification {
    /// The rule that decided (longest prefix, then lowest priority, then oldest).
    pub rule_id: Option<String>,
    /// Its name.
    pub rule_name: Option<String>,
    /// Environment.
    pub environment: Option<Environment>,
    /// Data centre.
    pub datacenter: Option<String>,
    /// Location.
    pub location: Option<String>,
    /// Internal, if the rule says.
    pub internal: Option<bool>,
}

/// The rules, indexed for longest-prefix lookups: per prefix length present, a map from the
/// network address to the winning rule of that network.
#[derive(Clone, Debug, Default)]
pub struct RuleSet {
    /// (is IPv6, prefix length), longest first, with the winner per network.
    levels: Vec<((bool, u8), HashMap<IpAddr, usize>)>,
    rules: Vec<ClassificationRule>,
}

fn better(a: &ClassificationRule, b: &ClassificationRule) -> bool {
    (a.priority, a.created_ms, &a.id) < (b.priority, b.created_ms, &b.id)
}

impl RuleSet {
    /// Indexes `rules` (rules whose `cidr` does not parse are left out).
    pub fn new(rules: Vec<ClassificationRule>) -> RuleSet {
        let mut by_level: HashMap<(bool, u8), HashMap<IpAddr, usize>> = HashMap::new();
        for (i, rule) in rules.iter().enumerate() {
            let Some(net) = parse_cidr(&rule.cidr) else {
                continue;
            };
            let level = by_level
                .entry((net.addr().is_ipv6(), net.prefix_len()))
                .or_default();
            let slot = level.entry(net.network()).or_insert(i);
            if let Some(current) = rules.get(*slot) {
                if better(rule, current) {
                    *slot = i;
                }
            }
        }
        let mut levels: Vec<_> = by_level.into_iter().collect();
        levels.sort_by(|a, b| b.0 .1.cmp(&a.0 .1).then(a.0 .0.cmp(&b.0 .0)));
        RuleSet { levels, rules }
    }

    /// The rules, in the order given.
    pub fn rules(&self) -> &[ClassificationRule] {
        &self.rules
    }

    /// The rule that classifies `ip`, if any.
    pub fn rule_for(&self, ip: IpAddr) -> Option<&ClassificationRule> {
        for ((v6, prefix), level) in &self.levels {
            if *v6 != ip.is_ipv6() {
                continue;
            }
            let network = IpNet::new(ip, *prefix).ok()?.network();
            if let Some(rule) = level.get(&network).and_then(|&i| self.rules.get(i)) {
                return Some(rule);
            }
        }
        None
    }

    /// What the rules say about `ip`.
    pub fn classify(&self, ip: IpAddr) -> Classification {
        self.rule_for(ip)
            .map_or_else(Classification::default, |r| Classification {
                rule_id: Some(r.id.clone()),
                rule_name: Some(r.name.clone()),
                environment: r.environment,
                datacenter: r.datacenter.clone(),
                location: r.location.clone(),
                internal: r.internal,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(id: &str, cidr: &str, priority: u32, env: &str) -> ClassificationRule {
        RuleInput {
            name: id.into(),
            cidr: cidr.into(),
            environment: Some(env.into()),
            datacenter: None,
            location: None,
            internal: None,
            priority: Some(priority),
        }
        .into_rule(id.into(), None, 1)
        .unwrap_or_else(|e| panic!("{e}"))
    }

    fn env_of(set: &RuleSet, ip: &str) -> Option<&'static str> {
        let ip: IpAddr = ip.parse().ok()?;
        set.classify(ip).environment.map(Environment::name)
    }

    #[test]
    fn the_longest_prefix_wins_then_the_lower_priority() {
        let set = RuleSet::new(vec![
            rule("a", "10.0.0.0/8", 1, "prod"),
            rule("b", "10.1.0.0/16", 50, "uat"),
            rule("c", "10.1.0.0/16", 10, "qa"),
            rule("d", "10.1.2.3", 99, "dev"),
            rule("e", "2001:db8::/32", 1, "test"),
        ]);
        assert_eq!(env_of(&set, "10.9.9.9"), Some("prod"));
        assert_eq!(env_of(&set, "10.1.9.9"), Some("qa"));
        assert_eq!(env_of(&set, "10.1.2.3"), Some("dev"));
        assert_eq!(env_of(&set, "2001:db8::1"), Some("test"));
        assert_eq!(env_of(&set, "192.168.0.1"), None);
        assert_eq!(env_of(&set, "::ffff:10.1.2.3"), None);
    }

    #[test]
    fn input_is_validated_field_by_field() {
        let base = RuleInput {
            name: "x".into(),
            cidr: "10.1.2.3/16".into(),
            environment: None,
            datacenter: None,
            location: None,
            internal: None,
            priority: None,
        };
        let ok = base.clone().into_rule("1".into(), None, 5);
        assert_eq!(ok.as_ref().map(|r| r.cidr.as_str()), Ok("10.1.0.0/16"));
        assert_eq!(ok.map(|r| r.priority), Ok(100));
        let field = |input: RuleInput| input.into_rule("1".into(), None, 5).err().map(|e| e.field);
        assert_eq!(
            field(RuleInput {
                cidr: "10.1/99".into(),
                ..base.clone()
            }),
            Some("cidr")
        );
        assert_eq!(
            field(RuleInput {
                name: " ".into(),
                ..base.clone()
            }),
            Some("name")
        );
        assert_eq!(
            field(RuleInput {
                environment: Some("staging".into()),
                ..base.clone()
            }),
            Some("environment")
        );
        assert_eq!(
            field(RuleInput {
                location: Some("a\nb".into()),
                ..base.clone()
            }),
            Some("location")
        );
    }
}
