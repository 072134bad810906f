//! The dashboard: the node's health, how big the map is, throughput over the last ten minutes as
//! a chart, the top ten talkers by source and destination, the protocol mix, active advisories
//! and open alerts by severity, and the exporters with their health; refreshed every five
//! seconds and whenever the event stream reports a change.

use leptos::prelude::*;
use proto::advisory::AdvisoryRecord;
use proto::alert::AlertRecord;
use proto::api::{
    Asset, Dependency, Exporter, Health, Page, ProtocolMix, Throughput, TopTalker, TopTalkers,
};

use crate::api::get;
use crate::fmt::{bytes, rate, when};
use crate::live::Live;

/// An exporter silent for this long is shown as stale.
const STALE_AFTER_MS: f64 = 120_000.0;

/// Everything the dashboard shows, read together.
#[derive(Clone, Debug)]
struct Snapshot {
    health: Health,
    assets: u64,
    dependencies: u64,
    throughput: Throughput,
    talkers: TopTalkers,
    protocols: ProtocolMix,
    advisories: Page<AdvisoryRecord>,
    alerts: Page<AlertRecord>,
    exporters: Vec<Exporter>,
}

async fn load() -> Result<Snapshot, String> {
    Ok(Snapshot {
        health: get("/api/v1/health/live").await?,
        assets: get::<Page<Asset>>("/api/v1/assets?limit=1").await?.total,
        dependencies: get::<Page<Dependency>>("/api/v1/dependencies?limit=1")
            .await?
            .total,
        throughput: get("/api/v1/stats/throughput").await?,
        talkers: get("/api/v1/stats/top-talkers?limit=10").await?,
        protocols: get("/api/v1/stats/protocols").await?,
        advisories: get("/api/v1/advisories?limit=200").await?,
        alerts: get("/api/v1/alerts?limit=500").await?,
        exporters: get("/api/v1/exporters").await?,
    })
}

/// The dashboard page.
#[component]
pub fn Dashboard() -> impl IntoView {
    let (tick, set_tick) = signal(0u32);
    let handle = set_interval_with_handle(
        move || set_tick.update(|t| *t = t.wrapping_add(1)),
        std::time::Duration::from_secs(5),
    );
    on_cleanup(move || {
        if let Ok(h) = handle {
            h.clear();
        }
    });
    let live = use_context::<Live>();
    let data = LocalResource::new(move || {
        tick.get();
        if let Some(l) = live {
            l.map.get();
            l.advisories.get();
            l.alerts.get();
        }
        load()
    });
    view! {
        <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || {
                data.get()
                    .map(|result| match result {
                        Ok(s) => view! { <Overview snapshot=s /> }.into_any(),
                        Err(e) => view! { <p class="error" role="alert">{e}</p> }.into_any(),
                    })
            }}
        </Suspense>
    }
}

/// Counts of `severities` as `CRITICAL 1 · WARNING 2 · INFO 0`.
fn by_severity(severities: impl Iterator<Item = proto::advisory::Severity>) -> String {
    let mut counts = [0u64; 3];
    for s in severities {
        counts[match s.name() {
            "CRITICAL" => 0,
            "WARNING" => 1,
            _ => 2,
        }] += 1;
    }
    format!(
        "{} critical · {} warning · {} info",
        counts[0], counts[1], counts[2]
    )
}

