//! `GET /api/subscribe`: the log as server-sent events, history then live,
//! each event's `id` its position. A client that reconnects with
//! `Last-Event-ID: P` (as `EventSource` does by itself) resumes at `P + 1`:
//! every event exactly once across reconnects.

use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures::{Stream, StreamExt};
use rwlog::Position;
use serde::Deserialize;

use crate::http::{ApiError, ApiQuery};
use crate::routes::event_out;
use crate::service::App;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubscribeQuery {
    /// The first position to send (default: the next event appended).
    #[serde(default)]
    from: Option<u64>,
}

/// Where a subscription starts: after `Last-Event-ID` if the client sent
/// one, else at `from`, else after the head.
fn start(headers: &HeaderMap, from: Option<u64>, head: Position) -> Result<Position, ApiError> {
    if let Some(last) = headers.get("last-event-id") {
        let last: u64 = last
            .to_str()
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .ok_or_else(|| ApiError::bad_request("`Last-Event-ID` must be a position"))?;
        return Ok(Position(last.saturating_add(1)));
    }
    Ok(Position(from.unwrap_or(head.0 + 1).max(1)))
}

pub async fn subscribe(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<SubscribeQuery>,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    let from = start(&headers, q.from, app.rt.head())?;
    let draining = {
        let app = Arc::clone(&app);
        async move { app.drained().await }
    };
    let events = app.rt.subscribe_stream(from).take_until(draining).map(|e| {
        let data = serde_json::to_string(&event_out(&e)).unwrap_or_default();
        Ok(SseEvent::default()
            .id(e.position().0.to_string())
            .data(data))
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
}
