//! The node's REST API: JSON GET, POST, PUT and DELETE, errors as text for the page to show.

use std::cell::RefCell;

use gloo_net::http::{Request, RequestBuilder, Response};
use serde::de::DeserializeOwned;

thread_local! {
    /// The session's CSRF value, sent as `X-CSRF-Token` with every change.
    static CSRF: RefCell<Option<String>> = const { RefCell::new(None) };
    /// What to do when the node says the session is over (401).
    static SIGNED_OUT: RefCell<Option<Box<dyn Fn()>>> = const { RefCell::new(None) };
}

/// Remembers the session's CSRF value (from signing in or `/api/v1/auth/state`).
pub fn set_csrf(value: Option<String>) {
    CSRF.with(|c| *c.borrow_mut() = value);
}

/// Calls `f` whenever a request comes back 401 (the session expired or was revoked).
pub fn on_signed_out(f: impl Fn() + 'static) {
    SIGNED_OUT.with(|s| *s.borrow_mut() = Some(Box::new(f)));
}

fn with_csrf(builder: RequestBuilder) -> RequestBuilder {
    match CSRF.with(|c| c.borrow().clone()) {
        Some(token) => builder.header("X-CSRF-Token", &token),
        None => builder,
    }
}

/// Why the node refused a request: its `ApiError` (naming the parameter at fault), else the
/// answer's text, with the HTTP status.
async fn refusal(response: Response) -> String {
    let status = response.status();
    if status == 401 {
        SIGNED_OUT.with(|s| {
            if let Some(f) = s.borrow().as_ref() {
                f();
            }
        });
    }
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
    send_json(Request::post(path), path, body).await
}

/// PUTs `body` as JSON to `path` and decodes the JSON answer.
pub async fn put<T: DeserializeOwned>(path: &str, body: &serde_json::Value) -> Result<T, String> {
    send_json(Request::put(path), path, body).await
}

async fn send_json<T: DeserializeOwned>(
    builder: RequestBuilder,
    path: &str,
    body: &serde_json::Value,
) -> Result<T, String> {
    let request = with_csrf(builder)
        .json(body)
        .map_err(|e| format!("{path}: {e}"))?;
    decode(path, request.send().await).await
}

/// DELETEs `path`; any 2xx answer is success.
pub async fn delete(path: &str) -> Result<(), String> {
    let response = with_csrf(Request::delete(path))
        .send()
        .await
        .map_err(|e| format!("{path}: {e}"))?;
    if response.ok() {
        Ok(())
    } else {
        Err(refusal(response).await)
    }
}

/// POSTs `body` as JSON to `path` when the answer has no body (204); any 2xx is success.
pub async fn post_unit(path: &str, body: &serde_json::Value) -> Result<(), String> {
    let request = with_csrf(Request::post(path))
        .json(body)
        .map_err(|e| format!("{path}: {e}"))?;
    let response = request.send().await.map_err(|e| format!("{path}: {e}"))?;
    if response.ok() {
        Ok(())
    } else {
        Err(refusal(response).await)
    }
}
