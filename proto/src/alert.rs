//! Alert rules and alerts: what to watch for (a new asset or dependency, one removed after its
//! idle time, a new external destination, an advisory of some severity, traffic over a
//! threshold), where (a CIDR, an environment, a port), when not (maintenance windows), who to
//! tell (notifiers named in the node's config); and the alerts they raise, acknowledged and
//! resolved as events, with the outcome of each notification.

use serde::{Deserialize, Serialize};

use crate::advisory::Severity;
use crate::classify::{parse_cidr, Environment};

pub use condition::AlertCondition;

// rkyv derives a resolver type for enums whose fields cannot carry docs; the allow is for that.
#[allow(missing_docs)]
mod condition {
    use super::*;

    /// What a rule fires on.
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
    #[serde(tag = "on", rename_all = "snake_case", deny_unknown_fields)]
    #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
    pub enum AlertCondition {
        /// An asset is discovered.
        NewAsset,
        /// A client calls a service for the first time.
        NewDependency,
        /// An asset expired: not seen for the idle time (`graph.idle_expiry`).
        AssetRemoved,
        /// A dependency expired: no traffic for the idle time.
        DependencyRemoved,
        /// An internal client calls an external server it never called before.
        NewExternalDestination,
        /// An advisory of at least this severity is raised (resolved with it).
        Advisory {
            /// `CRITICAL`, `WARNING` or `INFO`.
            min_severity: Severity,
        },
        /// A dependency carries more than this many bytes per second over one stats period.
        Traffic {
            /// Bytes per second, both directions.
            min_bytes_per_s: u64,
        },
    }

    impl AlertCondition {
        /// Its name (`new_dependency`, …).
        pub fn name(&self) -> &'static str {
            match self {
                AlertCondition::NewAsset => "new_asset",
                AlertCondition::NewDependency => "new_dependency",
                AlertCondition::AssetRemoved => "asset_removed",
                AlertCondition::DependencyRemoved => "dependency_removed",
                AlertCondition::NewExternalDestination => "new_external_destination",
                AlertCondition::Advisory { .. } => "advisory",
                AlertCondition::Traffic { .. } => "traffic",
            }
        }
    }
}

/// Where a rule applies; every part given must match.
#[derive(
    Clone,
    Debug,
    Default,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    rkyv::Archive,
    rkyv::Serialize,
    rkyv::Deserialize,
)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AlertScope {
    /// Either address of the asset or dependency in this network.
    #[serde(default)]
    pub cidr: Option<String>,
    /// Either asset in this environment (classification rules).
    #[serde(default)]
    pub environment: Option<Environment>,
    /// The service port of the dependency.
    #[serde(default)]
    pub port: Option<u16>,
}

/// A time during which the rule raises nothing.
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
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MaintenanceWindow {
    /// Start, UTC ms.
    pub start_ms: u64,
    /// End, UTC ms (exclusive).
    pub end_ms: u64,
}

/// An alert rule.
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
pub struct AlertRule {
    /// Assigned when created.
    pub id: String,
    /// What it watches for, in the user's words.
    pub name: String,
    /// Whether it raises alerts.
    pub enabled: bool,
    /// What it fires on.
    pub condition: AlertCondition,
    /// Where.
    pub scope: AlertScope,
    /// Severity of its alerts.
    pub severity: Severity,
    /// Notifier ids (from the node's `notifiers` config) told of each alert.
    pub notify: Vec<String>,
    /// When it stays silent.
    pub maintenance: Vec<MaintenanceWindow>,
    /// Created, UTC ms.
    pub created_ms: u64,
    /// Last changed, UTC ms.
    pub updated_ms: u64,
}

impl AlertRule {
    /// Whether `at_ms` falls in one of its maintenance windows.
    pub fn in_maintenance(&self, at_ms: u64) -> bool {
        self.maintenance
            .iter()
            .any(|w| w.start_ms <= at_ms && at_ms < w.end_ms)
    }
}

/// A rule as a user submits it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AlertRuleInput {
    /// 1 to 100 characters.
    pub name: String,
    /// Default true.
    #[serde(default)]
    pub enabled: Option<bool>,
    /// What it fires on: `{"on": "new_dependency"}`, `{"on": "advisory", "min_severity":
    /// "WARNING"}`, `{"on": "traffic", "min_bytes_per_s": 1000000}`, …
    pub condition: AlertCondition,
    /// Where (default: everywhere).
    #[serde(default)]
    pub scope: Option<AlertScope>,
    /// `CRITICAL`, `WARNING` (default) or `INFO`.
    #[serde(default)]
    pub severity: Option<String>,
    /// Notifier ids.
    #[serde(default)]
    pub notify: Vec<String>,
    /// Maintenance windows.
    #[serde(default)]
    pub maintenance: Vec<MaintenanceWindow>,
}

