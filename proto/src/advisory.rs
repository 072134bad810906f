//! Advisories: plain-language findings about the traffic (top talkers, scans and sweeps,
//! insecure protocols, traffic spikes and drops against a learned baseline, DNS volume), each
//! with a severity, a suggested action and a link to the flows that show it. Raised and resolved
//! as events; one advisory per id (kind and subject) is active at a time.

use serde::{Deserialize, Serialize};

/// How urgent a finding is.
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
#[serde(rename_all = "UPPERCASE")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Severity {
    /// Act now.
    Critical,
    /// Look into it.
    Warning,
    /// Worth knowing.
    Info,
}

impl Severity {
    /// Its name (`CRITICAL`, `WARNING`, `INFO`).
    pub fn name(self) -> &'static str {
        match self {
            Severity::Critical => "CRITICAL",
            Severity::Warning => "WARNING",
            Severity::Info => "INFO",
        }
    }

    /// The severity of a name, any case.
    pub fn parse(name: &str) -> Option<Severity> {
        [Severity::Critical, Severity::Warning, Severity::Info]
            .into_iter()
            .find(|s| s.name().eq_ignore_ascii_case(name.trim()))
    }
}

/// What kind of finding an advisory is.
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
pub enum AdvisoryKind {
    /// One host carries most of the traffic.
    TopTalker,
    /// One source tried many ports on one host.
    PortScan,
    /// One source tried one port on many hosts.
    HostSweep,
    /// A clear-text or risky protocol is in use.
    InsecureProtocol,
    /// Traffic to a network far above its usual level for the time of day.
    TrafficSpike,
    /// Traffic to a network far below its usual level for the time of day.
    TrafficDrop,
    /// A client sends an unusual number of DNS queries.
    DnsVolume,
    /// Requests and replies of the same flows take different paths.
    FlowAsymmetry,
    /// A node is short of disk space and holds its raw flow writes.
    DiskSpace,
}

impl AdvisoryKind {
    /// Its name (`port_scan`, …).
    pub fn name(self) -> &'static str {
        match self {
            AdvisoryKind::TopTalker => "top_talker",
            AdvisoryKind::PortScan => "port_scan",
            AdvisoryKind::HostSweep => "host_sweep",
            AdvisoryKind::InsecureProtocol => "insecure_protocol",
            AdvisoryKind::TrafficSpike => "traffic_spike",
            AdvisoryKind::TrafficDrop => "traffic_drop",
            AdvisoryKind::DnsVolume => "dns_volume",
            AdvisoryKind::FlowAsymmetry => "flow_asymmetry",
            AdvisoryKind::DiskSpace => "disk_space",
        }
    }
}

/// One finding.
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
pub struct Advisory {
    /// `<kind>:<subject>`: one active advisory per id.
    pub id: String,
    /// What kind of finding.
    pub kind: AdvisoryKind,
    /// How urgent.
    pub severity: Severity,
    /// What it is about: an address, a service endpoint or a network.
    pub subject: String,
    /// The finding in one sentence (`10.0.0.66 probed 1000 ports on 10.0.1.5 in 60 s`).
    pub summary: String,
    /// What to do about it.
    pub action: String,
    /// API path of the flows that show it (`/api/v1/flows?src=10.0.0.66`).
    pub evidence: String,
    /// When it was first seen, UTC ms.
    pub first_ms: u64,
}

/// An advisory that no longer applies.
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
pub struct AdvisoryResolution {
    /// The advisory's id.
    pub id: String,
    /// Why (`not seen for 10m`).
    pub reason: String,
}

/// An advisory as the projection keeps it and the API lists it.
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
pub struct AdvisoryRecord {
    /// The finding.
    #[serde(flatten)]
    pub advisory: Advisory,
    /// `active` or `resolved`.
    pub status: String,
    /// When it was raised, UTC ms.
    pub raised_ms: u64,
    /// When it was resolved, UTC ms (0 while active).
    pub resolved_ms: u64,
    /// Why it was resolved.
    pub resolution: Option<String>,
    /// How often it was raised (again after being resolved).
    pub times_raised: u32,
}
