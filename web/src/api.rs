//! The node's REST API: a JSON GET and a JSON POST, errors as text for the page to show.

use gloo_net::http::{Request, Response};
use serde::de::DeserializeOwned;

/// Why the node refused a request: its `ApiError` (naming the parameter at fault), else the
/// answer's text, with the HTTP status.
async fn refusal(response: Response) -> String {
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    let why = match serde_json::from_str::<proto::api::ApiError>(&body) {
        Ok(proto::api::ApiError {
            error,
            parameter: Some(p),
        }) => format!("{p}: {error}"),
        Ok(e) => e.error,
        Err(_) => body,
    };
    format!("{why} (HTTP {status})")
}

/// The JSON of a 2xx answer, or what went wrong with `path`.
async fn decode<T: DeserializeOwned>(
    path: &str,
    sent: Result<Response, gloo_net::Error>,
) -> Result<T, String> {
    let response = sent.map_err(|e| format!("{path}: {e}"))?;
    if !response.ok() {
        return Err(refusal(response).await);
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

/// DELETEs `path`; any 2xx answer is success.
pub async fn delete(path: &str) -> Result<(), String> {
    let response = Request::delete(path)
        .send()
        .await
        .map_err(|e| format!("{path}: {e}"))?;
    if response.ok() {
        Ok(())
    } else {
        Err(refusal(response).await)
    }
}
