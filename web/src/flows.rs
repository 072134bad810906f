//! The flows explorer: recent flow records filtered by source, destination, either host, port,
//! protocol and time, paged by the server (which reads its disk tier when the time reaches past
//! the in-memory ring). The page's own query string sets the first filters, so an advisory's
//! evidence link opens the flows that show it.

use leptos::prelude::*;
use leptos_router::hooks::use_query_map;
use proto::api::FlowPage;

use crate::api::get;
use crate::fmt::{bytes, query, when};

/// Rows per page.
const PAGE: u64 = 100;
/// The filters, in the API's parameter names.
const FILTERS: [&str; 6] = ["src", "dst", "host", "port", "protocol", "from"];

fn protocol(p: u8) -> String {
    match p {
        1 => "icmp".into(),
        6 => "tcp".into(),
        17 => "udp".into(),
        58 => "icmpv6".into(),
        132 => "sctp".into(),
        p => p.to_string(),
    }
}

/// The flows page.
#[component]
pub fn Flows() -> impl IntoView {
    let params = use_query_map().get_untracked();
    let filters: [RwSignal<String>; 6] =
        FILTERS.map(|name| RwSignal::new(params.get(name).unwrap_or_default()));
    let offset = RwSignal::new(0u64);
    let page = LocalResource::new(move || {
        let mut pairs: Vec<(&str, String)> = FILTERS
            .iter()
            .zip(filters.iter())
            .map(|(name, value)| (*name, value.get()))
            .collect();
        pairs.push(("offset", offset.get().to_string()));
        pairs.push(("limit", PAGE.to_string()));
        let q = query("/api/v1/flows", &pairs);
        async move { get::<FlowPage>(&q).await }
    });
    let field = move |i: usize, label: &'static str, hint: &'static str| {
        let value = filters[i];
        view! {
            <label>{label}" "
                <input id=format!("flows-{}", FILTERS[i]) placeholder=hint size="14"
                    prop:value=move || value.get()
                    on:change=move |ev| { value.set(event_target_value(&ev)); offset.set(0); } />
            </label>
        }
    };
    view! {
        <h2>"Flows"</h2>
        <form class="filters map-filters" on:submit=|ev| ev.prevent_default()>
            {field(0, "Source", "10.0.0.0/8")}
            {field(1, "Destination", "10.1.0.10")}
            {field(2, "Either host", "10.1.0.10")}
            {field(3, "Port", "443")}
            {field(4, "Protocol", "tcp")}
            {field(5, "Since", "15m")}
        </form>
        <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || page.get().map(|result| match result {
                Err(e) => view! { <p class="error" role="alert">{e}</p> }.into_any(),
                Ok(p) => {
                    let (total, shown) = (p.total, p.items.len() as u64);
                    let from = if shown == 0 { 0 } else { p.offset + 1 };
                    let tier = format!("{:?}", p.tier).to_lowercase();
                    let cut = if p.truncated { " (the scan stopped at its budget: narrow the filters)" } else { "" };
                    view! {
                        <p id="flows-range">{format!("{from}–{} of {total}", p.offset + shown)}
                            <span class="muted">{format!(" · from {tier}{cut}")}</span></p>
                        <table id="flows">
                            <thead><tr><th>"Ended"</th><th>"Source"</th><th>"Destination"</th>
                                <th>"Protocol"</th><th>"Bytes"</th><th>"Packets"</th><th>"Exporter"</th></tr></thead>
                            <tbody>
                                {p.items.into_iter().map(|f| view! {
                                    <tr>
                                        <td>{when(f.last_ms)}</td>
                                        <td>{format!("{}:{}", f.src_addr, f.src_port)}</td>
                                        <td>{format!("{}:{}", f.dst_addr, f.dst_port)}</td>
                                        <td>{protocol(f.protocol)}</td>
                                        <td>{bytes(f.bytes)}</td>
                                        <td>{f.packets}</td>
                                        <td>{f.exporter.to_string()}</td>
                                    </tr>
                                }).collect_view()}
                            </tbody>
                        </table>
                        <div class="pager">
                            <button id="flows-prev" disabled=move || offset.get() == 0
                                on:click=move |_| offset.update(|o| *o = o.saturating_sub(PAGE))>"Previous"</button>
                            <button id="flows-next" disabled=move || offset.get() + PAGE >= total
                                on:click=move |_| offset.update(|o| *o += PAGE)>"Next"</button>
                        </div>
                    }.into_any()
                }
            })}
        </Suspense>
    }
}
