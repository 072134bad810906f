//! History endpoints: the events of a time range, the map's difference between two moments
//! (the map as of a moment is `topology?at=`), and the rebuild check of the projection.

use std::collections::{BTreeMap, HashMap};

use axum::extract::{Query, State};
use axum::Json;
use proto::api::{DependencyChange, HistoryEvent, Page, Status, TopologyDiff};

use super::params::{bad, kind_matches, Failure, Params};
use super::AppState;
use crate::raft::replay;
use crate::store::Projection;

type Pairs = Query<Vec<(String, String)>>;

fn internal(e: impl std::fmt::Display) -> Failure {
    Failure::Internal(e.to_string())
}

/// Committed events stamped between two moments, in time order.
#[utoipa::path(get, path = "/api/v1/history/events", tag = "history",
    params(("from" = Option<String>, Query, description = "Unix ms or a duration ago (default: the beginning)"),
        ("to" = Option<String>, Query, description = "Unix ms or a duration ago (default: now)"),
        ("kind" = Option<String>, Query, description = "Event kind (asset.discovered) or prefix (asset.*)"),
        ("offset" = Option<u64>, Query, description = "Events to skip"),
        ("limit" = Option<u64>, Query, description = "Page size (default 1000)")),
    responses((status = 200, body = Page<HistoryEvent>), (status = 400, body = proto::api::ApiError)))]
pub async fn events(
    State(s): State<AppState>,
    Query(q): Pairs,
) -> Result<Json<Page<HistoryEvent>>, Failure> {
    let now = actors::now_ms();
    let mut p = Params::new(q)?;
    let from = p.time("from", now)?.unwrap_or(0);
    let to = p.time("to", now)?.unwrap_or(u64::MAX);
    let kind = p.parse::<String>("kind", "an event kind")?;
    let (offset, limit) = p.page(1000, s.max_page)?;
    p.finish()?;
    if from > to {
        return Err(bad("from", "must not be after `to`"));
    }
    if let Some(k) = &kind {
        let known = proto::event::EVENT_KINDS;
        if !known.iter().any(|name| kind_matches(k, name)) {
            return Err(bad(
                "kind",
                format!("`{k}` matches none of {}", known.join(", ")),
            ));
        }
    }
    let log = s.log.clone();
    let page = tokio::task::spawn_blocking(move || {
        // A node that caught up from a snapshot has the events after it only.
        let floor = log
            .history()
            .base_point()
            .map_err(internal)?
            .map_or(0, |(index, _)| index + 1);
        let mut total = 0u64;
        let mut wanted: Vec<(u64, u32)> = Vec::new();
        for item in log.projection().history_index(from, to) {
            let (_, index, position, name) = item.map_err(internal)?;
            if index < floor || kind.as_deref().is_some_and(|k| !kind_matches(k, &name)) {
                continue;
            }
            total += 1;
            if total > offset as u64 && wanted.len() < limit {
                wanted.push((index, position));
            }
        }
        // Read each entry once.
        let mut batches = HashMap::new();
        for (index, _) in &wanted {
            if !batches.contains_key(index) {
                let entry = log
                    .history()
                    .entries_in(*index..=*index)
                    .map_err(internal)?;
                batches.insert(*index, entry.into_iter().next().and_then(|(_, b)| b));
            }
        }
        let items = wanted
            .into_iter()
            .filter_map(|(index, position)| {
                let event = batches
                    .get(&index)?
                    .as_ref()?
                    .events
                    .get(position as usize)?
                    .clone();
                Some(HistoryEvent {
                    index,
                    position,
                    event,
                })
            })
            .collect();
        Ok::<_, Failure>(Page {
            items,
            total,
            offset: offset as u64,
            limit: limit as u64,
        })
    })
    .await
    .map_err(internal)??;
    Ok(Json(page))
}

/// The active assets and dependencies of a projection.
type Active = (
    BTreeMap<std::net::IpAddr, proto::api::Asset>,
    BTreeMap<String, proto::api::Dependency>,
);

fn active(projection: &Projection) -> Result<Active, Failure> {
    let mut assets = BTreeMap::new();
    for a in projection.assets() {
        let a = a.map_err(internal)?;
        if a.status == Status::Active {
            assets.insert(a.ip, a);
        }
    }
    let mut deps = BTreeMap::new();
    for d in projection.dependencies() {
        let d = d.map_err(internal)?;
        if d.status == Status::Active {
            deps.insert(d.id.clone(), d);
        }
    }
    Ok((assets, deps))
}

