//! API types shared by the node's REST API and the web UI: the projection's records (assets,
//! services, dependencies; also stored rkyv-encoded in the node's projection) and the shapes of
//! list, topology, statistics and exporter answers.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::event::{DependencyKey, ServiceKey};
use crate::record::{FlowRecord, FlowSource};

/// Whether a projected thing is carrying traffic or has gone idle past the expiry time.
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
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Status {
    /// Seen within the idle time.
    #[default]
    Active,
    /// Not seen for the idle time.
    Expired,
}

/// A host seen in traffic.
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
pub struct Asset {
    /// Its address.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub ip: IpAddr,
    /// Inside RFC 1918 / RFC 4193 or the configured internal networks.
    pub internal: bool,
    /// Active or expired.
    pub status: Status,
    /// First time seen, UTC ms.
    pub first_seen_ms: u64,
    /// Last time seen, UTC ms.
    pub last_seen_ms: u64,
    /// Bytes received (as client or server).
    pub bytes_in: u64,
    /// Bytes sent.
    pub bytes_out: u64,
    /// Packets received.
    pub packets_in: u64,
    /// Packets sent.
    pub packets_out: u64,
    /// What the classification rules say about it, when a rule covers it. Not stored: the API
    /// applies the current rules when it answers.
    #[rkyv(with = rkyv::with::Skip)]
    #[serde(default)]
    pub classification: Option<crate::classify::Classification>,
    /// Its role: set by a user, or inferred from its traffic with enough confidence. Not
    /// stored with the asset: the API adds it when it answers.
    #[rkyv(with = rkyv::with::Skip)]
    #[serde(default)]
    pub role: Option<crate::role::AssetRole>,
}

/// A port an asset answers on.
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
pub struct Service {
    /// `server:port/protocol`.
    pub id: String,
    /// The endpoint.
    pub key: ServiceKey,
    /// Well-known name of the port (`https`, `postgresql`, …).
    pub name: Option<String>,
    /// Active or expired.
    pub status: Status,
    /// First time seen, UTC ms.
    pub first_seen_ms: u64,
    /// Last time seen, UTC ms.
    pub last_seen_ms: u64,
    /// Bytes clients sent to it.
    pub bytes_in: u64,
    /// Bytes it sent back.
    pub bytes_out: u64,
    /// Flow records seen.
    pub flows: u64,
}

/// A client asset calling a service.
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
pub struct Dependency {
    /// `client>server:port/protocol`.
    pub id: String,
    /// The client and the service.
    pub key: DependencyKey,
    /// Well-known name of the service's port.
    pub service_name: Option<String>,
    /// Active or expired.
    pub status: Status,
    /// First time seen, UTC ms.
    pub first_seen_ms: u64,
    /// Last time seen, UTC ms.
    pub last_seen_ms: u64,
    /// Bytes client → server.
    pub bytes_to_server: u64,
    /// Bytes server → client.
    pub bytes_to_client: u64,
    /// Packets client → server.
    pub packets_to_server: u64,
    /// Packets server → client.
    pub packets_to_client: u64,
    /// Flow records seen.
    pub flows: u64,
}

/// One page of a list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Page<T> {
    /// The items on this page.
    pub items: Vec<T>,
    /// How many items match the filters in all.
    pub total: u64,
    /// Index of the first item of this page among all matches.
    pub offset: u64,
    /// Page size asked for.
    pub limit: u64,
}

/// Which store answered a flow-explorer query.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum FlowTier {
    /// The aggregator's in-memory ring of recent flows.
    #[default]
    Memory,
    /// The node's on-disk raw flow segments.
    Disk,
}