/// Bits and packets per second over the window as SVG lines, each scaled to its own peak.
fn chart(t: &Throughput) -> impl IntoView {
    let (w, h) = (600.0, 120.0);
    let max = t.points.iter().map(|p| p.bps).fold(1.0, f64::max);
    let max_pps = t.points.iter().map(|p| p.pps).fold(1.0, f64::max);
    let n = t.points.len().max(2) as f64 - 1.0;
    let line = |value: fn(&proto::api::ThroughputPoint) -> f64, top: f64| -> String {
        t.points
            .iter()
            .enumerate()
            .map(|(i, p)| {
                format!(
                    "{:.1},{:.1}",
                    i as f64 / n * w,
                    h - value(p) / top * (h - 10.0)
                )
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    let (points, packets) = (line(|p| p.bps, max), line(|p| p.pps, max_pps));
    let now = t.points.last().copied().unwrap_or_default();
    let label = format!(
        "now {} · {} · peak {}",
        rate(now.bps, "bit/s"),
        rate(now.pps, "packets/s"),
        rate(max, "bit/s")
    );
    view! {
        <figure class="chart">
            <svg id="throughput-chart" viewBox=format!("0 0 {w} {h}") preserveAspectRatio="none" role="img"
                aria-label=format!("Throughput over the last ten minutes: {label}")>
                <polyline class="bps" points=points fill="none" stroke="#5b8def" stroke-width="2" vector-effect="non-scaling-stroke" />
                <polyline class="pps" points=packets fill="none" stroke="#f28e2b" stroke-width="1" stroke-dasharray="4 3" vector-effect="non-scaling-stroke" />
            </svg>
            <figcaption id="throughput-now">{label}
                <span class="muted">" — blue: bit/s, orange dashed: packets/s (each to its own peak)"</span></figcaption>
        </figure>
    }
}

fn talkers(id: &'static str, title: &'static str, list: Vec<TopTalker>) -> impl IntoView {
    view! {
        <section>
            <h3>{title}</h3>
            <table id=id>
                <thead><tr><th>"Address"</th><th>"Bytes"</th><th>"Flows"</th><th>"Share"</th></tr></thead>
                <tbody>
                    {list.into_iter().map(|t| view! {
                        <tr><td><a href=format!("/assets/{}", t.ip)>{t.ip.to_string()}</a></td><td>{bytes(t.bytes)}</td>
                            <td>{t.flows}</td><td>{format!("{:.0}%", t.share * 100.0)}</td></tr>
                    }).collect_view()}
                </tbody>
            </table>
        </section>
    }
}

#[component]
fn Overview(snapshot: Snapshot) -> impl IntoView {
    let Snapshot {
        health,
        assets,
        dependencies,
        throughput,
        talkers: top,
        protocols,
        advisories,
        alerts,
        exporters,
    } = snapshot;
    let role = health.raft_state.clone();
    let advisory_counts = by_severity(advisories.items.iter().map(|a| a.advisory.severity));
    let alert_counts = by_severity(alerts.items.iter().map(|a| a.alert.severity));
    let now = js_sys::Date::now();
    view! {
        <section class="cards" aria-label="summary">
            <div class="card"><span class="label">"Node"</span>
                <span class="value" id="node-id">{health.node_id}</span>
                <span class="sub">{role}</span></div>
            <div class="card"><span class="label">"Assets"</span>
                <span class="value" id="assets-total">{assets}</span></div>
            <div class="card"><span class="label">"Dependencies"</span>
                <span class="value" id="dependencies-total">{dependencies}</span></div>
            <div class="card"><span class="label">"Active advisories"</span>
                <span class="value" id="advisories-total">{advisories.total}</span>
                <span class="sub" id="advisories-by-severity">{advisory_counts}</span></div>
            <div class="card"><span class="label">"Open alerts"</span>
                <span class="value" id="alerts-total">{alerts.total}</span>
                <span class="sub" id="alerts-by-severity">{alert_counts}</span></div>
        </section>
        <section aria-labelledby="throughput-h">
            <h2 id="throughput-h">"Throughput, last 10 minutes"</h2>
            {chart(&throughput)}
        </section>
        <div class="columns">
            {talkers("top-sources", "Top talkers (sources)", top.sources)}
            {talkers("top-destinations", "Top talkers (destinations)", top.destinations)}
            <section>
                <h3>"Protocols"</h3>
                <table id="protocols">
                    <thead><tr><th>"Protocol"</th><th>"Bytes"</th><th>"Share"</th></tr></thead>
                    <tbody>
                        {protocols.protocols.into_iter().map(|p| view! {
                            <tr><td>{p.name}</td><td>{bytes(p.bytes)}</td>
                                <td><meter min="0" max="1" value=p.share></meter>{format!(" {:.0}%", p.share * 100.0)}</td></tr>
                        }).collect_view()}
                    </tbody>
                </table>
            </section>
        </div>
        <section aria-labelledby="exporters-h">
            <h2 id="exporters-h">"Exporters"</h2>
            <table id="exporters">
                <thead><tr><th>"Address"</th><th>"Formats"</th><th>"Health"</th><th>"Packets"</th><th>"Records"</th>
                    <th>"Lost (sequence)"</th><th>"Errors"</th><th>"Last seen"</th></tr></thead>
                <tbody>
                    {exporters.into_iter().map(|e| {
                        let errors: u64 = e.errors.values().sum();
                        let stale = now - e.last_seen_ms as f64 > STALE_AFTER_MS;
                        let health = if stale { "silent" } else if errors > 0 || e.sequence_lost > 0 { "degraded" } else { "ok" };
                        let formats = e.formats.iter().map(|f| format!("{f:?}")).collect::<Vec<_>>().join(", ");
                        let why = e.errors.iter().map(|(k, v)| format!("{k}: {v}")).collect::<Vec<_>>().join(", ");
                        view! {
                            <tr class=format!("exporter {health}")>
                                <td>{e.addr.map(|a| a.to_string()).unwrap_or_else(|| "unknown".into())}</td>
                                <td>{formats}</td><td class="health">{health}</td><td>{e.packets}</td><td>{e.records}</td>
                                <td>{e.sequence_lost}</td><td title=why>{errors}</td><td>{when(e.last_seen_ms)}</td>
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
        </section>
        <section aria-labelledby="advisories-h">
            <h2 id="advisories-h">"Advisories"</h2>
            <ul id="advisories">
                {advisories.items.into_iter().take(20).map(|a| {
                    let severity = a.advisory.severity.name();
                    view! {
                        <li class=format!("advisory {}", severity.to_lowercase())>
                            <strong>{severity}</strong>" "{a.advisory.summary}
                            <p class="action">{a.advisory.action}</p>
                        </li>
                    }
                }).collect_view()}
            </ul>
        </section>
    }
}
