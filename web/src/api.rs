//! The node's REST API: a JSON GET and a JSON POST, errors as text for the page to show.

use serde::de::DeserializeOwned;

/// GETs `path` (`/api/v1/...`) and decodes its JSON; the error says what failed.
pub async fn get<T: DeserializeOwned>(path: &str) -> Result<T, String> {
    let response = gloo_net::http::Request::get(path)
        .send()
        .await
        .map_err(|e| format!("{path}: {e}"))?;
    if !response.ok() {
        let body = response.text().await.unwrap_or_default();
        return Err(format!("{path}: HTTP {}: {body}", response.status()));
    }
    response
        .json::<T>()
        .await
        .map_err(|e| format!("{path}: {e}"))
}

/// POSTs `body` as JSON to `path` and decodes the JSON answer.
pub async fn post<T: DeserializeOwned>(path: &str, body: &serde_json::Value) -> Result<T, String> {
    let response = gloo_net::http::Request::post(path)
        .json(body)
        .map_err(|e| format!("{path}: {e}"))?
        .send()
        .await
        .map_err(|e| format!("{path}: {e}"))?;
    if !response.ok() {
        let body = response.text().await.unwrap_or_default();
        return Err(format!("{path}: HTTP {}: {body}", response.status()));
    }
    response
        .json::<T>()
        .await
        .map_err(|e| format!("{path}: {e}"))
}
