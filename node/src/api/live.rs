//! API over the live actors and the raw flow tier: flows (recent ones from the aggregator's
//! ring, older ones from disk), throughput, top talkers, protocol mix, exporters, health and
//! Prometheus metrics.

use std::fmt::Write as _;
use std::time::Duration;

use actors::aggregator::{AggregatorMsg, FlowQuery};
use actors::collector::CollectorMsg;
use actors::graph::GraphMsg;
use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use proto::api::{Exporter, FlowPage, FlowTier, Health, ProtocolMix, Throughput, TopTalkers};
use ractor::{ActorRef, RpcReplyPort};

use super::params::{bad, Failure, Params};
use super::AppState;

type Pairs = Query<Vec<(String, String)>>;

const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// Asks an actor with the API's call timeout.
pub(super) async fn ask<M, T>(
    actor: &ActorRef<M>,
    msg: impl FnOnce(RpcReplyPort<T>) -> M,
) -> Result<T, Failure>
where
    M: ractor::Message,
    T: Send + 'static,
{
    match actor.call(msg, Some(CALL_TIMEOUT)).await {
        Ok(ractor::rpc::CallResult::Success(v)) => Ok(v),
        Ok(_) => Err(Failure::Unavailable(
            "the actor did not answer in time".into(),
        )),
        Err(e) => Err(Failure::Unavailable(format!("actor unavailable: {e}"))),
    }
}

/// Records a disk read may scan for one request (272 MB inflated, about 100 MB on disk).
const SCAN_BUDGET: u64 = 2_000_000;
/// How long a disk read waits for the raw writer to write out what it has buffered.
const FLUSH_WAIT: Duration = Duration::from_secs(2);

/// Flows matching the filters, newest first. Without `from`, the in-memory ring of recent flows
/// answers (`"tier": "memory"`). When `from` reaches back further than `retention.raw_hot` or
/// than the oldest flow the ring holds, the raw flow files on disk answer (`"tier": "disk"`):
/// newest received first, reading at most 2 million records (`scanned`); when that bound stops
/// the read, `truncated` is true and `total` counts the matches among the records read.
/// Times filter on the flow's end (`last_ms`).
#[utoipa::path(get, path = "/api/v1/flows", tag = "flows",
    params(("src" = Option<String>, Query, description = "Source address or CIDR"),
        ("dst" = Option<String>, Query, description = "Destination address or CIDR"),
        ("host" = Option<String>, Query, description = "Either address"),
        ("port" = Option<u16>, Query, description = "Source or destination port"),
        ("protocol" = Option<String>, Query),
        ("from" = Option<String>, Query, description = "Flows ending at or after: Unix ms or duration ago; further back than retention.raw_hot reads the disk"),
        ("to" = Option<String>, Query, description = "Flows ending at or before: Unix ms or duration ago"),
        ("offset" = Option<u64>, Query), ("limit" = Option<u64>, Query)),
    responses((status = 200, body = FlowPage), (status = 400, body = proto::api::ApiError)))]
pub async fn flows(
    State(s): State<AppState>,
    scope: super::scope::Scope,
    Query(q): Pairs,
) -> Result<Json<FlowPage>, Failure> {
    let now = actors::now_ms();
    let mut p = Params::new(q)?;
    let query = FlowQuery {
        within: scope.networks(),
        src: p.net("src")?,
        dst: p.net("dst")?,
        host: p.net("host")?,
        port: p.port("port")?,
        protocol: p.protocol("protocol")?,
        from_ms: p.time("from", now)?,
        to_ms: p.time("to", now)?,
        offset: 0,
        limit: 0,
    };
    let (offset, limit) = p.page(100, s.max_page)?;
    p.finish()?;
    if let (Some(f), Some(t)) = (query.from_ms, query.to_ms) {
        if f > t {
            return Err(bad("from", "is after `to`"));
        }
    }
    let query = FlowQuery {
        offset,
        limit,
        ..query
    };
    if ring_answers(&s, query.from_ms, now).await? {
        let page = ask(&s.aggregator, |r| {
            AggregatorMsg::RecentFlows(query.clone(), r)
        })
        .await?;
        // Without a time range the ring answers, unless it could not fill the page and has
        // already let older flows go: then the disk, which has those too, answers.
        if query.from_ms.is_some()
            || page.items.len() >= limit
            || ring_held(&s).await? < s.ring_capacity
        {
            return Ok(Json(FlowPage::from_memory(page)));
        }
    }
    let permit = s
        .disk_reads
        .clone()
        .acquire_owned()
        .await
        .map_err(|e| Failure::Internal(format!("raw flow read failed: {e}")))?;
    let raw = s.raw.clone();
    let page = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        // Whatever the aggregator handed over before this request is on disk when read.
        raw.flush(FLUSH_WAIT);
        let scan = raw.query(&query, SCAN_BUDGET);
        FlowPage {
            items: scan.items,
            total: scan.total,
            offset: query.offset as u64,
            limit: query.limit as u64,
            tier: FlowTier::Disk,
            scanned: scan.scanned,
            truncated: scan.truncated,
        }
    })
    .await
    .map_err(|e| Failure::Internal(format!("raw flow read failed: {e}")))?;
    Ok(Json(page))
}

