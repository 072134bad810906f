//! The cluster / about page: this node's version, uptime, memory and Raft role, every member of
//! its cluster as the member reports itself, flow and event rates (from the difference between
//! two answers five seconds apart), and the configuration with secrets hidden.

use leptos::prelude::*;
use proto::api::About;

use crate::api::get;
use crate::fmt::{bytes, duration, rate};

/// Two answers in a row, for rates.
#[derive(Clone, Debug, Default)]
struct Samples {
    last: Option<(f64, About)>,
    rates: Option<(f64, f64)>,
}

/// The about page.
#[component]
pub fn AboutPage() -> impl IntoView {
    let samples = RwSignal::new(Samples::default());
    let error = RwSignal::new(None::<String>);
    let poll = move || {
        leptos::task::spawn_local(async move {
            match get::<About>("/api/v1/about").await {
                Err(e) => error.set(Some(e)),
                Ok(about) => {
                    error.set(None);
                    let now = js_sys::Date::now();
                    samples.update(|s| {
                        if let Some((then, prev)) = &s.last {
                            let dt = ((now - then) / 1000.0).max(0.001);
                            let flows = about.flows_total.saturating_sub(prev.flows_total) as f64;
                            let events = about
                                .events_committed_total
                                .saturating_sub(prev.events_committed_total)
                                as f64;
                            s.rates = Some((flows / dt, events / dt));
                        }
                        s.last = Some((now, about));
                    });
                }
            }
        });
    };
    poll();
    let handle = set_interval_with_handle(poll, std::time::Duration::from_secs(5));
    on_cleanup(move || {
        if let Ok(h) = handle {
            h.clear();
        }
    });
    view! {
        <h2>"Cluster and node"</h2>
        {move || error.get().map(|e| view! { <p class="error" role="alert">{e}</p> })}
        {move || samples.get().last.map(|(_, a)| {
            let rates = samples.get().rates;
            view! { <Overview about=a rates=rates /> }
        })}
    }
}

#[component]
fn Overview(about: About, rates: Option<(f64, f64)>) -> impl IntoView {
    let n = about.node.clone();
    let (flows, events) = rates.map_or(("…".to_string(), "…".to_string()), |(f, e)| {
        (rate(f, "flows/s"), rate(e, "events/s"))
    });
    let config = serde_json::to_string_pretty(&about.config).unwrap_or_default();
    view! {
        <section class="cards" aria-label="this node">
            <div class="card"><span class="label">"Node"</span>
                <span class="value" id="about-node">{n.node_id}</span>
                <span class="sub" id="about-role">{format!("{} · term {}", n.raft_state, n.term)}</span></div>
            <div class="card"><span class="label">"Version"</span>
                <span class="value" id="about-version">{n.version.clone()}</span>
                <span class="sub">{format!("cluster {}", about.cluster)}</span></div>
            <div class="card"><span class="label">"Uptime"</span>
                <span class="value" id="about-uptime">{duration(n.uptime_s)}</span></div>
            <div class="card"><span class="label">"Memory"</span>
                <span class="value" id="about-rss">{bytes(about.rss_bytes)}</span>
                <span class="sub">{format!("peak {}", bytes(about.rss_peak_bytes))}</span></div>
            <div class="card"><span class="label">"Flows"</span>
                <span class="value" id="about-flows">{about.flows_total}</span>
                <span class="sub" id="about-flow-rate">{flows}</span></div>
            <div class="card"><span class="label">"Events committed"</span>
                <span class="value" id="about-events">{about.events_committed_total}</span>
                <span class="sub" id="about-event-rate">{events}</span></div>
            <div class="card"><span class="label">"Applied index"</span>
                <span class="value">{n.applied_index}</span>
                <span class="sub">{format!("{} assets, {} dependencies", about.assets, about.dependencies)}</span></div>
        </section>
        <section aria-labelledby="members-h">
            <h3 id="members-h">"Members"</h3>
            <table id="members">
                <thead><tr><th>"Id"</th><th>"API address"</th><th>"Kind"</th><th>"Role"</th>
                    <th>"Term"</th><th>"Leader"</th><th>"Applied"</th><th>"Uptime"</th></tr></thead>
                <tbody>
                    {about.members.into_iter().map(|m| {
                        let kind = if m.voter { "voter" } else { "learner" };
                        match m.health {
                            Some(h) => view! {
                                <tr><td>{m.id}</td><td>{m.addr}</td><td>{kind}</td><td class="role">{h.raft_state}</td>
                                    <td>{h.term}</td><td>{h.leader.map_or("none".to_string(), |l| l.to_string())}</td>
                                    <td>{h.applied_index}</td><td>{duration(h.uptime_s)}</td></tr>
                            }.into_any(),
                            None => view! {
                                <tr class="unreachable"><td>{m.id}</td><td>{m.addr}</td><td>{kind}</td>
                                    <td class="role" colspan="5">{format!("unreachable: {}", m.error.unwrap_or_default())}</td></tr>
                            }.into_any(),
                        }
                    }).collect_view()}
                </tbody>
            </table>
        </section>
        <section aria-labelledby="config-h">
            <h3 id="config-h">"Configuration (secrets hidden)"</h3>
            <pre id="config" class="config">{config}</pre>
        </section>
    }
}
