//! Change events: the facts the event log records (assets, services and dependencies discovered,
//! traffic seen on them, expired). Events are rkyv-encoded in the Raft log and serde-encoded (JSON)
//! for the API and NATS subscribers. The projection is a pure fold of these events.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// Version of the event schema; bumped on any incompatible change to [`Event`].
/// 2 added the classification rule, asset role, advisory and alert events (schema 1 batches still decode: variants are only
/// ever appended, and new ones keep their payload boxed so the archived enum does not grow).
pub const EVENT_SCHEMA_VERSION: u16 = 2;

/// A service endpoint: the server side of a dependency.
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ServiceKey {
    /// The address the service listens on.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub ip: IpAddr,
    /// Transport port (0 for protocols without ports).
    pub port: u16,
    /// IP protocol number (6 TCP, 17 UDP, …).
    pub protocol: u8,
}

/// A directed dependency: a client asset calling a server's service.
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DependencyKey {
    /// The calling asset.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub client: IpAddr,
    /// The called service.
    pub service: ServiceKey,
}

impl DependencyKey {
    /// The stable identifier used in the API: `client>server:port/protocol`.
    pub fn id(&self) -> String {
        format!(
            "{}>{}",
            self.client,
            endpoint_id(self.service.ip, self.service.port, self.service.protocol)
        )
    }

    /// Parses an identifier made by [`DependencyKey::id`].
    pub fn parse_id(id: &str) -> Option<DependencyKey> {
        let (client, rest) = id.split_once('>')?;
        let (server, port, protocol) = parse_endpoint(rest)?;
        Some(DependencyKey {
            client: client.parse().ok()?,
            service: ServiceKey {
                ip: server,
                port,
                protocol,
            },
        })
    }
}

impl ServiceKey {
    /// The stable identifier used in the API: `server:port/protocol` (`[v6]:port/protocol`).
    pub fn id(&self) -> String {
        endpoint_id(self.ip, self.port, self.protocol)
    }
}

fn endpoint_id(ip: IpAddr, port: u16, protocol: u8) -> String {
    match ip {
        IpAddr::V4(v4) => format!("{v4}:{port}/{protocol}"),
        IpAddr::V6(v6) => format!("[{v6}]:{port}/{protocol}"),
    }
}

fn parse_endpoint(s: &str) -> Option<(IpAddr, u16, u8)> {
    let (addr_port, protocol) = s.rsplit_once('/')?;
    let (addr, port) = addr_port.rsplit_once(':')?;
    let addr = addr.trim_start_matches('[').trim_end_matches(']');
    Some((
        addr.parse().ok()?,
        port.parse().ok()?,
        protocol.parse().ok()?,
    ))
}

/// Traffic seen on one dependency during one stats period (deltas, not totals).
#[derive(
    Clone,
    Copy,
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TrafficDelta {
    /// Bytes sent by the client to the server.
    pub bytes_to_server: u64,
    /// Bytes sent by the server back to the client.
    pub bytes_to_client: u64,
    /// Packets sent by the client to the server.
    pub packets_to_server: u64,
    /// Packets sent by the server back to the client.
    pub packets_to_client: u64,
    /// Flow records seen (both directions).
    pub flows: u64,
    /// Earliest flow start in the period, UTC ms.
    pub first_ms: u64,
    /// Latest flow end in the period, UTC ms.
    pub last_ms: u64,
}

impl TrafficDelta {
    /// Adds another delta to this one (sums counters, widens the time span).
    pub fn merge(&mut self, other: &TrafficDelta) {
        self.bytes_to_server = self.bytes_to_server.saturating_add(other.bytes_to_server);
        self.bytes_to_client = self.bytes_to_client.saturating_add(other.bytes_to_client);
        self.packets_to_server = self
            .packets_to_server
            .saturating_add(other.packets_to_server);
        self.packets_to_client = self
            .packets_to_client
            .saturating_add(other.packets_to_client);
        self.flows = self.flows.saturating_add(other.flows);
        self.first_ms = if self.first_ms == 0 {
            other.first_ms
        } else if other.first_ms == 0 {
            self.first_ms
        } else {
            self.first_ms.min(other.first_ms)
        };
        self.last_ms = self.last_ms.max(other.last_ms);
    }
}

/// Traffic on one dependency in a stats batch.
#[derive(
    Clone,
    Copy,
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
pub struct EdgeStats {
    /// Which dependency.
    pub dependency: DependencyKey,
    /// What it carried in the period.
    pub traffic: TrafficDelta,
}

