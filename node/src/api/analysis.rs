//! Impact analysis endpoints (`/api/v1/analysis/...`): what an asset calls and who calls it to N
//! hops, the blast radius of one asset or of a what-if removal of several, single points of
//! failure, an asset's critical dependencies and the call path between two assets. All run on
//! the cached call graph of the projection's dependencies ([`crate::analysis`]).

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::Arc;

use actors::analysis::{Direction, ImpactedNode};
use axum::extract::{Path, Query, State};
use axum::Json;
use ipnet::IpNet;
use proto::event::ServiceKey;
use proto::impact::{
    BlastRadius, CallPath, CriticalDependencies, ImpactedAsset, PathHop, Reachability,
    SinglePointOfFailure, SpofReport,
};

use super::params::{bad, parse_ip, Failure, Params};
use super::AppState;
use crate::analysis::AnalysisGraph;

type Pairs = Query<Vec<(String, String)>>;

/// The deepest walk asked for.
const MAX_HOPS: u32 = 64;
/// Most addresses or networks in one what-if removal.
const MAX_REMOVED: usize = 1000;

/// The graph for a request (`include_expired` taken from its parameters).
async fn graph_for(s: &AppState, p: &mut Params) -> Result<Arc<AnalysisGraph>, Failure> {
    let include_expired = p
        .parse::<bool>("include_expired", "true or false")?
        .unwrap_or(false);
    s.analysis
        .graph(&s.projection, s.log.applied_index(), include_expired)
        .await
        .map_err(Failure::Internal)
}

fn hops(p: &mut Params, default: u32) -> Result<u32, Failure> {
    let hops = p
        .parse::<u32>("hops", "a positive integer")?
        .unwrap_or(default);
    if hops == 0 || hops > MAX_HOPS {
        return Err(bad("hops", format!("must be 1 to {MAX_HOPS}")));
    }
    Ok(hops)
}

/// The graph node of an asset of the map: 404 for an unknown address, `None` for an asset
/// without dependencies.
fn known_asset(s: &AppState, g: &AnalysisGraph, ip: IpAddr) -> Result<Option<u32>, Failure> {
    match g.graph.node(ip) {
        Some(node) => Ok(Some(node)),
        None if s.projection.asset(ip)?.is_some() => Ok(None),
        None => Err(Failure::NotFound(format!("no asset {ip}"))),
    }
}

fn impacted(g: &AnalysisGraph, node: u32, hops: u32, via: u32) -> ImpactedAsset {
    ImpactedAsset {
        ip: g.graph.ip(node),
        hops,
        via: (via != u32::MAX).then(|| g.graph.ip(via)),
        tier: g.tier(node).to_string(),
    }
}

fn count_by_hops(hops: impl Iterator<Item = u32>) -> Vec<u64> {
    let mut by = Vec::new();
    for h in hops {
        let i = h.saturating_sub(1) as usize;
        if by.len() <= i {
            by.resize(i + 1, 0);
        }
        by[i] += 1;
    }
    by
}

async fn reach(
    s: AppState,
    ip: String,
    q: Vec<(String, String)>,
    direction: Direction,
) -> Result<Json<Reachability>, Failure> {
    let ip = parse_ip("ip", &ip)?;
    let mut p = Params::new(q)?;
    let max_hops = hops(&mut p, 3)?;
    let (offset, limit) = p.page(1000, s.max_page)?;
    let g = graph_for(&s, &mut p).await?;
    p.finish()?;
    let reached = match known_asset(&s, &g, ip)? {
        Some(node) => g.graph.reach(node, direction, max_hops),
        None => Vec::new(),
    };
    Ok(Json(Reachability {
        asset: ip,
        direction: match direction {
            Direction::Downstream => "downstream",
            Direction::Upstream => "upstream",
        }
        .into(),
        max_hops,
        total: reached.len() as u64,
        by_hops: count_by_hops(reached.iter().map(|r| r.hops)),
        items: reached
            .iter()
            .skip(offset)
            .take(limit)
            .map(|r| impacted(&g, r.node, r.hops, r.via))
            .collect(),
        offset: offset as u64,
        graph: g.size,
    }))
}

