//! The FlowLens web UI: a Leptos client-side app, built to wasm32 by `cargo xtask web` and
//! served by the node. It reads the node's REST API (`/api/v1`) with the same types the node
//! answers with (`proto`).

mod api;
mod dashboard;

use leptos::prelude::*;
use wasm_bindgen::prelude::wasm_bindgen;

/// Mounts the app on the page's body (called by wasm-bindgen when the module loads).
#[wasm_bindgen(start)]
pub fn start() {
    leptos::mount::mount_to_body(App);
}

/// The app: a header naming the node, then the dashboard.
#[component]
fn App() -> impl IntoView {
    view! {
        <header class="top">
            <h1>"FlowLens"</h1>
            <nav aria-label="main">
                <a href="/" aria-current="page">"Dashboard"</a>
            </nav>
        </header>
        <main>
            <dashboard::Dashboard />
        </main>
    }
}