/// How many flows the ring holds.
async fn ring_held(s: &AppState) -> Result<usize, Failure> {
    let all = FlowQuery {
        limit: 1,
        ..FlowQuery::default()
    };
    let held = ask(&s.aggregator, |r| AggregatorMsg::RecentFlows(all, r)).await?;
    Ok(usize::try_from(held.total).unwrap_or(usize::MAX))
}

/// Whether the in-memory ring can answer flows ending at or after `from_ms`: always without a
/// time range; otherwise only within `retention.raw_hot` and when the ring's oldest flow ended
/// no later than `from_ms` (it has not dropped any that could match).
async fn ring_answers(s: &AppState, from_ms: Option<u64>, now: u64) -> Result<bool, Failure> {
    let Some(from) = from_ms else {
        return Ok(true);
    };
    let hot_ms = u64::try_from(s.raw_hot.as_millis()).unwrap_or(u64::MAX);
    if from < now.saturating_sub(hot_ms) {
        return Ok(false);
    }
    let held = ring_held(s).await?;
    if held == 0 {
        return Ok(false);
    }
    let oldest = FlowQuery {
        offset: held - 1,
        limit: 1,
        ..FlowQuery::default()
    };
    let oldest = ask(&s.aggregator, |r| AggregatorMsg::RecentFlows(oldest, r)).await?;
    Ok(oldest.items.first().is_some_and(|f| f.last_ms <= from))
}

/// Throughput per second over the last ten minutes.
#[utoipa::path(get, path = "/api/v1/stats/throughput", tag = "stats",
    responses((status = 200, body = Throughput)))]
pub async fn throughput(State(s): State<AppState>) -> Result<Json<Throughput>, Failure> {
    Ok(Json(ask(&s.aggregator, AggregatorMsg::Throughput).await?))
}

/// Top talkers by source and destination.
#[utoipa::path(get, path = "/api/v1/stats/top-talkers", tag = "stats",
    params(("limit" = Option<u64>, Query, description = "How many, default 10, at most 1000")),
    responses((status = 200, body = TopTalkers), (status = 400, body = proto::api::ApiError)))]
pub async fn top_talkers(
    State(s): State<AppState>,
    scope: super::scope::Scope,
    Query(q): Pairs,
) -> Result<Json<TopTalkers>, Failure> {
    let mut p = Params::new(q)?;
    let limit = p
        .parse::<usize>("limit", "a positive integer")?
        .unwrap_or(10);
    p.finish()?;
    if limit == 0 || limit > 1000 {
        return Err(bad("limit", "must be 1 to 1000"));
    }
    if !scope.is_limited() {
        return Ok(Json(
            ask(&s.aggregator, |r| AggregatorMsg::TopTalkers(limit, r)).await?,
        ));
    }
    // A scoped role: its addresses among the 1000 busiest.
    let mut top = ask(&s.aggregator, |r| AggregatorMsg::TopTalkers(1000, r)).await?;
    for list in [&mut top.sources, &mut top.destinations] {
        list.retain(|t| scope.sees(&t.ip));
        list.truncate(limit);
    }
    Ok(Json(top))
}

/// The protocol mix.
#[utoipa::path(get, path = "/api/v1/stats/protocols", tag = "stats",
    responses((status = 200, body = ProtocolMix)))]
pub async fn protocols(State(s): State<AppState>) -> Result<Json<ProtocolMix>, Failure> {
    Ok(Json(ask(&s.aggregator, AggregatorMsg::Protocols).await?))
}

/// Exporters and their counters.
#[utoipa::path(get, path = "/api/v1/exporters", tag = "stats",
    responses((status = 200, body = Vec<Exporter>)))]
pub async fn exporters(State(s): State<AppState>) -> Result<Json<Vec<Exporter>>, Failure> {
    Ok(Json(ask(&s.collector, CollectorMsg::Exporters).await?))
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/api/v1/health/live", tag = "health",
    responses((status = 200, body = Health)))]
pub async fn live(State(s): State<AppState>) -> Json<Health> {
    Json(health(&s, "ok"))
}

