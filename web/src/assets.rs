//! The assets page: every asset of the map in a table paged by the server, filtered by network,
//! environment and role, sorted by traffic, address or last seen; each row shows the asset's
//! classification and role.

use leptos::prelude::*;
use proto::api::{Asset, Page};

use crate::api::get;
use crate::fmt::when;

/// Rows per page.
const PAGE: u64 = 50;

fn query(subnet: &str, env: &str, role: &str, sort: &str, offset: u64) -> String {
    let mut q = format!("/api/v1/assets?limit={PAGE}&offset={offset}&sort={sort}");
    for (key, value) in [("subnet", subnet), ("env", env), ("role", role)] {
        let value = value.trim();
        if !value.is_empty() {
            q.push_str(&format!("&{key}={}", value.replace('/', "%2F")));
        }
    }
    q
}

/// The assets page.
#[component]
pub fn Assets() -> impl IntoView {
    let (subnet, set_subnet) = signal(String::new());
    let (env, set_env) = signal(String::new());
    let (role, set_role) = signal(String::new());
    let (sort, set_sort) = signal("bytes");
    let (offset, set_offset) = signal(0u64);
    let page = LocalResource::new(move || {
        let q = query(
            &subnet.get(),
            &env.get(),
            &role.get(),
            sort.get(),
            offset.get(),
        );
        async move { get::<Page<Asset>>(&q).await }
    });
    let input = move |set: WriteSignal<String>| {
        move |ev: leptos::ev::Event| {
            set.set(event_target_value(&ev));
            set_offset.set(0);
        }
    };
    view! {
        <h2>"Assets"</h2>
        <form class="filters" on:submit=|ev| ev.prevent_default()>
            <label>"Network " <input id="filter-subnet" placeholder="10.0.0.0/8" on:change=input(set_subnet) /></label>
            <label>"Environment "
                <select id="filter-env" on:change=input(set_env)>
                    <option value="">"any"</option>
                    {["prod", "uat", "qa", "test", "dev", "internal", "external"].into_iter()
                        .map(|e| view! { <option value=e>{e}</option> }).collect_view()}
                </select>
            </label>
            <label>"Role " <input id="filter-role" placeholder="database" on:change=input(set_role) /></label>
        </form>
        <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || page.get().map(|result| match result {
                Err(e) => view! { <p class="error" role="alert">{e}</p> }.into_any(),
                Ok(p) => {
                    let (total, shown) = (p.total, p.items.len() as u64);
                    let from = if shown == 0 { 0 } else { p.offset + 1 };
                    view! {
                        <p id="assets-range">{format!("{from}–{} of {total}", p.offset + shown)}</p>
                        <table id="assets">
                            <thead><tr>
                                <th><button class="sort" id="sort-ip" on:click=move |_| set_sort.set("ip")>"Address"</button></th>
                                <th>"Environment"</th><th>"Role"</th><th>"Status"</th>
                                <th><button class="sort" id="sort-bytes" on:click=move |_| set_sort.set("bytes")>"Bytes"</button></th>
                                <th><button class="sort" id="sort-last-seen" on:click=move |_| set_sort.set("last_seen")>"Last seen"</button></th>
                            </tr></thead>
                            <tbody>
                                {p.items.into_iter().map(|a| {
                                    let env = crate::fmt::environment(&a);
                                    let role = a.role.as_ref().map_or("", |r| r.role.name());
                                    view! {
                                        <tr>
                                            <td><a href=format!("/assets/{}", a.ip)>{a.ip.to_string()}</a></td><td>{env}</td><td>{role}</td>
                                            <td>{format!("{:?}", a.status).to_lowercase()}</td>
                                            <td>{a.bytes_in + a.bytes_out}</td>
                                            <td>{when(a.last_seen_ms)}</td>
                                        </tr>
                                    }
                                }).collect_view()}
                            </tbody>
                        </table>
                        <div class="pager">
                            <button id="prev" disabled=move || { offset.get() == 0 }
                                on:click=move |_| set_offset.update(|o| *o = o.saturating_sub(PAGE))>"Previous"</button>
                            <button id="next" disabled=move || { offset.get() + PAGE >= total }
                                on:click=move |_| set_offset.update(|o| *o += PAGE)>"Next"</button>
                        </div>
                    }.into_any()
                }
            })}
        </Suspense>
    }
}