pub use kind::EventKind;

// rkyv derives a resolver type for enums whose fields cannot carry docs; the allow is for that.
#[allow(missing_docs)]
mod kind {
    use super::*;

    /// What happened. Facts in past tense.
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
    #[serde(tag = "kind", rename_all = "snake_case")]
    #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
    pub enum EventKind {
        /// An address was seen in traffic for the first time (or again after it expired).
        AssetDiscovered {
            /// The asset's address.
            #[cfg_attr(feature = "openapi", schema(value_type = String))]
            ip: IpAddr,
            /// Inside the configured/private networks.
            internal: bool,
        },
        /// An asset was found answering on a port.
        ServiceDiscovered {
            /// The service endpoint.
            service: ServiceKey,
            /// Well-known name of the port, when there is one.
            name: Option<String>,
        },
        /// A client was seen calling a service for the first time (or again after it expired).
        DependencyDiscovered {
            /// The dependency.
            dependency: DependencyKey,
        },
        /// Traffic on dependencies during one period: compact deltas per edge.
        DependencyTraffic {
            /// One entry per dependency that carried traffic.
            edges: Vec<EdgeStats>,
        },
        /// An asset has not been seen for the idle time.
        AssetExpired {
            /// The asset's address.
            #[cfg_attr(feature = "openapi", schema(value_type = String))]
            ip: IpAddr,
        },
        /// A service has not been called for the idle time.
        ServiceExpired {
            /// The service endpoint.
            service: ServiceKey,
        },
        /// A dependency has carried no traffic for the idle time.
        DependencyExpired {
            /// The dependency.
            dependency: DependencyKey,
        },
        /// A classification rule was created or replaced.
        ClassificationRuleSet {
            /// The whole rule as it now stands.
            rule: Box<crate::classify::ClassificationRule>,
        },
        /// A classification rule was deleted.
        ClassificationRuleDeleted {
            /// Its id.
            id: Box<str>,
        },
        /// The behavioural classifier changed its conclusion about an asset's role.
        AssetRoleInferred {
            /// The asset and the role applied (or none).
            inferred: Box<crate::role::InferredRole>,
        },
        /// A user set (or cleared) an asset's role.
        AssetRoleSet {
            /// The asset and the role.
            manual: Box<crate::role::ManualRole>,
        },
        /// A finding about the traffic was made.
        AdvisoryRaised {
            /// The finding.
            advisory: Box<crate::advisory::Advisory>,
        },
        /// A finding no longer applies.
        AdvisoryResolved {
            /// Which, and why.
            resolution: Box<crate::advisory::AdvisoryResolution>,
        },
        /// An alert rule was created or replaced.
        AlertRuleSet {
            /// The whole rule as it now stands.
            rule: Box<crate::alert::AlertRule>,
        },
        /// An alert rule was deleted.
        AlertRuleDeleted {
            /// Its id.
            id: Box<str>,
        },
        /// A rule raised an alert.
        AlertRaised {
            /// The alert.
            alert: Box<crate::alert::Alert>,
        },
        /// A user acknowledged an alert.
        AlertAcknowledged {
            /// Which, by whom.
            action: Box<crate::alert::AlertAction>,
        },
        /// An alert was resolved (by a user, or with its advisory).
        AlertResolved {
            /// Which, by whom, why.
            action: Box<crate::alert::AlertAction>,
        },
        /// A notifier was told of an alert, or gave up trying.
        AlertNotified {
            /// The outcome.
            delivery: Box<crate::alert::Delivery>,
        },
        /// A user was created or changed.
        UserSet {
            /// The user as it now stands.
            user: Box<crate::auth::User>,
            /// The argon2 hash (PHC string) of a new password; `None` keeps the current one.
            /// Never written to JSON.
            #[serde(skip_serializing, default)]
            password_hash: Option<Box<str>>,
        },
        /// A user was deleted (its credentials with it).
        UserDeleted {
            /// Its name.
            name: Box<str>,
        },
        /// A session or API token was issued.
        CredentialIssued {
            /// The credential (its secret's hash only).
            credential: Box<crate::auth::Credential>,
        },
        /// A session ended or a token was revoked.
        CredentialRevoked {
            /// Its id.
            id: Box<str>,
        },
        /// Someone did something worth keeping a record of.
        AuditRecorded {
            /// Who, what, from where, how it ended.
            entry: Box<crate::auth::AuditEntry>,
        },
    }
}