/// Readiness: the event log has a leader and applies entries.
#[utoipa::path(get, path = "/api/v1/health/ready", tag = "health",
    responses((status = 200, body = Health), (status = 503, body = Health)))]
pub async fn ready(State(s): State<AppState>) -> Response {
    let metrics = s.log.metrics();
    if metrics.current_leader.is_some() && s.projection.user_count() == 0 {
        // Nothing can be asked of a node before its first admin exists.
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(health(&s, "no users yet: the first admin is being created")),
        )
            .into_response()
    } else if metrics.current_leader.is_some() {
        (StatusCode::OK, Json(health(&s, "ok"))).into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(health(&s, "no raft leader")),
        )
            .into_response()
    }
}

/// This node's health answer.
pub(super) fn health(s: &AppState, status: &str) -> Health {
    let raft = s.log.metrics();
    Health {
        status: status.to_string(),
        applied_index: s.log.applied_index(),
        node_id: raft.id,
        raft_state: format!("{:?}", raft.state),
        leader: raft.current_leader,
        term: raft.current_term,
        snapshot_index: raft.snapshot.map(|l| l.index),
        purged_index: raft.purged.map(|l| l.index),
        uptime_s: s.started.elapsed().as_secs(),
        version: env!("CARGO_PKG_VERSION").to_string(),
    }
}

/// The relay's targets and their counters (sent, filtered, dropped for a full queue, errors).
#[utoipa::path(get, path = "/api/v1/relay", tag = "stats",
    responses((status = 200, body = Vec<Object>)))]
pub async fn relay(State(s): State<AppState>) -> Json<Vec<actors::relay::RelayStats>> {
    Json(s.relay.stats())
}

/// Resident set size of this process, bytes (Linux), and its peak.
pub fn rss_bytes() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<u64>().ok())
            .map_or(0, |kb| kb * 1024)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// A per-exporter counter: name, help text, and how to read it.
type ExporterMetric = (&'static str, &'static str, fn(&Exporter) -> u64);

