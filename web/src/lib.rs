//! The FlowLens web UI: a Leptos client-side app, built to wasm32 by `cargo xtask web` and
//! served by the node. It reads the node's REST API (`/api/v1`) with the same types the node
//! answers with (`proto`).

mod about;
mod access;
mod advisories;
mod alerts;
mod api;
mod assets;
mod dashboard;
mod dependencies;
mod flows;
mod fmt;
mod history;
mod live;
mod map;
mod rules;
mod session;

use leptos::prelude::*;
use leptos_router::components::{Route, Router, Routes, A};
use leptos_router::path;
use wasm_bindgen::prelude::wasm_bindgen;

/// Mounts the app on the page's body (called by wasm-bindgen when the module loads).
#[wasm_bindgen(start)]
pub fn start() {
    leptos::mount::mount_to_body(App);
}

/// The app: the sign-in form until signed in (and the new-password form after a one-time
/// password), then the pages.
#[component]
fn App() -> impl IntoView {
    let session: session::Session = RwSignal::new(None);
    session::refresh(session);
    api::on_signed_out(move || session.set(Some(None)));
    view! {
        {move || match session.get() {
            None => view! { <p class="loading">"Loading…"</p> }.into_any(),
            Some(None) => view! { <session::SignIn session=session /> }.into_any(),
            Some(Some(p)) if session::must_change(&p) => {
                view! { <session::ChangePassword session=session /> }.into_any()
            }
            Some(Some(p)) => view! { <Shell session=session principal=p /> }.into_any(),
        }}
    }
}

/// A header with the pages and who is signed in, then the page of the current path.
#[component]
fn Shell(session: session::Session, principal: proto::auth::Principal) -> impl IntoView {
    live::provide();
    on_cleanup(live::close);
    let connected = use_context::<live::Live>().map(|l| l.connected);
    let for_access = principal.clone();
    view! {
        <Router>
            <header class="top">
                <h1>"FlowLens"</h1>
                <nav aria-label="main">
                    <A href="/">"Dashboard"</A>
                    <A href="/map">"Map"</A>
                    <A href="/assets">"Assets"</A>
                    <A href="/dependencies">"Dependencies"</A>
                    <A href="/flows">"Flows"</A>
                    <A href="/advisories">"Advisories"</A>
                    <A href="/alerts">"Alerts"</A>
                    <A href="/history">"History"</A>
                    <A href="/rules">"Rules"</A>
                    <A href="/access">"Access"</A>
                    <A href="/about">"Cluster"</A>
                </nav>
                <span class="live" id="live-state" aria-live="polite">
                    {move || if connected.is_some_and(|c| c.get()) { "● live" } else { "○ offline" }}
                </span>
                {session::badge(session, &principal)}
            </header>
            <main>
                <Routes fallback=|| view! { <p role="alert">"No such page."</p> }>
                    <Route path=path!("/") view=dashboard::Dashboard />
                    <Route path=path!("/map") view=map::Map />
                    <Route path=path!("/assets") view=assets::Assets />
                    <Route path=path!("/assets/:ip") view=dependencies::AssetPage />
                    <Route path=path!("/dependencies") view=dependencies::Dependencies />
                    <Route path=path!("/flows") view=flows::Flows />
                    <Route path=path!("/history") view=history::History />
                    <Route path=path!("/rules") view=rules::Rules />
                    <Route path=path!("/about") view=about::AboutPage />
                    <Route path=path!("/access") view=move || view! { <access::Access principal=for_access.clone() /> } />
                    <Route path=path!("/advisories") view=advisories::Advisories />
                    <Route path=path!("/alerts") view=alerts::Alerts />
                </Routes>
            </main>
        </Router>
    }
}
