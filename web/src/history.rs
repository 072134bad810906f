//! The history page: what changed in the map between two times (assets and dependencies added
//! and removed, traffic on the others), and the events of that span, newest last. Times are what
//! the API takes: Unix ms, a UTC time, or a duration before now.

use leptos::prelude::*;
use proto::api::{Asset, Dependency, HistoryEvent, Page, TopologyDiff};

use crate::api::get;
use crate::fmt::{bytes, query, when};

/// Both answers of the page.
#[derive(Clone, Debug)]
struct Span {
    diff: TopologyDiff,
    events: Page<HistoryEvent>,
}

async fn load(from: String, to: String, kind: String) -> Result<Span, String> {
    let times = [("from", from), ("to", to)];
    let diff = get(&query("/api/v1/topology/diff", &times)).await?;
    let mut pairs = times.to_vec();
    pairs.push(("kind", kind));
    pairs.push(("limit", "200".into()));
    let events = get(&query("/api/v1/history/events", &pairs)).await?;
    Ok(Span { diff, events })
}

fn assets(id: &'static str, title: &'static str, items: Vec<Asset>) -> impl IntoView {
    view! {
        <h3>{format!("{title} ({})", items.len())}</h3>
        <ul id=id class="changes">
            {items.into_iter().map(|a| view! {
                <li><a href=format!("/assets/{}", a.ip)>{a.ip.to_string()}</a></li>
            }).collect_view()}
        </ul>
    }
}

fn dependencies(id: &'static str, title: &'static str, items: Vec<Dependency>) -> impl IntoView {
    view! {
        <h3>{format!("{title} ({})", items.len())}</h3>
        <ul id=id class="changes">
            {items.into_iter().map(|d| view! { <li>{d.id}</li> }).collect_view()}
        </ul>
    }
}

/// The history page.
#[component]
pub fn History() -> impl IntoView {
    let from = RwSignal::new("1h".to_string());
    let to = RwSignal::new(String::new());
    let kind = RwSignal::new(String::new());
    let data = LocalResource::new(move || load(from.get(), to.get(), kind.get()));
    view! {
        <h2>"History"</h2>
        <form class="filters" on:submit=|ev| ev.prevent_default()>
            <label>"From " <input id="history-from" prop:value=move || from.get()
                placeholder="2026-12-06 12:00:00, 1h or Unix ms"
                on:change=move |ev| from.set(event_target_value(&ev)) /></label>
            <label>"To " <input id="history-to" prop:value=move || to.get() placeholder="now"
                on:change=move |ev| to.set(event_target_value(&ev)) /></label>
            <label>"Events " <input id="history-kind" placeholder="asset.* (all)" size="14"
                on:change=move |ev| kind.set(event_target_value(&ev)) /></label>
        </form>
        <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || data.get().map(|result| match result {
                Err(e) => view! { <p class="error" role="alert">{e}</p> }.into_any(),
                Ok(Span { diff, events }) => view! {
                    <p id="history-span">{format!("From {} to {}", when(diff.from_ms), when(diff.to_ms))}</p>
                    <div class="diff">
                        <div>{assets("assets-added", "Assets added", diff.assets_added)}
                             {assets("assets-removed", "Assets removed", diff.assets_removed)}</div>
                        <div>{dependencies("deps-added", "Dependencies added", diff.dependencies_added)}
                             {dependencies("deps-removed", "Dependencies removed", diff.dependencies_removed)}</div>
                        <div>
                            <h3>{format!("Dependencies with traffic ({})", diff.dependencies_changed.len())}</h3>
                            <ul id="deps-changed" class="changes">
                                {diff.dependencies_changed.into_iter().map(|c| view! {
                                    <li>{format!("{}: {} → / {} ←", c.dependency.id,
                                        bytes(c.bytes_to_server), bytes(c.bytes_to_client))}</li>
                                }).collect_view()}
                            </ul>
                        </div>
                    </div>
                    <h3>{format!("Events ({} of {})", events.items.len(), events.total)}</h3>
                    <table id="history-events">
                        <thead><tr><th>"Time"</th><th>"Index"</th><th>"Event"</th><th>"Details"</th></tr></thead>
                        <tbody>
                            {events.items.into_iter().map(|e| {
                                let details = serde_json::to_value(&e.event.kind)
                                    .ok()
                                    .and_then(|v| v.as_object().cloned())
                                    .map(|o| o.into_iter()
                                        .filter(|(k, _)| k != "kind")
                                        .map(|(k, v)| format!("{k}={v}"))
                                        .collect::<Vec<_>>()
                                        .join(" "))
                                    .unwrap_or_default();
                                view! {
                                    <tr><td>{when(e.event.at_ms)}</td><td>{e.index}</td>
                                        <td>{e.event.kind.name()}</td><td class="details">{details}</td></tr>
                                }
                            }).collect_view()}
                        </tbody>
                    </table>
                }.into_any(),
            })}
        </Suspense>
    }
}