/// What changed in the map between two moments: assets and dependencies that became active or
/// stopped being active, and the traffic of dependencies active at both.
#[utoipa::path(get, path = "/api/v1/topology/diff", tag = "history",
    params(("from" = String, Query, description = "Unix ms or a duration ago"),
        ("to" = Option<String>, Query, description = "Unix ms or a duration ago (default: now)")),
    responses((status = 200, body = TopologyDiff), (status = 400, body = proto::api::ApiError)))]
pub async fn diff(
    State(s): State<AppState>,
    Query(q): Pairs,
) -> Result<Json<TopologyDiff>, Failure> {
    let now = actors::now_ms();
    let mut p = Params::new(q)?;
    let from = p
        .time("from", now)?
        .ok_or_else(|| bad("from", "is required"))?;
    let to = p.time("to", now)?.unwrap_or(now);
    p.finish()?;
    if from > to {
        return Err(bad("from", "must not be after `to`"));
    }
    let log = s.log.clone();
    let _turn = s.disk_reads.acquire().await;
    let diff = tokio::task::spawn_blocking(move || {
        let replay = |at: u64, param: &str| {
            replay::as_of(log.history(), at).map_err(|e| match e {
                crate::raft::LogError::BeforeHistory { .. } => bad(param, e.to_string()),
                e => internal(e),
            })
        };
        let start = replay(from, "from")?;
        let end = replay(to, "to")?;
        let (a0, d0) = active(&start.projection)?;
        let (a1, d1) = active(&end.projection)?;
        let mut out = TopologyDiff {
            from_ms: from,
            to_ms: to,
            ..TopologyDiff::default()
        };
        out.assets_added = a1
            .iter()
            .filter(|(ip, _)| !a0.contains_key(ip))
            .map(|(_, a)| a.clone())
            .collect();
        out.assets_removed = a0
            .iter()
            .filter(|(ip, _)| !a1.contains_key(ip))
            .map(|(_, a)| a.clone())
            .collect();
        for (id, d) in &d1 {
            match d0.get(id) {
                None => out.dependencies_added.push(d.clone()),
                Some(before) => {
                    let to_server = d.bytes_to_server.saturating_sub(before.bytes_to_server);
                    let to_client = d.bytes_to_client.saturating_sub(before.bytes_to_client);
                    if to_server > 0 || to_client > 0 {
                        out.dependencies_changed.push(DependencyChange {
                            dependency: d.clone(),
                            bytes_to_server: to_server,
                            bytes_to_client: to_client,
                        });
                    }
                }
            }
        }
        out.dependencies_removed = d0
            .iter()
            .filter(|(id, _)| !d1.contains_key(*id))
            .map(|(_, d)| d.clone())
            .collect();
        Ok::<_, Failure>(out)
    })
    .await
    .map_err(internal)??;
    Ok(Json(diff))
}

/// What the rebuild check found.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct RebuildReport {
    /// Whether the projection rebuilt from the history equals the live one.
    pub equal: bool,
    /// The log index both were compared at.
    pub index: u64,
    /// History entries replayed.
    pub entries: u64,
    /// Trees that differ: name, rows rebuilt, rows live.
    pub differences: Vec<(String, usize, usize)>,
    /// Milliseconds it took.
    pub took_ms: u64,
}

/// Rebuilds the projection from the history and compares it with the live one.
#[utoipa::path(post, path = "/api/v1/admin/rebuild", tag = "history",
    responses((status = 200, body = RebuildReport)))]
pub async fn rebuild(State(s): State<AppState>) -> Result<Json<RebuildReport>, Failure> {
    let log = s.log.clone();
    let _turn = s.disk_reads.acquire().await;
    let r = tokio::task::spawn_blocking(move || replay::rebuild_and_compare(&log))
        .await
        .map_err(internal)?
        .map_err(internal)?;
    Ok(Json(RebuildReport {
        equal: r.equal,
        index: r.index,
        entries: r.entries,
        differences: r.differences,
        took_ms: r.took.as_millis() as u64,
    }))
}