/// What an asset depends on: the assets it calls, what those call, … to `hops` hops.
#[utoipa::path(get, path = "/api/v1/analysis/downstream/{ip}", tag = "analysis",
    params(("ip" = String, Path),
        ("hops" = Option<u32>, Query, description = "Hop limit, 1 to 64 (default 3)"),
        ("include_expired" = Option<bool>, Query, description = "Include expired dependencies (default false)"),
        ("offset" = Option<u64>, Query), ("limit" = Option<u64>, Query, description = "Page size, default 1000")),
    responses((status = 200, body = Reachability), (status = 400, body = proto::api::ApiError),
        (status = 404, body = proto::api::ApiError)))]
pub async fn downstream(
    State(s): State<AppState>,
    Path(ip): Path<String>,
    Query(q): Pairs,
) -> Result<Json<Reachability>, Failure> {
    reach(s, ip, q, Direction::Downstream).await
}

/// What depends on an asset: the assets that call it, their callers, … to `hops` hops.
#[utoipa::path(get, path = "/api/v1/analysis/upstream/{ip}", tag = "analysis",
    params(("ip" = String, Path),
        ("hops" = Option<u32>, Query, description = "Hop limit, 1 to 64 (default 3)"),
        ("include_expired" = Option<bool>, Query, description = "Include expired dependencies (default false)"),
        ("offset" = Option<u64>, Query), ("limit" = Option<u64>, Query, description = "Page size, default 1000")),
    responses((status = 200, body = Reachability), (status = 400, body = proto::api::ApiError),
        (status = 404, body = proto::api::ApiError)))]
pub async fn upstream(
    State(s): State<AppState>,
    Path(ip): Path<String>,
    Query(q): Pairs,
) -> Result<Json<Reachability>, Failure> {
    reach(s, ip, q, Direction::Upstream).await
}

async fn blast(
    s: AppState,
    removed: Vec<IpNet>,
    mut p: Params,
) -> Result<Json<BlastRadius>, Failure> {
    let max_hops = hops(&mut p, MAX_HOPS)?;
    let (offset, limit) = p.page(1000, s.max_page)?;
    let g = graph_for(&s, &mut p).await?;
    p.finish()?;
    let mut failed: BTreeSet<IpAddr> = BTreeSet::new();
    let mut nodes = Vec::new();
    for net in &removed {
        if net.prefix_len() == net.max_prefix_len() {
            let ip = net.addr();
            failed.insert(ip);
            nodes.extend(known_asset(&s, &g, ip)?);
        } else {
            for node in 0..g.graph.len() as u32 {
                if net.contains(&g.graph.ip(node)) && failed.insert(g.graph.ip(node)) {
                    nodes.push(node);
                }
            }
        }
    }
    let graph = g.clone();
    let impact = tokio::task::spawn_blocking(move || graph.graph.blast_radius(&nodes, max_hops))
        .await
        .map_err(|e| Failure::Internal(format!("blast radius failed: {e}")))?;
    let mut by_tier: BTreeMap<String, u64> = BTreeMap::new();
    for b in &impact.broken {
        *by_tier.entry(g.tier(b.node).to_string()).or_default() += 1;
    }
    let page = |items: &[ImpactedNode]| -> Vec<ImpactedAsset> {
        items
            .iter()
            .skip(offset)
            .take(limit)
            .map(|i| impacted(&g, i.node, i.hops, i.via))
            .collect()
    };
    Ok(Json(BlastRadius {
        failed: failed.into_iter().collect(),
        max_hops,
        broken_total: impact.broken.len() as u64,
        degraded_total: impact.degraded.len() as u64,
        lost_dependencies: impact.lost_edges,
        broken_by_hops: count_by_hops(impact.broken.iter().map(|b| b.hops)),
        broken_by_tier: by_tier,
        broken: page(&impact.broken),
        degraded: page(&impact.degraded),
        offset: offset as u64,
        graph: g.size,
    }))
}

