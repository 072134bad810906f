//! The topology map page: the dependency map drawn on a canvas with a force layout computed in
//! Rust, zoom, pan and drag, filters (network, environment, port, role, time window, status),
//! grouping, search, a node's details with its dependencies or blast radius lit on the map, a
//! history slider that replays the map at an earlier time, live refresh from the event stream,
//! and SVG/PNG export.

mod details;
mod scene;

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::IpAddr;
use std::rc::Rc;

use leptos::html;
use leptos::prelude::*;
use proto::api::Topology;
use proto::role::Role;
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{CanvasRenderingContext2d, HtmlCanvasElement};

use crate::api::get;
use crate::fmt::query;
use crate::live::Live;
use scene::{Grouping, Scene, PALETTE};

/// Most assets and dependencies the map asks for (the UI's level of detail is tuned for these).
const MAX_NODES: u32 = 2_000;
const MAX_EDGES: u32 = 5_000;
/// Time the layout may take per animation frame, in ms.
const STEP_BUDGET_MS: f64 = 8.0;

/// A pointer press on the canvas: on a node (dragging it) or on the background (panning).
#[derive(Clone, Copy, Debug)]
struct Drag {
    node: Option<usize>,
    start: (f32, f32),
    last: (f32, f32),
    moved: bool,
}

/// The map's mutable state, shared by the animation loop and the event handlers.
#[derive(Default)]
struct Stage {
    scene: Option<Scene>,
    dirty: bool,
    running: bool,
    size: (i32, i32),
    drag: Option<Drag>,
    dark: bool,
    /// The layout attribute lags the drawing by up to this throttle.
    layout_stale: bool,
    layout_written_ms: f64,
    timing: Timing,
}

/// Frame costs since the last report, published on the canvas every half second
/// (`data-frame-ms`: layout and drawing per busy frame; `data-draw-ms`: drawing alone;
/// `data-steps`: layout steps so far), for the map benchmark and for anyone curious.
#[derive(Default)]
struct Timing {
    work_ms: f64,
    work_frames: u32,
    draw_ms: f64,
    draws: u32,
    steps: u64,
    reported_ms: f64,
}

impl Timing {
    fn report(&mut self, canvas: &HtmlCanvasElement, now: f64) {
        if now - self.reported_ms < 500.0 {
            return;
        }
        self.reported_ms = now;
        if self.work_frames > 0 {
            let mean = self.work_ms / f64::from(self.work_frames);
            let _ = canvas.set_attribute("data-frame-ms", &format!("{mean:.2}"));
        }
        if self.draws > 0 {
            let mean = self.draw_ms / f64::from(self.draws);
            let _ = canvas.set_attribute("data-draw-ms", &format!("{mean:.2}"));
        }
        let _ = canvas.set_attribute("data-steps", &self.steps.to_string());
        (self.work_ms, self.work_frames, self.draw_ms, self.draws) = (0.0, 0, 0.0, 0);
    }
}

type Shared = Rc<RefCell<Stage>>;

/// The part of the federation answer the map needs: each asset's site.
#[derive(Clone, Debug, serde::Deserialize)]
struct Homes {
    homes: HashMap<String, String>,
}

/// What the map shows, for the header and the legend.
#[derive(Clone, Debug, Default, PartialEq)]
struct Summary {
    nodes: usize,
    edges: usize,
    total_nodes: u64,
    total_edges: u64,
    truncated: bool,
    groups: Vec<String>,
}

fn now() -> f64 {
    js_sys::Date::now()
}

fn perf_now() -> f64 {
    web_sys::window()
        .and_then(|w| w.performance())
        .map_or_else(now, |p| p.now())
}

fn context(canvas: &HtmlCanvasElement) -> Option<CanvasRenderingContext2d> {
    canvas.get_context("2d").ok()??.dyn_into().ok()
}

fn prefers_dark() -> bool {
    web_sys::window()
        .and_then(|w| w.match_media("(prefers-color-scheme: dark)").ok().flatten())
        .is_some_and(|m| m.matches())
}