/// Every event kind's dotted name ([`EventKind::name`]).
pub const EVENT_KINDS: [&str; 24] = [
    "asset.discovered",
    "asset.expired",
    "service.discovered",
    "service.expired",
    "dependency.discovered",
    "dependency.expired",
    "dependency.traffic",
    "classification_rule.set",
    "classification_rule.deleted",
    "asset.role_inferred",
    "asset.role_set",
    "advisory.raised",
    "advisory.resolved",
    "alert_rule.set",
    "alert_rule.deleted",
    "alert.raised",
    "alert.acknowledged",
    "alert.resolved",
    "alert.notified",
    "user.set",
    "user.deleted",
    "credential.issued",
    "credential.revoked",
    "audit.recorded",
];

impl EventKind {
    /// The event's kind as a dotted name (`asset.discovered`, …): NATS subject suffix and filter.
    pub fn name(&self) -> &'static str {
        match self {
            EventKind::AssetDiscovered { .. } => "asset.discovered",
            EventKind::ServiceDiscovered { .. } => "service.discovered",
            EventKind::DependencyDiscovered { .. } => "dependency.discovered",
            EventKind::DependencyTraffic { .. } => "dependency.traffic",
            EventKind::AssetExpired { .. } => "asset.expired",
            EventKind::ServiceExpired { .. } => "service.expired",
            EventKind::DependencyExpired { .. } => "dependency.expired",
            EventKind::ClassificationRuleSet { .. } => "classification_rule.set",
            EventKind::ClassificationRuleDeleted { .. } => "classification_rule.deleted",
            EventKind::AssetRoleInferred { .. } => "asset.role_inferred",
            EventKind::AssetRoleSet { .. } => "asset.role_set",
            EventKind::AdvisoryRaised { .. } => "advisory.raised",
            EventKind::AdvisoryResolved { .. } => "advisory.resolved",
            EventKind::AlertRuleSet { .. } => "alert_rule.set",
            EventKind::UserSet { .. } => "user.set",
            EventKind::UserDeleted { .. } => "user.deleted",
            EventKind::CredentialIssued { .. } => "credential.issued",
            EventKind::CredentialRevoked { .. } => "credential.revoked",
            EventKind::AuditRecorded { .. } => "audit.recorded",
            EventKind::AlertRuleDeleted { .. } => "alert_rule.deleted",
            EventKind::AlertRaised { .. } => "alert.raised",
            EventKind::AlertAcknowledged { .. } => "alert.acknowledged",
            EventKind::AlertResolved { .. } => "alert.resolved",
            EventKind::AlertNotified { .. } => "alert.notified",
        }
    }
}

/// One fact and when it became true.
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
pub struct Event {
    /// When it became true, UTC ms.
    pub at_ms: u64,
    /// What happened.
    #[serde(flatten)]
    pub kind: EventKind,
}

/// The unit the event log commits: the events one actor produced at one moment.
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EventBatch {
    /// Schema version the batch was written with ([`EVENT_SCHEMA_VERSION`]).
    pub version: u16,
    /// The events, in the order they are applied.
    pub events: Vec<Event>,
}

/// Why bytes could not be read as an [`EventBatch`].
#[derive(Debug, thiserror::Error)]
pub enum EventDecodeError {
    /// The bytes are not a valid archived batch.
    #[error("invalid event batch encoding: {0}")]
    Invalid(String),
    /// The batch was written by an unknown (newer) schema version.
    #[error("event batch schema version {found} is newer than {supported}")]
    Version {
        /// Version in the batch.
        found: u16,
        /// Highest version this build reads.
        supported: u16,
    },
}

impl EventBatch {
    /// A batch of the current schema version.
    pub fn new(events: Vec<Event>) -> EventBatch {
        EventBatch {
            version: EVENT_SCHEMA_VERSION,
            events,
        }
    }

    /// Encodes the batch with rkyv (the log's format).
    pub fn to_rkyv(&self) -> Vec<u8> {
        crate::codec::to_rkyv(self)
    }

    /// Decodes and validates rkyv bytes made by [`EventBatch::to_rkyv`]; any byte string is
    /// safe to pass (it is checked, copied to aligned memory first).
    pub fn from_rkyv(bytes: &[u8]) -> Result<EventBatch, EventDecodeError> {
        let batch: EventBatch =
            crate::codec::from_rkyv(bytes).map_err(EventDecodeError::Invalid)?;
        if batch.version > EVENT_SCHEMA_VERSION {
            return Err(EventDecodeError::Version {
                found: batch.version,
                supported: EVENT_SCHEMA_VERSION,
            });
        }
        Ok(batch)
    }
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use super::*;