/// What breaks if an asset fails, redundancy-aware (see [`BlastRadius`]), with counts by hop and
/// by tier.
#[utoipa::path(get, path = "/api/v1/analysis/blast-radius/{ip}", tag = "analysis",
    params(("ip" = String, Path),
        ("hops" = Option<u32>, Query, description = "Propagation limit, 1 to 64 (default 64)"),
        ("include_expired" = Option<bool>, Query, description = "Include expired dependencies (default false)"),
        ("offset" = Option<u64>, Query), ("limit" = Option<u64>, Query, description = "Page size, default 1000")),
    responses((status = 200, body = BlastRadius), (status = 400, body = proto::api::ApiError),
        (status = 404, body = proto::api::ApiError)))]
pub async fn blast_radius(
    State(s): State<AppState>,
    Path(ip): Path<String>,
    Query(q): Pairs,
) -> Result<Json<BlastRadius>, Failure> {
    let ip = parse_ip("ip", &ip)?;
    blast(s, vec![IpNet::from(ip)], Params::new(q)?).await
}

/// What breaks if a set of assets is removed: addresses and networks, comma-separated.
#[utoipa::path(get, path = "/api/v1/analysis/what-if", tag = "analysis",
    params(("remove" = String, Query, description = "Addresses or CIDR networks to remove, comma-separated (at most 1000)"),
        ("hops" = Option<u32>, Query, description = "Propagation limit, 1 to 64 (default 64)"),
        ("include_expired" = Option<bool>, Query, description = "Include expired dependencies (default false)"),
        ("offset" = Option<u64>, Query), ("limit" = Option<u64>, Query, description = "Page size, default 1000")),
    responses((status = 200, body = BlastRadius), (status = 400, body = proto::api::ApiError),
        (status = 404, body = proto::api::ApiError)))]
pub async fn what_if(
    State(s): State<AppState>,
    Query(q): Pairs,
) -> Result<Json<BlastRadius>, Failure> {
    let mut p = Params::new(q)?;
    let list: String = p
        .parse("remove", "a list")?
        .ok_or_else(|| bad("remove", "required: addresses or networks, comma-separated"))?;
    let mut removed = Vec::new();
    for item in list.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let net = item
            .parse::<IpNet>()
            .or_else(|_| item.parse::<IpAddr>().map(IpNet::from))
            .map_err(|_| {
                bad(
                    "remove",
                    format!("`{item}` is not an address or CIDR network"),
                )
            })?;
        removed.push(net);
    }
    if removed.is_empty() || removed.len() > MAX_REMOVED {
        return Err(bad(
            "remove",
            format!("give 1 to {MAX_REMOVED} addresses or networks"),
        ));
    }
    blast(s, removed, p).await
}

/// Single points of failure, worst first: assets whose failure alone breaks others (how many),
/// dominators of the dependency chains and articulation points of the map.
#[utoipa::path(get, path = "/api/v1/analysis/spof", tag = "analysis",
    params(("include_expired" = Option<bool>, Query, description = "Include expired dependencies (default false)"),
        ("offset" = Option<u64>, Query), ("limit" = Option<u64>, Query, description = "Page size, default 100")),
    responses((status = 200, body = SpofReport), (status = 400, body = proto::api::ApiError),
        (status = 503, body = proto::api::ApiError)))]
pub async fn spof(State(s): State<AppState>, Query(q): Pairs) -> Result<Json<SpofReport>, Failure> {
    let mut p = Params::new(q)?;
    let (offset, limit) = p.page(100, s.max_page)?;
    let g = graph_for(&s, &mut p).await?;
    p.finish()?;
    let table = spof_table(&g).await?;
    Ok(Json(SpofReport {
        items: table
            .spofs
            .iter()
            .skip(offset)
            .take(limit)
            .map(|x| SinglePointOfFailure {
                ip: g.graph.ip(x.node),
                tier: g.tier(x.node).to_string(),
                breaks: x.breaks.into(),
                dominated: x.dominated.into(),
                cut_vertex: x.cut_vertex,
                separated: x.separated.into(),
            })
            .collect(),
        total: table.spofs.len() as u64,
        offset: offset as u64,
        graph: g.size,
    }))
}