/// Prometheus metrics, text format.
pub async fn metrics(State(s): State<AppState>) -> Result<Response, Failure> {
    let exporters = ask(&s.collector, CollectorMsg::Exporters).await?;
    let totals = ask(&s.aggregator, AggregatorMsg::Totals).await?;
    let graph = ask(&s.graph, GraphMsg::Counts).await?;
    let raft = s.log.metrics();
    let (assets, services, deps) = s
        .projection
        .counts()
        .map_err(|e| Failure::Internal(format!("projection counts: {e}")))?;
    let (rss, peak) = rss_bytes();
    let lane = s.lane.stats();
    let mut out = String::new();
    let mut gauge = |name: &str, help: &str, kind: &str, value: u64| {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
        );
    };
    gauge(
        "flowlens_flows_total",
        "Flow records aggregated.",
        "counter",
        totals.flows,
    );
    gauge(
        "flowlens_bytes_total",
        "Bytes in aggregated flows.",
        "counter",
        totals.bytes,
    );
    gauge(
        "flowlens_queue_dropped_batches_total",
        "Flow batches dropped because the aggregator lane was full.",
        "counter",
        lane.dropped_batches
            .load(std::sync::atomic::Ordering::Relaxed),
    );
    gauge(
        "flowlens_queue_dropped_flows_total",
        "Flows in dropped batches.",
        "counter",
        lane.dropped_items
            .load(std::sync::atomic::Ordering::Relaxed),
    );
    let raw = s.raw.stats();
    let raw_metrics = [
        (
            "flowlens_raw_bytes",
            "Bytes of raw flow files on disk.",
            "gauge",
            raw.bytes,
        ),
        (
            "flowlens_raw_files",
            "Raw flow files on disk (one per minute).",
            "gauge",
            raw.files,
        ),
        (
            "flowlens_raw_flows_written_total",
            "Flows written to the raw flow files.",
            "counter",
            raw.flows_written,
        ),
        (
            "flowlens_raw_dropped_batches_total",
            "Flow batches dropped because the raw flow writer fell behind.",
            "counter",
            raw.dropped_batches,
        ),
        (
            "flowlens_raw_dropped_flows_total",
            "Flows in batches dropped by the raw flow writer.",
            "counter",
            raw.dropped_flows,
        ),
        (
            "flowlens_raw_write_errors_total",
            "Flows lost to raw flow write errors.",
            "counter",
            raw.write_errors,
        ),
    ];
    for (name, help, kind, value) in raw_metrics {
        gauge(name, help, kind, value);
    }
    gauge(
        "flowlens_raw_guarded_flows_total",
        "Flows not written to disk because the disk guard held raw writes.",
        "counter",
        raw.guarded_flows,
    );
    gauge(
        "flowlens_disk_free_bytes",
        "Free bytes on the filesystem of the raw flow files (the data directory).",
        "gauge",
        crate::housekeeping::free_bytes(s.raw.dir()).unwrap_or(0),
    );
    gauge(
        "flowlens_history_starts_ms",
        "When the event history starts (its base, after retention.events pruned it or a \
         snapshot was installed), UTC ms; 0 when it holds every event.",
        "gauge",
        s.usage.history_starts_ms(),
    );
    gauge(
        "flowlens_history_prunes_total",
        "Times retention.events moved the history's start.",
        "counter",
        s.usage.prunes(),
    );
    gauge(
        "flowlens_history_index_pruned_total",
        "History index entries removed by retention.events.",
        "counter",
        s.usage.pruned_index(),
    );
    gauge(
        "flowlens_raw_held",
        "1 while the disk guard holds raw flow writes (too little free space).",
        "gauge",
        u64::from(s.raw.is_held()),
    );
    gauge(
        "flowlens_rollup_dropped_periods_total",
        "Committed traffic batches the rollup writer had no room for (not in the rollups).",
        "counter",
        s.rollups.dropped(),
    );
    gauge(
        "flowlens_assets",
        "Assets in the projection.",
        "gauge",
        assets,
    );
    gauge(
        "flowlens_services",
        "Services in the projection.",
        "gauge",
        services,
    );
    gauge(
        "flowlens_dependencies",
        "Dependencies in the projection.",
        "gauge",
        deps,
    );
    gauge(
        "flowlens_graph_active_dependencies",
        "Active dependencies in the live graph.",
        "gauge",
        graph.dependencies as u64,
    );
    gauge(
        "flowlens_events_committed_total",
        "Change events committed by the graph.",
        "counter",
        graph.events_committed,
    );
    gauge(
        "flowlens_graph_pending_batches",
        "Event batches the graph holds while the event log catches up.",
        "gauge",
        graph.pending_batches as u64,
    );
    gauge(
        "flowlens_graph_unannounced_dependencies",
        "New dependencies waiting for the discovery pace (graph.discovery_rate).",
        "gauge",
        graph.unannounced as u64,
    );
    gauge(
        "flowlens_raft_applied_index",
        "Last log index applied.",
        "gauge",
        s.log.applied_index(),
    );
    gauge(
        "flowlens_raft_term",
        "Current Raft term.",
        "gauge",
        raft.current_term,
    );
    gauge(
        "flowlens_process_resident_bytes",
        "Resident set size.",
        "gauge",
        rss,
    );
    gauge(
        "flowlens_process_resident_peak_bytes",
        "Peak resident set size.",
        "gauge",
        peak,
    );
    gauge(
        "flowlens_uptime_seconds",
        "Seconds since start.",
        "gauge",
        s.started.elapsed().as_secs(),
    );
    let per_exporter: [ExporterMetric; 3] = [
        (
            "flowlens_exporter_packets_total",
            "Datagrams received per exporter.",
            |e| e.packets,
        ),
        (
            "flowlens_exporter_records_total",
            "Flow records decoded per exporter.",
            |e| e.records,
        ),
        (
            "flowlens_exporter_sequence_lost_total",
            "Records the sequence numbers say were lost.",
            |e| e.sequence_lost,
        ),
    ];
    for (name, help, value) in per_exporter {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
        for e in &exporters {
            let addr = e.addr.map(|a| a.to_string()).unwrap_or_default();
            let _ = writeln!(out, "{name}{{exporter=\"{addr}\"}} {}", value(e));
        }
    }
    let _ = writeln!(out, "# HELP flowlens_exporter_errors_total Datagrams or parts refused, by reason.\n# TYPE flowlens_exporter_errors_total counter");
    for e in &exporters {
        let addr = e.addr.map(|a| a.to_string()).unwrap_or_default();
        for (reason, n) in &e.errors {
            let _ = writeln!(
                out,
                "flowlens_exporter_errors_total{{exporter=\"{addr}\",reason=\"{reason}\"}} {n}"
            );
        }
    }
    if !s.relay.is_empty() {
        actors::relay::write_metrics(&s.relay.stats(), &mut out);
    }
    let _ = writeln!(out, "# HELP flowlens_data_bytes Bytes under the data directory, by its top-level directory (`other`: its files), measured by housekeeping.\n# TYPE flowlens_data_bytes gauge");
    for (part, bytes) in s.usage.parts() {
        let part = part.replace(['"', '\\', '\n'], "_");
        let _ = writeln!(out, "flowlens_data_bytes{{part=\"{part}\"}} {bytes}");
    }
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response())
}