/// One animation frame: fit the canvas to its box, step the layout within budget, draw when
/// something changed, then ask for the next frame while the canvas is on the page.
fn frame(stage: Shared, canvas: HtmlCanvasElement) {
    if !canvas.is_connected() {
        stage.borrow_mut().running = false;
        return;
    }
    {
        let frame_start = perf_now();
        let mut guard = stage.borrow_mut();
        let st = &mut *guard;
        let dpr = web_sys::window().map_or(1.0, |w| w.device_pixel_ratio());
        let size = (canvas.client_width(), canvas.client_height());
        if size != st.size {
            st.size = size;
            canvas.set_width((f64::from(size.0) * dpr) as u32);
            canvas.set_height((f64::from(size.1) * dpr) as u32);
            st.dirty = true;
        }
        let dirty = std::mem::take(&mut st.dirty);
        let dark = st.dark;
        let mut drawn = None;
        if let Some(scene) = st.scene.as_mut() {
            scene.resize(size.0 as f32, size.1 as f32);
            let moving = !scene.layout.settled();
            if moving {
                while !scene.layout.settled() && perf_now() - frame_start < STEP_BUDGET_MS {
                    scene.layout.step();
                    st.timing.steps += 1;
                }
                if scene.auto_fit {
                    scene.fit();
                }
            }
            if moving || dirty {
                let draw_start = perf_now();
                if let Some(ctx) = context(&canvas) {
                    scene.draw(&ctx, dpr, dark);
                }
                let end = perf_now();
                st.timing.draw_ms += end - draw_start;
                st.timing.draws += 1;
                st.timing.work_ms += end - frame_start;
                st.timing.work_frames += 1;
                drawn = Some(scene.layout.settled());
            }
        }
        st.timing.report(&canvas, now());
        if let Some(settled) = drawn {
            let _ = canvas.set_attribute("data-settled", if settled { "true" } else { "false" });
            st.layout_stale = true;
        }
        let settled = st.scene.as_ref().is_some_and(|s| s.layout.settled());
        if st.layout_stale && settled && now() - st.layout_written_ms > 300.0 {
            if let Some(scene) = st.scene.as_ref() {
                let _ = canvas.set_attribute("data-layout", &scene.screen_json());
            }
            st.layout_stale = false;
            st.layout_written_ms = now();
        }
    }
    request_animation_frame(move || frame(stage, canvas));
}

/// Offers `href` as a download named `name`.
fn download(name: &str, href: &str) {
    let Some(doc) = web_sys::window().and_then(|w| w.document()) else {
        return;
    };
    if let Some(a) = doc
        .create_element("a")
        .ok()
        .and_then(|e| e.dyn_into::<web_sys::HtmlAnchorElement>().ok())
    {
        a.set_href(href);
        a.set_download(name);
        a.click();
    }
}

fn export_svg(stage: &Shared) {
    let Some(svg) = stage.borrow().scene.as_ref().map(Scene::svg) else {
        return;
    };
    let parts = js_sys::Array::of1(&JsValue::from_str(&svg));
    let bag = web_sys::BlobPropertyBag::new();
    bag.set_type("image/svg+xml");
    if let Ok(blob) = web_sys::Blob::new_with_str_sequence_and_options(&parts, &bag) {
        if let Ok(url) = web_sys::Url::create_object_url_with_blob(&blob) {
            download("flowlens-map.svg", &url);
            let _ = web_sys::Url::revoke_object_url(&url);
        }
    }
}

/// A select box bound to `value`.
fn choice(
    id: &'static str,
    label: &'static str,
    value: RwSignal<String>,
    options: &'static [(&'static str, &'static str)],
) -> impl IntoView {
    view! {
        <label>{label}" "
            <select id=id on:change=move |ev| value.set(event_target_value(&ev))>
                {options.iter().map(|(v, text)| view! {
                    <option value=*v selected=move || value.get() == *v>{*text}</option>
                }).collect_view()}
            </select>
        </label>
    }
}