async fn spof_table(g: &Arc<AnalysisGraph>) -> Result<Arc<crate::analysis::SpofTable>, Failure> {
    let graph = g.clone();
    tokio::task::spawn_blocking(move || graph.spof())
        .await
        .map_err(|e| Failure::Internal(format!("single points of failure failed: {e}")))?
        .ok_or_else(|| {
            Failure::Unavailable(
                "the map's chains of single dependencies are too deep to analyse exactly".into(),
            )
        })
}

/// The assets whose failure alone breaks this one (redundancy-aware).
#[utoipa::path(get, path = "/api/v1/analysis/critical/{ip}", tag = "analysis",
    params(("ip" = String, Path),
        ("include_expired" = Option<bool>, Query, description = "Include expired dependencies (default false)")),
    responses((status = 200, body = CriticalDependencies), (status = 404, body = proto::api::ApiError),
        (status = 503, body = proto::api::ApiError)))]
pub async fn critical(
    State(s): State<AppState>,
    Path(ip): Path<String>,
    Query(q): Pairs,
) -> Result<Json<CriticalDependencies>, Failure> {
    let ip = parse_ip("ip", &ip)?;
    let mut p = Params::new(q)?;
    let g = graph_for(&s, &mut p).await?;
    p.finish()?;
    let critical = match known_asset(&s, &g, ip)? {
        Some(node) => {
            let table = spof_table(&g).await?;
            let mut ips: Vec<IpAddr> = table.critical[node as usize]
                .iter()
                .map(|&n| g.graph.ip(n))
                .collect();
            ips.sort_unstable();
            ips
        }
        None => Vec::new(),
    };
    Ok(Json(CriticalDependencies {
        asset: ip,
        critical,
        graph: g.size,
    }))
}

/// The shortest chain of calls between two assets, in whichever direction one exists.
#[utoipa::path(get, path = "/api/v1/analysis/path", tag = "analysis",
    params(("from" = String, Query), ("to" = String, Query),
        ("include_expired" = Option<bool>, Query, description = "Include expired dependencies (default false)")),
    responses((status = 200, body = CallPath), (status = 400, body = proto::api::ApiError),
        (status = 404, body = proto::api::ApiError)))]
pub async fn path(State(s): State<AppState>, Query(q): Pairs) -> Result<Json<CallPath>, Failure> {
    let mut p = Params::new(q)?;
    let mut endpoint = |name: &str| -> Result<IpAddr, Failure> {
        let v: String = p
            .parse(name, "an IP address")?
            .ok_or_else(|| bad(name, "required"))?;
        parse_ip(name, &v)
    };
    let (from, to) = (endpoint("from")?, endpoint("to")?);
    let g = graph_for(&s, &mut p).await?;
    p.finish()?;
    let (a, b) = (known_asset(&s, &g, from)?, known_asset(&s, &g, to)?);
    let (direction, nodes) = match (a, b) {
        (Some(a), Some(b)) => match g.graph.call_path(a, b) {
            Some(path) => ("downstream", path),
            None => match g.graph.call_path(b, a) {
                Some(path) => ("upstream", path),
                None => ("none", Vec::new()),
            },
        },
        _ => ("none", Vec::new()),
    };
    let hops = nodes
        .iter()
        .enumerate()
        .map(|(i, &n)| PathHop {
            ip: g.graph.ip(n),
            calls: nodes
                .get(i + 1)
                .map(|&next| {
                    g.graph
                        .services_between(n, next)
                        .into_iter()
                        .map(|(port, protocol)| ServiceKey {
                            ip: g.graph.ip(next),
                            port,
                            protocol,
                        })
                        .collect()
                })
                .unwrap_or_default(),
        })
        .collect();
    Ok(Json(CallPath {
        from,
        to,
        direction: direction.into(),
        hops,
        graph: g.size,
    }))
}