/// A field of a rule that is wrong, and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {why}")]
pub struct AlertRuleError {
    /// The field.
    pub field: &'static str,
    /// Why.
    pub why: String,
}

fn wrong(field: &'static str, why: impl Into<String>) -> AlertRuleError {
    AlertRuleError {
        field,
        why: why.into(),
    }
}

impl AlertRuleInput {
    /// Validates into a rule; `notifiers` are the ids the node knows.
    pub fn into_rule(
        self,
        id: String,
        created_ms: Option<u64>,
        now_ms: u64,
        notifiers: &[String],
    ) -> Result<AlertRule, AlertRuleError> {
        let name = self.name.trim();
        if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
            return Err(wrong("name", "1 to 100 characters, no control characters"));
        }
        let mut scope = self.scope.unwrap_or_default();
        if let Some(cidr) = &scope.cidr {
            let net = parse_cidr(cidr)
                .ok_or_else(|| wrong("scope.cidr", format!("`{cidr}` is not an IP network")))?;
            scope.cidr = Some(net.to_string());
        }
        let severity = match self.severity.as_deref() {
            None => Severity::Warning,
            Some(s) => Severity::parse(s).ok_or_else(|| {
                wrong(
                    "severity",
                    format!("`{s}` is not CRITICAL, WARNING or INFO"),
                )
            })?,
        };
        if let AlertCondition::Traffic { min_bytes_per_s: 0 } = self.condition {
            return Err(wrong("condition.min_bytes_per_s", "must be 1 or more"));
        }
        for n in &self.notify {
            if !notifiers.contains(n) {
                return Err(wrong(
                    "notify",
                    format!(
                        "no notifier `{n}` in this node's config (known: {})",
                        notifiers.join(", ")
                    ),
                ));
            }
        }
        if self.maintenance.iter().any(|w| w.end_ms <= w.start_ms) {
            return Err(wrong(
                "maintenance",
                "every window must end after it starts",
            ));
        }
        Ok(AlertRule {
            id,
            name: name.to_string(),
            enabled: self.enabled.unwrap_or(true),
            condition: self.condition,
            scope,
            severity,
            notify: self.notify,
            maintenance: self.maintenance,
            created_ms: created_ms.unwrap_or(now_ms),
            updated_ms: now_ms,
        })
    }
}

/// An alert a rule raised.
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
pub struct Alert {
    /// `<rule id>-<log index>-<position>` of the event that raised it.
    pub id: String,
    /// The rule.
    pub rule_id: String,
    /// Its name when the alert was raised.
    pub rule_name: String,
    /// Severity.
    pub severity: Severity,
    /// What it is about: an address, a dependency id or an advisory id.
    pub subject: String,
    /// What happened, in one sentence.
    pub summary: String,
    /// The kind of the event that raised it (`dependency.discovered`, …).
    pub cause: String,
    /// When that event happened, UTC ms.
    pub at_ms: u64,
}

/// A user acknowledging or resolving an alert.
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
pub struct AlertAction {
    /// The alert.
    pub id: String,
    /// Who (a user name, or `flowlens` when automatic).
    pub by: String,
    /// Why, or a note.
    pub note: Option<String>,
}

/// The outcome of telling one notifier about an alert.
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
pub struct Delivery {
    /// The alert.
    pub alert_id: String,
    /// The notifier id.
    pub notifier: String,
    /// Whether it was delivered.
    pub ok: bool,
    /// Attempts made.
    pub attempts: u32,
    /// The last failure, if any.
    pub error: Option<String>,
    /// Whether this is the last word: delivered, or given up after the last attempt (false
    /// while retries are still to come).
    pub done: bool,
}

/// An alert as the projection keeps it and the API lists it.
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
pub struct AlertRecord {
    /// The alert.
    #[serde(flatten)]
    pub alert: Alert,
    /// `open`, `acknowledged` or `resolved`.
    pub status: String,
    /// Acknowledgement, if any.
    pub acknowledged: Option<AlertAction>,
    /// When acknowledged, UTC ms.
    pub acknowledged_ms: u64,
    /// Resolution, if any.
    pub resolved: Option<AlertAction>,
    /// When resolved, UTC ms.
    pub resolved_ms: u64,
    /// Notification outcomes, one per notifier.
    pub deliveries: Vec<Delivery>,
}