/// The map page.
#[component]
pub fn Map() -> impl IntoView {
    let live = use_context::<Live>();
    let subnet = RwSignal::new(String::new());
    let env = RwSignal::new(String::new());
    let port = RwSignal::new(String::new());
    let role = RwSignal::new(String::new());
    let window = RwSignal::new(String::new());
    let status = RwSignal::new("active".to_string());
    let group = RwSignal::new("none".to_string());
    let at = RwSignal::new(String::new());
    let search = RwSignal::new(String::new());
    let selected = RwSignal::new(None::<IpAddr>);
    let summary = RwSignal::new(Summary::default());
    let error = RwSignal::new(None::<String>);
    let hover = RwSignal::new(None::<String>);
    let revision = RwSignal::new(0u64);
    let listed = RwSignal::new(Vec::<IpAddr>::new());
    let refresh = RwSignal::new(0u64);
    let span = RwSignal::new((0u64, 0u64));
    let stage: Shared = Rc::new(RefCell::new(Stage {
        dark: prefers_dark(),
        ..Stage::default()
    }));
    let canvas = NodeRef::<html::Canvas>::new();

    // Each asset's site, asked only when grouping by site.
    let sites = LocalResource::new(move || {
        let wanted = group.get() == "site";
        refresh.get();
        async move {
            if wanted {
                get::<Homes>("/api/v1/federation").await.map(|h| {
                    h.homes
                        .into_iter()
                        .filter_map(|(ip, site)| Some((ip.parse().ok()?, site)))
                        .collect()
                })
            } else {
                Ok(HashMap::new())
            }
        }
    });
    let data = LocalResource::new(move || {
        refresh.get();
        let q = query(
            &format!("/api/v1/topology?max_nodes={MAX_NODES}&max_edges={MAX_EDGES}"),
            &[
                ("subnet", subnet.get()),
                ("env", env.get()),
                ("port", port.get()),
                ("since", window.get()),
                ("status", status.get()),
                ("at", at.get()),
            ],
        );
        async move { get::<Topology>(&q).await }
    });

    // Live refresh: map events mark the map stale; it reloads at most every three seconds and
    // only while it shows the present.
    if let Some(live) = live {
        let seen = RwSignal::new(live.map.get_untracked());
        let handle = set_interval_with_handle(
            move || {
                let now = live.map.get_untracked();
                if now != seen.get_untracked() && at.get_untracked().is_empty() {
                    seen.set(now);
                    refresh.update(|r| *r += 1);
                }
            },
            std::time::Duration::from_secs(3),
        );
        on_cleanup(move || {
            if let Ok(h) = handle {
                h.clear();
            }
        });
    }

    {
        let stage = stage.clone();
        Effect::new(move |_| {
            let grouping = Grouping::parse(&group.get());
            let role = Role::parse(&role.get());
            let Some(result) = data.get() else { return };
            let homes = match sites.get() {
                None => return,
                Some(Ok(homes)) => homes,
                Some(Err(e)) => {
                    error.set(Some(format!("Grouping by site: {e}")));
                    HashMap::new()
                }
            };
            match result {
                Err(e) => error.set(Some(e)),
                Ok(topology) => {
                    if grouping != Grouping::Site {
                        error.set(None);
                    }
                    let mut st = stage.borrow_mut();
                    let scene =
                        Scene::new(&topology, grouping, &homes, role, st.scene.as_ref(), now());
                    summary.set(Summary {
                        nodes: scene.nodes.len(),
                        edges: scene.edges.len(),
                        total_nodes: topology.total_nodes,
                        total_edges: topology.total_edges,
                        truncated: topology.truncated,
                        groups: scene.groups.clone(),
                    });
                    if at.get_untracked().is_empty() {
                        let first = topology.nodes.iter().map(|n| n.asset.first_seen_ms).min();
                        let now = now() as u64;
                        span.set((first.unwrap_or(now).min(now), now));
                    }
                    listed.set(scene.nodes.iter().take(100).map(|n| n.ip).collect());
                    st.scene = Some(scene);
                    st.dirty = true;
                    drop(st);
                    revision.update(|r| *r += 1);
                }
            }
        });
    }
    {
        let stage = stage.clone();
        Effect::new(move |_| {
            if let Some(el) = canvas.get() {
                let mut st = stage.borrow_mut();
                if !st.running {
                    st.running = true;
                    let stage = stage.clone();
                    request_animation_frame(move || frame(stage, el));
                }
            }
        });
    }

    let pointer_down = {
        let stage = stage.clone();
        move |ev: leptos::ev::PointerEvent| {
            let (x, y) = (ev.offset_x() as f32, ev.offset_y() as f32);
            let mut st = stage.borrow_mut();
            let node = st.scene.as_ref().and_then(|s| s.hit(x, y));
            st.drag = Some(Drag {
                node,
                start: (x, y),
                last: (x, y),
                moved: false,
            });
            if let Some(el) = canvas.get_untracked() {
                let _ = el.set_pointer_capture(ev.pointer_id());
            }
        }
    };
    let pointer_move = {
        let stage = stage.clone();
        move |ev: leptos::ev::PointerEvent| {
            let (x, y) = (ev.offset_x() as f32, ev.offset_y() as f32);
            let mut guard = stage.borrow_mut();
            let st = &mut *guard;
            let Some(scene) = st.scene.as_mut() else {
                return;
            };
            let Some(drag) = st.drag.as_mut() else {
                let over = scene.hit(x, y).map(|i| scene.nodes[i].label.clone());
                if hover.get_untracked() != over {
                    hover.set(over);
                }
                return;
            };
            if (x - drag.start.0).abs() + (y - drag.start.1).abs() > 4.0 {
                drag.moved = true;
            }
            if drag.moved {
                match drag.node {
                    Some(i) => {
                        scene.layout.pin(i, Some(scene.to_map(x, y)));
                        scene.layout.reheat(0.2);
                        scene.auto_fit = false;
                    }
                    None => scene.pan(x - drag.last.0, y - drag.last.1),
                }
                st.dirty = true;
            }
            drag.last = (x, y);
        }
    };
    let pointer_up = {
        let stage = stage.clone();
        move |ev: leptos::ev::PointerEvent| {
            let (x, y) = (ev.offset_x() as f32, ev.offset_y() as f32);
            let mut st = stage.borrow_mut();
            let Some(drag) = st.drag.take() else { return };
            let Some(scene) = st.scene.as_mut() else {
                return;
            };
            if let (Some(i), true) = (drag.node, drag.moved) {
                scene.layout.pin(i, None);
            }
            if !drag.moved {
                let ip = scene.hit(x, y).map(|i| scene.nodes[i].ip);
                drop(st);
                selected.set(ip);
            }
        }
    };
    let wheel = {
        let stage = stage.clone();
        move |ev: leptos::ev::WheelEvent| {
            ev.prevent_default();
            let mut st = stage.borrow_mut();
            if let Some(scene) = st.scene.as_mut() {
                let factor = (-ev.delta_y() as f32 * 0.0015).exp();
                scene.zoom_at(ev.offset_x() as f32, ev.offset_y() as f32, factor);
                st.dirty = true;
            }
        }
    };
    let key = {
        let stage = stage.clone();
        move |ev: leptos::ev::KeyboardEvent| {
            let mut st = stage.borrow_mut();
            let (w, h) = (st.size.0 as f32, st.size.1 as f32);
            let Some(scene) = st.scene.as_mut() else {
                return;
            };
            match ev.key().as_str() {
                "ArrowLeft" => scene.pan(40.0, 0.0),
                "ArrowRight" => scene.pan(-40.0, 0.0),
                "ArrowUp" => scene.pan(0.0, 40.0),
                "ArrowDown" => scene.pan(0.0, -40.0),
                "+" | "=" => scene.zoom_at(w / 2.0, h / 2.0, 1.25),
                "-" => scene.zoom_at(w / 2.0, h / 2.0, 0.8),
                "0" => {
                    scene.auto_fit = true;
                    scene.fit();
                }
                "Escape" => {
                    drop(st);
                    selected.set(None);
                    return;
                }
                _ => return,
            }
            ev.prevent_default();
            st.dirty = true;
        }
    };
    let fit = {
        let stage = stage.clone();
        move |_| {
            let mut st = stage.borrow_mut();
            if let Some(scene) = st.scene.as_mut() {
                scene.auto_fit = true;
                scene.fit();
                st.dirty = true;
            }
        }
    };
    let find = {
        let stage = stage.clone();
        move || {
            let text = search.get_untracked().trim().to_string();
            if text.is_empty() {
                return;
            }
            let mut st = stage.borrow_mut();
            let Some(scene) = st.scene.as_mut() else {
                return;
            };
            let hit = scene
                .nodes
                .iter()
                .position(|n| n.label == text)
                .or_else(|| scene.nodes.iter().position(|n| n.label.starts_with(&text)));
            match hit {
                Some(i) => {
                    scene.centre_on(i);
                    let ip = scene.nodes[i].ip;
                    st.dirty = true;
                    drop(st);
                    error.set(None);
                    selected.set(Some(ip));
                }
                None => {
                    drop(st);
                    error.set(Some(format!("No asset on the map matches `{text}`.")));
                }
            }
        }
    };
    let export_png = move |_| {
        if let Some(url) = canvas.get_untracked().and_then(|c| c.to_data_url().ok()) {
            download("flowlens-map.png", &url);
        }
    };
    let export = {
        let stage = stage.clone();
        move |_| export_svg(&stage)
    };

    let details = details::details(stage.clone(), selected, revision);
    view! {
        <h2>"Map"</h2>
        <form class="filters map-filters" on:submit=|ev| ev.prevent_default()>
            <label>"Network " <input id="map-subnet" placeholder="10.0.0.0/8"
                on:change=move |ev| subnet.set(event_target_value(&ev)) /></label>
            {choice("map-env", "Environment", env, &[("", "any"), ("prod", "prod"), ("uat", "uat"),
                ("qa", "qa"), ("test", "test"), ("dev", "dev"), ("internal", "internal"),
                ("external", "external")])}
            <label>"Port " <input id="map-port" size="6" placeholder="443"
                on:change=move |ev| port.set(event_target_value(&ev)) /></label>
            {choice("map-role", "Service type", role, &[("", "any"), ("database", "database"),
                ("cache_queue", "cache / queue"), ("dns", "DNS"), ("ntp", "NTP"),
                ("load_balancer", "load balancer"), ("gateway", "gateway"), ("server", "server"),
                ("workstation", "workstation")])}
            {choice("map-window", "Seen in", window, &[("", "any time"), ("15m", "last 15 min"),
                ("1h", "last hour"), ("24h", "last day"), ("7d", "last week")])}
            {choice("map-status", "Status", status, &[("active", "active"), ("all", "active and gone"),
                ("expired", "gone")])}
            {choice("map-group", "Group by", group, &[("none", "nothing"), ("subnet", "subnet"),
                ("env", "environment"), ("role", "role"), ("datacenter", "data centre"),
                ("site", "site (federation)")])}
        </form>
        <form class="filters" on:submit=move |ev| { ev.prevent_default(); find(); }>
            <label>"Find " <input id="map-search" placeholder="10.0.0.5"
                on:input=move |ev| search.set(event_target_value(&ev)) /></label>
            <button type="submit">"Find"</button>
            <button type="button" id="map-fit" on:click=fit>"Fit"</button>
            <button type="button" id="map-svg" on:click=export>"Export SVG"</button>
            <button type="button" id="map-png" on:click=export_png>"Export PNG"</button>
        </form>
        {history(at, span)}
        {move || error.get().map(|e| view! { <p class="error" role="alert">{e}</p> })}
        <p id="map-summary" aria-live="polite">{move || {
            let s = summary.get();
            let cut = if s.truncated {
                format!(" (the {} busiest of {} assets and {} dependencies)", s.nodes, s.total_nodes, s.total_edges)
            } else { String::new() };
            format!("{} assets, {} dependencies{cut}", s.nodes, s.edges)
        }}</p>
        <div class="map-layout">
            <div class="map-box">
                <canvas id="map-canvas" node_ref=canvas tabindex="0" role="img"
                    aria-label="Dependency map. Arrow keys pan, + and - zoom, 0 fits, Escape clears the selection; the list below the map selects assets."
                    data-nodes=move || summary.get().nodes data-edges=move || summary.get().edges
                    on:pointerdown=pointer_down on:pointermove=pointer_move on:pointerup=pointer_up
                    on:pointerleave=move |_| hover.set(None)
                    on:wheel=wheel on:keydown=key></canvas>
                <div class="map-hover">{move || hover.get()}</div>
                <ul class="legend" aria-label="legend">
                    <li><span class="swatch active"></span>"active"</li>
                    <li><span class="swatch idle"></span>"idle 5 min+"</li>
                    <li><span class="swatch gone"></span>"gone"</li>
                    {move || summary.get().groups.into_iter().enumerate()
                        .filter(|(_, g)| !g.is_empty())
                        .map(|(i, g)| view! {
                            <li><span class="dot" style=format!("background:{}", PALETTE[i % PALETTE.len()])></span>{g}</li>
                        }).collect_view()}
                </ul>
            </div>
            {details}
        </div>
        {node_list(listed, selected)}
    }
}

