//! What an asset does, inferred from its traffic or set by hand: the [`Role`]s, an inferred
//! role with its confidence and evidence (the event the classifier commits), a role set by a
//! user, and the role the API shows (a manual role wins over an inferred one).

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// What an asset does on the network.
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
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Role {
    /// Answers many clients (fan-in).
    Server,
    /// Calls services and answers none (fan-out).
    Workstation,
    /// Answers on a database port (MySQL, PostgreSQL, SQL Server, Oracle, MongoDB, …).
    Database,
    /// Answers on a cache or message-queue port (Redis, Memcached, AMQP, Kafka, NATS, MQTT, …).
    CacheQueue,
    /// Answers many clients on one port and calls a pool of servers on one port.
    LoadBalancer,
    /// One address talking to very many peers in many networks: a router, gateway or NAT.
    Gateway,
    /// Answers DNS (53).
    Dns,
    /// Answers NTP (123/udp).
    Ntp,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 8] = [
        Role::Server,
        Role::Workstation,
        Role::Database,
        Role::CacheQueue,
        Role::LoadBalancer,
        Role::Gateway,
        Role::Dns,
        Role::Ntp,
    ];

    /// Its name (`database`, `cache_queue`, …).
    pub fn name(self) -> &'static str {
        match self {
            Role::Server => "server",
            Role::Workstation => "workstation",
            Role::Database => "database",
            Role::CacheQueue => "cache_queue",
            Role::LoadBalancer => "load_balancer",
            Role::Gateway => "gateway",
            Role::Dns => "dns",
            Role::Ntp => "ntp",
        }
    }

    /// The role of a name.
    pub fn parse(name: &str) -> Option<Role> {
        Role::ALL
            .into_iter()
            .find(|r| r.name().eq_ignore_ascii_case(name.trim()))
    }
}

/// A role the traffic suggests, how sure the classifier is and why.
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
pub struct RoleGuess {
    /// The role.
    pub role: Role,
    /// Confidence, 0 to 100 %.
    pub confidence_pct: u8,
    /// What was seen, in plain words (`answers 5432/tcp (postgresql) for 4 clients`).
    pub evidence: Vec<String>,
}

/// The classifier's conclusion about one asset (committed only when it changes).
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
pub struct InferredRole {
    /// The asset.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub ip: IpAddr,
    /// The role applied, or `None` when no role is confident enough any more.
    pub guess: Option<RoleGuess>,
}

/// A role a user set on an asset (or cleared, with `None`).
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
pub struct ManualRole {
    /// The asset.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub ip: IpAddr,
    /// The role, or `None` to hand the asset back to the classifier.
    pub role: Option<Role>,
}

/// What the projection keeps about an asset's role.
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
pub struct RoleRecord {
    /// The classifier's applied role, if confident enough.
    pub inferred: Option<RoleGuess>,
    /// When the classifier last changed it, UTC ms.
    pub inferred_ms: u64,
    /// A role set by a user (wins over the inferred one).
    pub manual: Option<Role>,
    /// When the user set it, UTC ms.
    pub manual_ms: u64,
}

/// The role the API shows for an asset.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AssetRole {
    /// The role.
    pub role: Role,
    /// `manual` or `inferred`.
    pub source: String,
    /// Confidence of an inferred role, 0 to 100 % (100 for a manual one).
    pub confidence_pct: u8,
    /// Why (inferred roles).
    pub evidence: Vec<String>,
}

impl RoleRecord {
    /// The role in force: the manual one, else the inferred one.
    pub fn effective(&self) -> Option<AssetRole> {
        if let Some(role) = self.manual {
            return Some(AssetRole {
                role,
                source: "manual".into(),
                confidence_pct: 100,
                evidence: vec!["set by a user".into()],
            });
        }
        self.inferred.as_ref().map(|g| AssetRole {
            role: g.role,
            source: "inferred".into(),
            confidence_pct: g.confidence_pct,
            evidence: g.evidence.clone(),
        })
    }
}

/// Everything about an asset's role: what is in force, what a user set, what the classifier
/// applied, and what the traffic suggests right now.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RoleReport {
    /// The asset.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub ip: IpAddr,
    /// The role in force (manual wins).
    pub effective: Option<AssetRole>,
    /// The role a user set.
    pub manual: Option<Role>,
    /// The role the classifier applied.
    pub inferred: Option<RoleGuess>,
    /// Every role the current traffic suggests, most confident first (applied or not).
    pub candidates: Vec<RoleGuess>,
    /// How long the asset has been seen, ms.
    pub observed_ms: u64,
    /// How long an asset must be seen before a role is inferred, ms.
    pub min_observation_ms: u64,
    /// Least confidence for an inferred role to be applied, %.
    pub min_confidence_pct: u8,
}

/// A role a user sets on an asset (`null` hands it back to the classifier).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RoleInput {
    /// `server`, `workstation`, `database`, `cache_queue`, `load_balancer`, `gateway`, `dns`,
    /// `ntp`, or null.
    pub role: Option<String>,
}
