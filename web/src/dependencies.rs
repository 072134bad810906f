//! The dependencies page: every dependency (client → service) in a table paged and sorted by the
//! server, filtered by client and server network, port, protocol and status; and the asset
//! detail page (`/assets/:ip`): one asset, its services, what it calls and what calls it.

use std::net::IpAddr;

use leptos::prelude::*;
use leptos_router::hooks::use_params_map;
use proto::api::{Asset, Dependency, Page, Service};

use crate::api::get;
use crate::fmt::{bytes, query, when};

/// Rows per page.
const PAGE: u64 = 50;

fn status(s: proto::api::Status) -> String {
    format!("{s:?}").to_lowercase()
}

/// A table of dependencies, each end linking to its asset page.
fn table(id: &'static str, items: Vec<Dependency>) -> impl IntoView {
    view! {
        <table id=id>
            <thead><tr><th>"Client"</th><th>"Service"</th><th>"Name"</th><th>"Status"</th>
                <th>"To server"</th><th>"To client"</th><th>"Flows"</th><th>"Last seen"</th></tr></thead>
            <tbody>
                {items.into_iter().map(|d| {
                    let (c, s) = (d.key.client, d.key.service);
                    let proto_name = match s.protocol { 6 => "tcp".to_string(), 17 => "udp".to_string(), p => p.to_string() };
                    view! {
                        <tr>
                            <td><a href=format!("/assets/{c}")>{c.to_string()}</a></td>
                            <td><a href=format!("/assets/{}", s.ip)>{format!("{}:{}/{proto_name}", s.ip, s.port)}</a></td>
                            <td>{d.service_name.unwrap_or_default()}</td>
                            <td>{status(d.status)}</td>
                            <td>{bytes(d.bytes_to_server)}</td><td>{bytes(d.bytes_to_client)}</td>
                            <td>{d.flows}</td><td>{when(d.last_seen_ms)}</td>
                        </tr>
                    }
                }).collect_view()}
            </tbody>
        </table>
    }
}

/// The dependencies page.
#[component]
pub fn Dependencies() -> impl IntoView {
    let client = RwSignal::new(String::new());
    let server = RwSignal::new(String::new());
    let port = RwSignal::new(String::new());
    let protocol = RwSignal::new(String::new());
    let state = RwSignal::new("all".to_string());
    let sort = RwSignal::new("bytes");
    let offset = RwSignal::new(0u64);
    let page = LocalResource::new(move || {
        let q = query(
            "/api/v1/dependencies",
            &[
                ("client", client.get()),
                ("server", server.get()),
                ("port", port.get()),
                ("protocol", protocol.get()),
                ("status", state.get()),
                ("sort", sort.get().to_string()),
                ("offset", offset.get().to_string()),
                ("limit", PAGE.to_string()),
            ],
        );
        async move { get::<Page<Dependency>>(&q).await }
    });
    let input = move |value: RwSignal<String>| {
        move |ev: leptos::ev::Event| {
            value.set(event_target_value(&ev));
            offset.set(0);
        }
    };
    view! {
        <h2>"Dependencies"</h2>
        <form class="filters map-filters" on:submit=|ev| ev.prevent_default()>
            <label>"Client " <input id="deps-client" placeholder="10.2.0.0/16" on:change=input(client) /></label>
            <label>"Server " <input id="deps-server" placeholder="10.1.0.10" on:change=input(server) /></label>
            <label>"Port " <input id="deps-port" size="6" placeholder="5432" on:change=input(port) /></label>
            <label>"Protocol " <input id="deps-protocol" size="6" placeholder="tcp" on:change=input(protocol) /></label>
            <label>"Status "
                <select id="deps-status" on:change=input(state)>
                    <option value="all">"all"</option><option value="active">"active"</option>
                    <option value="expired">"gone"</option>
                </select>
            </label>
            <label>"Sort by "
                <select id="deps-sort" on:change=move |ev| {
                    sort.set(match event_target_value(&ev).as_str() {
                        "last_seen" => "last_seen", "first_seen" => "first_seen",
                        "client" => "client", "server" => "server", _ => "bytes",
                    });
                    offset.set(0);
                }>
                    <option value="bytes">"traffic"</option><option value="last_seen">"last seen"</option>
                    <option value="first_seen">"newest"</option><option value="client">"client"</option>
                    <option value="server">"server"</option>
                </select>
            </label>
        </form>
        <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || page.get().map(|result| match result {
                Err(e) => view! { <p class="error" role="alert">{e}</p> }.into_any(),
                Ok(p) => {
                    let (total, shown) = (p.total, p.items.len() as u64);
                    let from = if shown == 0 { 0 } else { p.offset + 1 };
                    view! {
                        <p id="deps-range">{format!("{from}–{} of {total}", p.offset + shown)}</p>
                        {table("deps", p.items)}
                        <div class="pager">
                            <button id="deps-prev" disabled=move || offset.get() == 0
                                on:click=move |_| offset.update(|o| *o = o.saturating_sub(PAGE))>"Previous"</button>
                            <button id="deps-next" disabled=move || offset.get() + PAGE >= total
                                on:click=move |_| offset.update(|o| *o += PAGE)>"Next"</button>
                        </div>
                    }.into_any()
                }
            })}
        </Suspense>
    }
}

