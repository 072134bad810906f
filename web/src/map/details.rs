//! The selected asset's details beside the map: what it is, what it calls and what calls it
//! (up to three hops), and what breaks or degrades if it fails; the chosen view is lit on the
//! map.

use std::net::IpAddr;

use leptos::prelude::*;
use proto::api::Asset;
use proto::impact::{BlastRadius, Reachability};

use super::scene::Mark;
use super::Shared;
use crate::api::get;
use crate::fmt::when;

/// Everything the panel shows about one asset.
#[derive(Clone, Debug)]
struct Details {
    asset: Asset,
    upstream: Reachability,
    downstream: Reachability,
    blast: BlastRadius,
}

async fn load(ip: IpAddr) -> Result<Details, String> {
    let asset: Asset = get(&format!("/api/v1/assets/{ip}")).await?;
    let upstream: Reachability =
        get(&format!("/api/v1/analysis/upstream/{ip}?hops=3&limit=500")).await?;
    let downstream: Reachability = get(&format!(
        "/api/v1/analysis/downstream/{ip}?hops=3&limit=500"
    ))
    .await?;
    let blast: BlastRadius = get(&format!("/api/v1/analysis/blast-radius/{ip}?limit=500")).await?;
    Ok(Details {
        asset,
        upstream,
        downstream,
        blast,
    })
}

/// The panel for `selected`; lights its dependencies or its blast radius in `stage`'s scene
/// (again whenever `revision` says the scene was rebuilt).
pub(super) fn details(
    stage: Shared,
    selected: RwSignal<Option<IpAddr>>,
    revision: RwSignal<u64>,
) -> impl IntoView {
    let mode = RwSignal::new("deps");
    let info = LocalResource::new(move || {
        let ip = selected.get();
        async move {
            match ip {
                Some(ip) => Some(load(ip).await),
                None => None,
            }
        }
    });
    Effect::new(move |_| {
        revision.get();
        let mode = mode.get();
        let ip = selected.get();
        let loaded = info.get();
        let mut st = stage.borrow_mut();
        let Some(scene) = st.scene.as_mut() else {
            return;
        };
        scene.select(ip.and_then(|ip| scene.index_of(&ip)));
        if let Some(Some(Ok(d))) = loaded {
            if Some(d.asset.ip) == ip {
                if mode == "blast" {
                    scene.mark(d.blast.degraded.iter().map(|a| a.ip), Mark::Degraded);
                    scene.mark(d.blast.broken.iter().map(|a| a.ip), Mark::Broken);
                } else {
                    scene.mark(d.upstream.items.iter().map(|a| a.ip), Mark::Upstream);
                    scene.mark(d.downstream.items.iter().map(|a| a.ip), Mark::Downstream);
                }
            }
        }
        st.dirty = true;
    });
    view! {
        <aside class="map-details" id="map-details" aria-live="polite">
            {move || match info.get() {
                None | Some(None) => view! {
                    <p class="muted">"Click an asset (or pick one from the list below the map) for its details."</p>
                }.into_any(),
                Some(Some(Err(e))) => view! { <p class="error" role="alert">{e}</p> }.into_any(),
                Some(Some(Ok(d))) => panel(d, mode, selected).into_any(),
            }}
        </aside>
    }
}

fn panel(
    d: Details,
    mode: RwSignal<&'static str>,
    selected: RwSignal<Option<IpAddr>>,
) -> impl IntoView {
    let a = &d.asset;
    let env = crate::fmt::environment(a);
    let role = a.role.as_ref().map_or("no role yet".to_string(), |r| {
        format!("{} ({}, {}%)", r.role.name(), r.source, r.confidence_pct)
    });
    let hop1 = |r: &Reachability| -> Vec<IpAddr> {
        r.items
            .iter()
            .filter(|i| i.hops == 1)
            .map(|i| i.ip)
            .take(12)
            .collect()
    };
    let (calls, called_by) = (hop1(&d.downstream), hop1(&d.upstream));
    let tiers: Vec<String> = d
        .blast
        .broken_by_tier
        .iter()
        .map(|(tier, n)| format!("{n} {tier}"))
        .collect();
    let peers = move |ips: Vec<IpAddr>| {
        ips.into_iter()
            .map(|ip| view! {
                <li><button type="button" class="link" on:click=move |_| selected.set(Some(ip))>{ip.to_string()}</button></li>
            })
            .collect_view()
    };
    view! {
        <h3 id="details-ip">{a.ip.to_string()}</h3>
        <p><a href=format!("/assets/{}", a.ip)>"Asset page"</a>" · "<a href=format!("/flows?host={}", a.ip)>"flows"</a></p>
        <dl>
            <dt>"Role"</dt><dd id="details-role">{role}</dd>
            <dt>"Environment"</dt><dd>{env}</dd>
            <dt>"Status"</dt><dd>{format!("{:?}", a.status).to_lowercase()}</dd>
            <dt>"Seen"</dt><dd>{format!("{} – {}", when(a.first_seen_ms), when(a.last_seen_ms))}</dd>
            <dt>"Traffic"</dt><dd>{format!("{} B in, {} B out", a.bytes_in, a.bytes_out)}</dd>
        </dl>
        <fieldset class="modes">
            <legend>"Light up"</legend>
            <label><input type="radio" name="map-mode" id="mode-deps" checked=move || mode.get() == "deps"
                on:change=move |_| mode.set("deps") />" dependencies"</label>
            <label><input type="radio" name="map-mode" id="mode-blast" checked=move || mode.get() == "blast"
                on:change=move |_| mode.set("blast") />" blast radius"</label>
        </fieldset>
        <p><span class="key downstream"></span>"Calls "<strong id="downstream-total">{d.downstream.total}</strong>
            " assets within 3 hops"</p>
        <ul class="peers">{peers(calls)}</ul>
        <p><span class="key upstream"></span>"Called by "<strong id="upstream-total">{d.upstream.total}</strong>
            " assets within 3 hops"</p>
        <ul class="peers">{peers(called_by)}</ul>
        <p><span class="key broken"></span>"If it fails, "<strong id="broken-total">{d.blast.broken_total}</strong>
            " assets break and "<strong id="degraded-total">{d.blast.degraded_total}</strong>" lose redundancy"
            {if tiers.is_empty() { String::new() } else { format!(" ({})", tiers.join(", ")) }}"."</p>
    }
}
