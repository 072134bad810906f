//! API answers of impact analysis (`/api/v1/analysis/...`): reachability up- and downstream,
//! blast radius, single points of failure, critical dependencies and call paths. Shared by the
//! node's REST API and the web UI.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::event::ServiceKey;

/// An asset reached by an analysis.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ImpactedAsset {
    /// Its address.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub ip: IpAddr,
    /// Hops from the asset(s) the analysis started at.
    pub hops: u32,
    /// The neighbour it was reached from (for a blast radius: the failed or broken asset that
    /// brought it down).
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub via: Option<IpAddr>,
    /// Its tier: its environment when a classification rule gives one (`prod`, `uat`, `qa`,
    /// `test`, `dev`), otherwise `internal` or `external`.
    pub tier: String,
}

/// The size of the dependency graph an analysis ran on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GraphSize {
    /// Assets taking part in at least one dependency.
    pub assets: u64,
    /// Distinct (client, server, port, protocol) dependencies.
    pub dependencies: u64,
    /// The log index the graph was built at.
    pub applied_index: u64,
    /// Whether expired dependencies were included.
    pub include_expired: bool,
}

/// Everything an asset reaches (downstream: what it calls, and what those call…) or is reached
/// by (upstream: who calls it, and who calls those…) within a number of hops.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Reachability {
    /// The asset.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub asset: IpAddr,
    /// `upstream` or `downstream`.
    pub direction: String,
    /// The hop limit.
    pub max_hops: u32,
    /// Assets reached in all.
    pub total: u64,
    /// Assets reached at each distance: `[0]` is one hop away.
    pub by_hops: Vec<u64>,
    /// The assets, nearest first (one page).
    pub items: Vec<ImpactedAsset>,
    /// Items skipped before this page.
    pub offset: u64,
    /// The graph it ran on.
    pub graph: GraphSize,
}

/// What breaks if assets fail. Redundancy-aware: a client of several servers on one port and
/// protocol (a pool) is only *degraded* while one of them works; it *breaks* when none does, or
/// when any other port it needs has no working server left, and its own callers may then break.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BlastRadius {
    /// The assets assumed failed.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<String>))]
    pub failed: Vec<IpAddr>,
    /// The hop limit of the propagation.
    pub max_hops: u32,
    /// Assets that break, in all.
    pub broken_total: u64,
    /// Assets that lose some but not all servers of a pool, in all.
    pub degraded_total: u64,
    /// Dependencies whose server failed or broke.
    pub lost_dependencies: u64,
    /// Broken assets at each distance from the failure: `[0]` is one hop away.
    pub broken_by_hops: Vec<u64>,
    /// Broken assets by tier.
    pub broken_by_tier: BTreeMap<String, u64>,
    /// The broken assets, in the order they break (one page).
    pub broken: Vec<ImpactedAsset>,
    /// The degraded assets (first page, same offset and limit).
    pub degraded: Vec<ImpactedAsset>,
    /// Items skipped before this page.
    pub offset: u64,
    /// The graph it ran on.
    pub graph: GraphSize,
}

/// An asset whose failure alone hurts others.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SinglePointOfFailure {
    /// Its address.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub ip: IpAddr,
    /// Its tier.
    pub tier: String,
    /// Assets that break when it alone fails (its blast radius).
    pub breaks: u64,
    /// Assets every dependency chain of which runs through it (its subtree in the dominator
    /// tree of the dependency chains).
    pub dominated: u64,
    /// Whether removing it splits its part of the map (an articulation point).
    pub cut_vertex: bool,
    /// Assets cut off from the largest remaining piece when it is removed.
    pub separated: u64,
}

/// Single points of failure, worst first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SpofReport {
    /// One page, most `breaks` first (then `dominated`, then `separated`).
    pub items: Vec<SinglePointOfFailure>,
    /// Single points of failure in all.
    pub total: u64,
    /// Items skipped before this page.
    pub offset: u64,
    /// The graph it ran on.
    pub graph: GraphSize,
}

/// The assets whose failure alone breaks one asset.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CriticalDependencies {
    /// The asset.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub asset: IpAddr,
    /// What it cannot do without, in address order.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<String>))]
    pub critical: Vec<IpAddr>,
    /// The graph it ran on.
    pub graph: GraphSize,
}

/// One asset on a call path, with the services it calls the next one on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PathHop {
    /// The asset.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub ip: IpAddr,
    /// The services of the next hop it calls (empty on the last hop).
    pub calls: Vec<ServiceKey>,
}

/// The shortest chain of calls between two assets.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CallPath {
    /// Where the question started.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub from: IpAddr,
    /// Where it ended.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub to: IpAddr,
    /// `downstream` (`from` depends on `to`), `upstream` (`to` depends on `from`; the hops then
    /// run from `to` to `from`) or `none`.
    pub direction: String,
    /// The assets along the chain, caller first; empty when there is none.
    pub hops: Vec<PathHop>,
    /// The graph it ran on.
    pub graph: GraphSize,
}