    fn sample() -> EventBatch {
        let dependency = DependencyKey {
            client: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
            service: ServiceKey {
                ip: IpAddr::V6(Ipv6Addr::LOCALHOST),
                port: 443,
                protocol: 6,
            },
        };
        EventBatch::new(vec![
            Event {
                at_ms: 1,
                kind: EventKind::AssetDiscovered {
                    ip: dependency.client,
                    internal: true,
                },
            },
            Event {
                at_ms: 2,
                kind: EventKind::ServiceDiscovered {
                    service: dependency.service,
                    name: Some("https".into()),
                },
            },
            Event {
                at_ms: 3,
                kind: EventKind::DependencyTraffic {
                    edges: vec![EdgeStats {
                        dependency,
                        traffic: TrafficDelta {
                            bytes_to_server: 10,
                            flows: 1,
                            ..TrafficDelta::default()
                        },
                    }],
                },
            },
            Event {
                at_ms: 4,
                kind: EventKind::DependencyExpired { dependency },
            },
        ])
    }

    #[test]
    fn event_batches_round_trip_through_rkyv_and_json() {
        let batch = sample();
        assert_eq!(
            EventBatch::from_rkyv(&batch.to_rkyv()).ok(),
            Some(batch.clone())
        );
        let json = serde_json::to_string(&batch).unwrap_or_default();
        assert!(json.contains(r#""kind":"service_discovered""#), "{json}");
        let back: Option<EventBatch> = serde_json::from_str(&json).ok();
        assert_eq!(back, Some(batch));
    }

    /// Batches written by schema 1 (before rules, classification and alerts joined the log)
    /// must decode to the same events: the log and history keep them for ever.
    #[test]
    fn schema_1_batches_still_decode() {
        let hex = include_str!("../tests/data/event_batch_v1.hex").trim();
        let bytes: Vec<u8> = (0..hex.len())
            .step_by(2)
            .filter_map(|i| {
                hex.get(i..i + 2)
                    .and_then(|b| u8::from_str_radix(b, 16).ok())
            })
            .collect();
        assert_eq!(bytes.len() * 2, hex.len());
        let batch = EventBatch::from_rkyv(&bytes).map_err(|e| e.to_string());
        let mut expected = sample();
        expected.version = 1;
        assert_eq!(batch, Ok(expected));
    }

    #[test]
    fn rule_events_round_trip_through_rkyv_and_json() {
        let rule = crate::classify::RuleInput {
            name: "payments".into(),
            cidr: "10.1.0.0/16".into(),
            environment: Some("prod".into()),
            datacenter: Some("fra1".into()),
            location: None,
            internal: Some(true),
            priority: None,
        }
        .into_rule("r1".into(), None, 7);
        let Ok(rule) = rule else {
            return assert!(rule.is_ok(), "{rule:?}");
        };
        let batch = EventBatch::new(vec![
            Event {
                at_ms: 7,
                kind: EventKind::ClassificationRuleSet {
                    rule: Box::new(rule),
                },
            },
            Event {
                at_ms: 8,
                kind: EventKind::ClassificationRuleDeleted { id: "r1".into() },
            },
        ]);
        assert_eq!(
            EventBatch::from_rkyv(&batch.to_rkyv()).ok(),
            Some(batch.clone())
        );
        let json = serde_json::to_string(&batch).unwrap_or_default();
        assert!(json.contains(r#""environment":"prod""#), "{json}");
        assert_eq!(serde_json::from_str::<EventBatch>(&json).ok(), Some(batch));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let bytes = sample().to_rkyv();
        for cut in 0..bytes.len() {
            let _ = EventBatch::from_rkyv(&bytes[..cut]);
        }
        let mut flipped = bytes.clone();
        for i in 0..flipped.len() {
            flipped[i] ^= 0xa5;
            let _ = EventBatch::from_rkyv(&flipped);
            flipped[i] ^= 0xa5;
        }
        assert!(EventBatch::from_rkyv(&[1, 2, 3]).is_err());
    }

    #[test]
    fn dependency_ids_round_trip_for_v4_and_v6() {
        let batch = sample();
        let EventKind::DependencyExpired { dependency } = batch.events[3].kind else {
            return;
        };
        assert_eq!(dependency.id(), "10.0.0.1>[::1]:443/6");
        assert_eq!(DependencyKey::parse_id(&dependency.id()), Some(dependency));
        assert_eq!(DependencyKey::parse_id("nonsense"), None);
    }
}