/// Everything the asset page shows.
#[derive(Clone, Debug)]
struct AssetView {
    asset: Asset,
    services: Vec<Service>,
    dependencies: Vec<Dependency>,
}

async fn load(ip: String) -> Result<AssetView, String> {
    let ip: IpAddr = ip
        .parse()
        .map_err(|_| format!("`{ip}` is not an IP address"))?;
    Ok(AssetView {
        asset: get(&format!("/api/v1/assets/{ip}")).await?,
        services: get(&format!("/api/v1/assets/{ip}/services")).await?,
        dependencies: get(&format!("/api/v1/assets/{ip}/dependencies")).await?,
    })
}

/// The asset detail page.
#[component]
pub fn AssetPage() -> impl IntoView {
    let params = use_params_map();
    let data = LocalResource::new(move || load(params.get().get("ip").unwrap_or_default()));
    view! {
        <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || data.get().map(|result| match result {
                Err(e) => view! { <p class="error" role="alert">{e}</p> }.into_any(),
                Ok(v) => asset_view(v).into_any(),
            })}
        </Suspense>
    }
}

fn asset_view(v: AssetView) -> impl IntoView {
    let a = v.asset;
    let ip = a.ip;
    let env = crate::fmt::environment(&a);
    let place = a
        .classification
        .as_ref()
        .map(|c| {
            [c.datacenter.clone(), c.location.clone()]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default();
    let role = a.role.as_ref().map_or("none yet".to_string(), |r| {
        format!("{} ({}, {}%)", r.role.name(), r.source, r.confidence_pct)
    });
    let evidence = a.role.map(|r| r.evidence).unwrap_or_default();
    let (calls, called): (Vec<Dependency>, Vec<Dependency>) =
        v.dependencies.into_iter().partition(|d| d.key.client == ip);
    view! {
        <h2 id="asset-ip">{ip.to_string()}</h2>
        <dl class="facts">
            <dt>"Status"</dt><dd>{status(a.status)}</dd>
            <dt>"Environment"</dt><dd id="asset-env">{env}</dd>
            <dt>"Place"</dt><dd>{place}</dd>
            <dt>"Role"</dt><dd id="asset-role">{role}</dd>
            <dt>"Seen"</dt><dd>{format!("{} – {}", when(a.first_seen_ms), when(a.last_seen_ms))}</dd>
            <dt>"Traffic"</dt><dd>{format!("{} in, {} out", bytes(a.bytes_in), bytes(a.bytes_out))}</dd>
        </dl>
        <ul class="evidence">{evidence.into_iter().map(|e| view! { <li>{e}</li> }).collect_view()}</ul>
        <p><a href=format!("/flows?host={ip}")>"Its recent flows"</a></p>
        <h3>"Services"</h3>
        <table id="asset-services">
            <thead><tr><th>"Port"</th><th>"Name"</th><th>"Status"</th><th>"In"</th><th>"Out"</th><th>"Flows"</th></tr></thead>
            <tbody>
                {v.services.into_iter().map(|s| view! {
                    <tr><td>{format!("{}/{}", s.key.port, s.key.protocol)}</td><td>{s.name.unwrap_or_default()}</td>
                        <td>{status(s.status)}</td><td>{bytes(s.bytes_in)}</td><td>{bytes(s.bytes_out)}</td><td>{s.flows}</td></tr>
                }).collect_view()}
            </tbody>
        </table>
        <h3>{format!("Calls ({})", calls.len())}</h3>
        {table("asset-calls", calls)}
        <h3>{format!("Called by ({})", called.len())}</h3>
        {table("asset-called-by", called)}
    }
}
