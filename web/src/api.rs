//! Reading the node's REST API: one JSON GET, errors as text for the page to show.

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
