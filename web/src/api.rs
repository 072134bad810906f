//! The node's REST API: a JSON GET and a JSON POST, errors as text for the page to show.

use gloo_net::http::{Request, Response};
use serde::de::DeserializeOwned;

/// The JSON of a 2xx answer, or what went wrong with `path`.
async fn decode<T: DeserializeOwned>(
    path: &str,
    sent: Result<Response, gloo_net::Error>,
) -> Result<T, String> {
    let response = sent.map_err(|e| format!("{path}: {e}"))?;
    if !response.ok() {
        let body = response.text().await.unwrap_or_default();
        return Err(format!("{path}: HTTP {}: {body}", response.status()));
    }
    response
        .json::<T>()
        .await
        .map_err(|e| format!("{path}: {e}"))
}

/// GETs `path` (`/api/v1/...`) and decodes its JSON.
pub async fn get<T: DeserializeOwned>(path: &str) -> Result<T, String> {
    decode(path, Request::get(path).send().await).await
}

/// POSTs `body` as JSON to `path` and decodes the JSON answer.
pub async fn post<T: DeserializeOwned>(path: &str, body: &serde_json::Value) -> Result<T, String> {
    let request = Request::post(path)
        .json(body)
        .map_err(|e| format!("{path}: {e}"))?;
    decode(path, request.send().await).await
}