/// One page of flows: a [`Page`] of [`FlowRecord`]s, and which tier answered and how much of it
/// was read. Clients that know only `Page` read it unchanged.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FlowPage {
    /// The flows on this page, newest first.
    pub items: Vec<FlowRecord>,
    /// How many flows match; when `truncated`, how many matched among the records scanned.
    pub total: u64,
    /// Index of the first item of this page among all matches.
    pub offset: u64,
    /// Page size asked for.
    pub limit: u64,
    /// The tier that answered.
    #[serde(default)]
    pub tier: FlowTier,
    /// Records read from disk to answer (0 when the memory tier answered).
    #[serde(default)]
    pub scanned: u64,
    /// The disk scan stopped at its bound before reading every segment that could match: older
    /// matches may exist; narrow the time range or the filters.
    #[serde(default)]
    pub truncated: bool,
}

impl FlowPage {
    /// A page answered by the in-memory ring.
    pub fn from_memory(page: Page<FlowRecord>) -> FlowPage {
        FlowPage {
            items: page.items,
            total: page.total,
            offset: page.offset,
            limit: page.limit,
            tier: FlowTier::Memory,
            scanned: 0,
            truncated: false,
        }
    }
}

/// A node of the topology map.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TopologyNode {
    /// The asset.
    pub asset: Asset,
    /// Services it answers on (active ones).
    pub services: Vec<ServiceKey>,
}

/// An edge of the topology map: one dependency.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TopologyEdge {
    /// The dependency.
    pub dependency: Dependency,
}

/// The dependency map (or the part of it the filters select).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Topology {
    /// Assets, busiest first.
    pub nodes: Vec<TopologyNode>,
    /// Dependencies between them, busiest first.
    pub edges: Vec<TopologyEdge>,
    /// True when the node or edge cap cut the answer short.
    pub truncated: bool,
    /// Assets matching the filters before the cap.
    pub total_nodes: u64,
    /// Dependencies matching the filters before the cap.
    pub total_edges: u64,
}

/// Throughput in one interval.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ThroughputPoint {
    /// Start of the interval, UTC ms.
    pub at_ms: u64,
    /// Bits per second.
    pub bps: f64,
    /// Packets per second.
    pub pps: f64,
    /// Flow records per second.
    pub fps: f64,
}

/// Throughput over the recent window.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Throughput {
    /// Width of each point, seconds.
    pub interval_s: u64,
    /// Points, oldest first.
    pub points: Vec<ThroughputPoint>,
}

/// A host ranked by traffic.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TopTalker {
    /// The host.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub ip: IpAddr,
    /// Bytes in the window.
    pub bytes: u64,
    /// Packets in the window.
    pub packets: u64,
    /// Flow records in the window.
    pub flows: u64,
    /// Share of all bytes in the window, 0..=1.
    pub share: f64,
}

/// Top talkers by source and by destination.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TopTalkers {
    /// Window length, seconds.
    pub window_s: u64,
    /// Hosts that sent the most.
    pub sources: Vec<TopTalker>,
    /// Hosts that received the most.
    pub destinations: Vec<TopTalker>,
}

/// Traffic of one IP protocol.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProtocolShare {
    /// IP protocol number.
    pub protocol: u8,
    /// Its name (`tcp`, `udp`, `icmp`, …).
    pub name: String,
    /// Bytes in the window.
    pub bytes: u64,
    /// Packets in the window.
    pub packets: u64,
    /// Flow records in the window.
    pub flows: u64,
    /// Share of all bytes, 0..=1.
    pub share: f64,
}

/// The protocol mix over the window.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProtocolMix {
    /// Window length, seconds.
    pub window_s: u64,
    /// Protocols, most bytes first.
    pub protocols: Vec<ProtocolShare>,
}

/// A device sending flows, with what became of its packets.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Exporter {
    /// Its address (the UDP source).
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub addr: Option<IpAddr>,
    /// Formats it sent.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<String>))]
    pub formats: Vec<FlowSource>,
    /// Datagrams received.
    pub packets: u64,
    /// Flow records decoded.
    pub records: u64,
    /// sFlow counter records decoded.
    pub counter_records: u64,
    /// Templates learned.
    pub templates: u64,
    /// Datagrams rejected whole, and parts skipped, by reason.
    pub errors: BTreeMap<String, u64>,
    /// Records (or datagrams, for v9/sFlow) the sequence numbers say were lost on the way.
    pub sequence_lost: u64,
    /// Sequence resets (exporter restarts, reordering past the tolerance).
    pub sequence_resets: u64,
    /// Last datagram, UTC ms.
    pub last_seen_ms: u64,
}

