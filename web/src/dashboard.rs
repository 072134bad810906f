//! The dashboard: the node's health, how big the map is, the top talkers and the active
//! advisories, refreshed every five seconds.

use leptos::prelude::*;
use proto::advisory::AdvisoryRecord;
use proto::api::{Asset, Dependency, Health, Page, TopTalkers};

use crate::api::get;

/// Everything the dashboard shows, read together.
#[derive(Clone, Debug)]
struct Snapshot {
    health: Health,
    assets: u64,
    dependencies: u64,
    talkers: TopTalkers,
    advisories: Page<AdvisoryRecord>,
}

async fn load() -> Result<Snapshot, String> {
    let health: Health = get("/api/v1/health/live").await?;
    let assets: Page<Asset> = get("/api/v1/assets?limit=1").await?;
    let dependencies: Page<Dependency> = get("/api/v1/dependencies?limit=1").await?;
    let talkers: TopTalkers = get("/api/v1/stats/top-talkers?limit=10").await?;
    let advisories: Page<AdvisoryRecord> = get("/api/v1/advisories?limit=20").await?;
    Ok(Snapshot {
        health,
        assets: assets.total,
        dependencies: dependencies.total,
        talkers,
        advisories,
    })
}

fn bytes(n: u64) -> String {
    match n {
        n if n >= 1_000_000_000 => format!("{:.1} GB", n as f64 / 1e9),
        n if n >= 1_000_000 => format!("{:.1} MB", n as f64 / 1e6),
        n if n >= 1_000 => format!("{:.1} kB", n as f64 / 1e3),
        n => format!("{n} B"),
    }
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
    let data = LocalResource::new(move || {
        tick.get();
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

#[component]
fn Overview(snapshot: Snapshot) -> impl IntoView {
    let Snapshot {
        health,
        assets,
        dependencies,
        talkers,
        advisories,
    } = snapshot;
    let role = health.raft_state.clone();
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
                <span class="value" id="advisories-total">{advisories.total}</span></div>
        </section>
        <section aria-labelledby="talkers-h">
            <h2 id="talkers-h">"Top talkers (sources)"</h2>
            <table id="top-sources">
                <thead><tr><th>"Address"</th><th>"Bytes"</th><th>"Flows"</th><th>"Share"</th></tr></thead>
                <tbody>
                    {talkers.sources.into_iter().map(|t| view! {
                        <tr><td>{t.ip.to_string()}</td><td>{bytes(t.bytes)}</td><td>{t.flows}</td>
                            <td>{format!("{:.0}%", t.share * 100.0)}</td></tr>
                    }).collect_view()}
                </tbody>
            </table>
        </section>
        <section aria-labelledby="advisories-h">
            <h2 id="advisories-h">"Advisories"</h2>
            <ul id="advisories">
                {advisories.items.into_iter().map(|a| {
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