/// The history controls: a slider from the oldest asset to now, and the exact time.
fn history(at: RwSignal<String>, span: RwSignal<(u64, u64)>) -> impl IntoView {
    let value = move || {
        let (lo, hi) = span.get();
        at.get()
            .parse::<u64>()
            .unwrap_or(hi)
            .clamp(lo, hi)
            .to_string()
    };
    let label = move || {
        let a = at.get();
        if a.is_empty() {
            "live".to_string()
        } else {
            a.parse::<u64>().map_or(a, crate::fmt::when)
        }
    };
    view! {
        <form class="filters history" on:submit=|ev| ev.prevent_default()>
            <label>"Replay "
                <input type="range" id="map-history" min=move || span.get().0.to_string()
                    max=move || span.get().1.to_string() step="1000" prop:value=value
                    aria-valuetext=label
                    on:change=move |ev| {
                        let v = event_target_value(&ev);
                        let live = v.parse::<u64>().is_ok_and(|v| v + 1000 >= span.get_untracked().1);
                        at.set(if live { String::new() } else { v });
                    } />
            </label>
            <output id="map-at-label">{label}</output>
            <label>"At " <input id="map-at" placeholder="2026-12-06 12:00:00 or 15m"
                prop:value=move || at.get()
                on:change=move |ev| at.set(event_target_value(&ev).trim().to_string()) /></label>
            <button type="button" id="map-live" on:click=move |_| at.set(String::new())>"Live"</button>
        </form>
    }
}

/// The busiest assets on the map as buttons: the keyboard's way to select a node.
fn node_list(listed: RwSignal<Vec<IpAddr>>, selected: RwSignal<Option<IpAddr>>) -> impl IntoView {
    let items = move || listed.get();
    view! {
        <details class="node-list">
            <summary>"Assets on the map (busiest 100)"</summary>
            <ul id="map-nodes">
                {move || items().into_iter().map(|ip| view! {
                    <li><button type="button" aria-pressed=move || (selected.get() == Some(ip)).to_string()
                        on:click=move |_| selected.set(Some(ip))>{ip.to_string()}</button></li>
                }).collect_view()}
            </ul>
        </details>
    }
}