/// An error answer: what was wrong and, for bad parameters, which one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ApiError {
    /// What went wrong.
    pub error: String,
    /// The parameter at fault, for 400s.
    pub parameter: Option<String>,
}

/// Readiness answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Health {
    /// `ok` or what is not ready.
    pub status: String,
    /// Last log index applied to the projection.
    pub applied_index: u64,
    /// This node's Raft id.
    pub node_id: u64,
    /// This node's Raft role: Leader, Follower, Candidate or Learner.
    pub raft_state: String,
    /// The Raft leader this node knows of.
    pub leader: Option<u64>,
    /// The Raft term this node is in.
    pub term: u64,
    /// Last log index of the snapshot this node holds, if any.
    pub snapshot_index: Option<u64>,
    /// Last log index purged from this node's Raft log (behind a snapshot), if any.
    pub purged_index: Option<u64>,
    /// Seconds since start.
    pub uptime_s: u64,
    /// Build version.
    pub version: String,
}

/// One event of the history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HistoryEvent {
    /// Raft log index of the entry holding it.
    pub index: u64,
    /// Its position among the entry's events.
    pub position: u32,
    /// The event: `at_ms`, `kind` and the kind's fields.
    #[serde(flatten)]
    pub event: crate::event::Event,
}

/// Traffic a dependency present at both ends of a diff carried in between.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DependencyChange {
    /// The dependency as it was at the end of the diff.
    pub dependency: Dependency,
    /// Bytes from client to server in between.
    pub bytes_to_server: u64,
    /// Bytes from server to client in between.
    pub bytes_to_client: u64,
}

/// What changed in the map between two moments (active assets and dependencies).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TopologyDiff {
    /// Start, UTC ms.
    pub from_ms: u64,
    /// End, UTC ms.
    pub to_ms: u64,
    /// Active at the end, not at the start.
    pub assets_added: Vec<Asset>,
    /// Active at the start, not at the end.
    pub assets_removed: Vec<Asset>,
    /// Active at the end, not at the start.
    pub dependencies_added: Vec<Dependency>,
    /// Active at the start, not at the end.
    pub dependencies_removed: Vec<Dependency>,
    /// Active at both ends and carrying traffic in between.
    pub dependencies_changed: Vec<DependencyChange>,
}

/// A member of this node's cluster, as the member itself reports.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ClusterMember {
    /// Raft node id.
    pub id: u64,
    /// Its API address, from the membership.
    pub addr: String,
    /// A voter (else a learner).
    pub voter: bool,
    /// Its own health answer; `None` when it did not answer in time.
    pub health: Option<Health>,
    /// Why it could not be asked, when it could not.
    pub error: Option<String>,
}

/// This node and its cluster at a glance: the about page's answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct About {
    /// This node's health (id, Raft role, term, leader, applied index, uptime, version).
    pub node: Health,
    /// The cluster's name.
    pub cluster: String,
    /// Every member of the membership this node knows, this node included.
    pub members: Vec<ClusterMember>,
    /// Resident memory, bytes.
    pub rss_bytes: u64,
    /// Peak resident memory, bytes.
    pub rss_peak_bytes: u64,
    /// Flow records aggregated since start (rates are differences between two answers).
    pub flows_total: u64,
    /// Bytes in those flows.
    pub bytes_total: u64,
    /// Change events this node's graph committed since start.
    pub events_committed_total: u64,
    /// Assets in the projection.
    pub assets: u64,
    /// Dependencies in the projection.
    pub dependencies: u64,
    /// The node's configuration with secrets (passwords, keys, tokens, webhook paths, URL
    /// credentials) replaced by `"(hidden)"`.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub config: serde_json::Value,
}
