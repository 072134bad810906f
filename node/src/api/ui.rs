//! Serving the web UI embedded at build time (see `node/build.rs`): its files at their paths,
//! and `index.html` for every other path that is not the API, so the app's own routes load.
//! A node built without a bundle says how to make one.

use axum::http::{header, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/ui.rs"));
}

/// Whether this binary carries the UI.
pub fn embedded() -> bool {
    !embedded::FILES.is_empty()
}

fn file(path: &str) -> Option<Response> {
    embedded::FILES
        .iter()
        .find(|(p, _, _)| *p == path)
        .map(|(_, kind, bytes)| {
            (
                [
                    (header::CONTENT_TYPE, *kind),
                    (header::CACHE_CONTROL, "no-cache"),
                ],
                *bytes,
            )
                .into_response()
        })
}

/// Any path outside `/api/v1` and `/metrics`.
pub async fn serve(uri: Uri) -> Response {
    if !embedded() {
        return (
            StatusCode::OK,
            "FlowLens node. The API is at /api/v1 (OpenAPI: /api/v1/openapi.json). This binary \
             was built without the web UI: run `cargo xtask web`, then build the node again \
             (`cargo xtask run` does both).\n",
        )
            .into_response();
    }
    let path = uri.path();
    file(path)
        .or_else(|| {
            // Files have an extension; anything else is a route of the app.
            (!path.rsplit('/').next().unwrap_or_default().contains('.'))
                .then(|| file("/index.html"))
                .flatten()
        })
        .unwrap_or_else(|| (StatusCode::NOT_FOUND, "no such file\n").into_response())
}
