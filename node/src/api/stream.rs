//! Live push: every event this node applies, as Server-Sent Events at `/api/v1/events/stream`
//! (`event:` the kind's dotted name, `data:` the event as JSON), optionally filtered by kind. A
//! client too slow to keep up is told how many events it missed (`event: lagged`).

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures_util::stream::{self, Stream};
use tokio::sync::broadcast::error::RecvError;

use super::params::{bad, kind_matches, Failure, Params};
use super::AppState;

type Pairs = Query<Vec<(String, String)>>;

/// Streams applied events as they happen.
#[utoipa::path(get, path = "/api/v1/events/stream", tag = "history",
    params(("kind" = Option<String>, Query, description = "Event kind (alert.raised) or prefix (alert.*)")),
    responses((status = 200, description = "text/event-stream of events"), (status = 400, body = proto::api::ApiError)))]
pub async fn stream(
    State(s): State<AppState>,
    Query(q): Pairs,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, Failure> {
    let mut p = Params::new(q)?;
    let kind: Option<String> = p.parse("kind", "an event kind")?;
    p.finish()?;
    if let Some(k) = &kind {
        if !proto::event::EVENT_KINDS.iter().any(|n| kind_matches(k, n)) {
            return Err(bad("kind", format!("`{k}` matches no event kind")));
        }
    }
    let receiver = s.log.subscribe_applied();
    let events = stream::unfold(
        (receiver, Vec::<SseEvent>::new()),
        move |(mut receiver, mut ready)| {
            let kind = kind.clone();
            async move {
                loop {
                    if let Some(next) = ready.pop() {
                        return Some((Ok(next), (receiver, ready)));
                    }
                    match receiver.recv().await {
                        Ok(applied) => {
                            for e in applied.batch.events.iter().rev() {
                                let name = e.kind.name();
                                if kind.as_deref().is_some_and(|k| !kind_matches(k, name)) {
                                    continue;
                                }
                                let data = serde_json::to_string(e).unwrap_or_default();
                                ready.push(SseEvent::default().event(name).data(data));
                            }
                        }
                        Err(RecvError::Lagged(n)) => {
                            ready.push(SseEvent::default().event("lagged").data(n.to_string()));
                        }
                        Err(RecvError::Closed) => return None,
                    }
                }
            }
        },
    );
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}
