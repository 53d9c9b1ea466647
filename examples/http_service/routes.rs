//! The handlers of events, commands, queries, projections, metrics and
//! health. Replay and snapshots are in `snapshots.rs`, the server-sent
//! events in `stream.rs`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use rwlog::{CommandStatus, EventRef, Expected, NewEvent, Position, Recorded, SnapshotRef, Uuid};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{json, Value};

use crate::domain::{empty_object, CommandKind, Stored, Streams, UserCommand};
use crate::http::{ok, ApiBody, ApiError, ApiJson, ApiQuery};
use crate::service::App;

/// One event of `POST /api/events`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AppendRequest {
    stream_id: String,
    event_type: String,
    event_data: Box<RawValue>,
    #[serde(default)]
    metadata: Option<Box<RawValue>>,
    /// The stream's version before this append (0: the stream must not
    /// exist yet).
    #[serde(default)]
    expected_version: Option<u64>,
    /// Makes the append idempotent: a retry with the same id is
    /// acknowledged with the first attempt's position.
    #[serde(default)]
    event_id: Option<Uuid>,
}

/// An event as responses show it, serialized straight from the log's
/// copy (no intermediate JSON tree: on the batch path, building one per
/// event was most of the handler's time).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EventOut<'a> {
    event_id: Uuid,
    stream_id: &'a str,
    version: u64,
    position: u64,
    event_type: &'a str,
    event_data: &'a RawValue,
    metadata: &'a RawValue,
    timestamp: String,
}

pub fn event_out(e: &Recorded<Stored>) -> EventOut<'_> {
    EventOut {
        event_id: e.id(),
        stream_id: e.stream().as_str(),
        version: e.version(),
        position: e.position().0,
        event_type: &e.payload().event_type,
        event_data: &e.payload().data,
        metadata: &e.payload().metadata,
        timestamp: e.recorded_at().to_string(),
    }
}

fn events_out(events: &[EventRef<Stored>]) -> Vec<EventOut<'_>> {
    events.iter().map(|e| event_out(e)).collect()
}

/// `POST /api/events`: one event (an object) or a batch (an array).
/// A batch's events for one stream are appended atomically, at contiguous
/// positions; the groups of different streams are appended independently.
pub async fn append(
    State(app): State<Arc<App>>,
    ApiBody(body): ApiBody,
) -> Result<Response, ApiError> {
    let starts_array = body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[');
    if !starts_array {
        let request: AppendRequest = parse(&body)?;
        let appended = append_group(&app, vec![request]).await?;
        let event = appended.first().ok_or_else(|| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "INTERNAL",
                "the event was not found after its append",
            )
        })?;
        return Ok(ok(StatusCode::CREATED, event_out(event)));
    }
    let requests: Vec<AppendRequest> = parse(&body)?;
    if requests.is_empty() {
        return Err(ApiError::bad_request("a batch needs at least one event"));
    }
    let mut groups: Vec<Vec<AppendRequest>> = Vec::new();
    for r in requests {
        match groups.iter_mut().find(|g| g[0].stream_id == r.stream_id) {
            Some(g) => g.push(r),
            None => groups.push(vec![r]),
        }
    }
    let appends = groups.into_iter().map(|g| append_group(&app, g));
    let mut events = Vec::new();
    for appended in futures::future::join_all(appends).await {
        events.extend(appended?);
    }
    Ok(ok(
        StatusCode::CREATED,
        json!({ "events": events_out(&events) }),
    ))
}

fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "INVALID_JSON", e.to_string()))
}

/// Appends one stream's events atomically and returns them as recorded.
async fn append_group(
    app: &App,
    group: Vec<AppendRequest>,
) -> Result<Vec<EventRef<Stored>>, ApiError> {
    let stream = group[0].stream_id.clone();
    check_stream_id(&stream)?;
    if group[1..].iter().any(|r| r.expected_version.is_some()) {
        return Err(ApiError::bad_request(
            "in a batch, `expectedVersion` goes on a stream's first event only",
        ));
    }
    let expected = match group[0].expected_version {
        None => Expected::Any,
        Some(0) => Expected::NoStream,
        Some(v) => Expected::Exact(v),
    };
    let events = group
        .into_iter()
        .map(new_event)
        .collect::<Result<Vec<_>, _>>()?;
    let ack = app
        .rt
        .writer()
        .append_expecting_async(stream, expected, events)
        .await?;
    let log = app.rt.log();
    Ok((ack.first_position().0..=ack.position.0)
        .filter_map(|p| log.get(Position(p)))
        .collect())
}

fn new_event(r: AppendRequest) -> Result<NewEvent<Stored>, ApiError> {
    if r.event_type.is_empty() {
        return Err(ApiError::bad_request("`eventType` must not be empty"));
    }
    if !r.event_data.get().starts_with('{') {
        return Err(ApiError::bad_request("`eventData` must be a JSON object"));
    }
    let metadata = match r.metadata {
        Some(m) if m.get().starts_with('{') => m,
        Some(_) => return Err(ApiError::bad_request("`metadata` must be a JSON object")),
        None => empty_object(),
    };
    let event = NewEvent::new(Stored::new(r.event_type, r.event_data, metadata));
    Ok(match r.event_id {
        Some(id) => event.with_id(id),
        None => event,
    })
}

/// Client streams: not empty, not reserved (`$…`), at most 256 bytes.
pub fn check_stream_id(stream: &str) -> Result<(), ApiError> {
    if stream.is_empty() || stream.len() > 256 {
        return Err(ApiError::bad_request("`streamId` must be 1 to 256 bytes"));
    }
    if stream.starts_with('$') {
        return Err(ApiError::bad_request(
            "stream ids starting with `$` are reserved for the service",
        ));
    }
    Ok(())
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Page {
    #[serde(default)]
    limit: Option<usize>,
}

const DEFAULT_LIMIT: usize = 1000;
const MAX_LIMIT: usize = 10_000;

fn limit(asked: Option<usize>) -> Result<usize, ApiError> {
    match asked.unwrap_or(DEFAULT_LIMIT) {
        0 => Err(ApiError::bad_request("`limit` must be at least 1")),
        n => Ok(n.min(MAX_LIMIT)),
    }
}

/// `GET /api/events/{streamId}`.
pub async fn read_stream(
    State(app): State<Arc<App>>,
    Path(stream): Path<String>,
    ApiQuery(page): ApiQuery<Page>,
) -> Result<Response, ApiError> {
    stream_page(&app, &stream, 1, page)
}

/// `GET /api/events/{streamId}/{fromVersion}`: the events at `fromVersion`
/// and after.
pub async fn read_stream_from(
    State(app): State<Arc<App>>,
    Path((stream, from)): Path<(String, String)>,
    ApiQuery(page): ApiQuery<Page>,
) -> Result<Response, ApiError> {
    let from: u64 = from
        .parse()
        .map_err(|_| ApiError::bad_request("`fromVersion` must be a non-negative integer"))?;
    stream_page(&app, &stream, from, page)
}

fn stream_page(app: &App, stream: &str, from: u64, page: Page) -> Result<Response, ApiError> {
    let log = app.rt.log();
    let current = log.stream_version(stream);
    if current == 0 {
        return Err(stream_not_found(stream));
    }
    let events: Vec<EventRef<Stored>> = log
        .read_stream(stream, from)
        .take(limit(page.limit)?)
        .collect();
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct StreamEvents<'a> {
        stream_id: &'a str,
        events: Vec<EventOut<'a>>,
        current_version: u64,
    }
    let data = StreamEvents {
        stream_id: stream,
        events: events_out(&events),
        current_version: current,
    };
    Ok(ok(StatusCode::OK, data))
}

pub fn stream_not_found(stream: &str) -> ApiError {
    ApiError::not_found("STREAM_NOT_FOUND", format!("no stream `{stream}`"))
}

/// The global log's query: `from`, `limit`, `type`, `since`, `until`
/// (RFC 3339), `direction` (`forward` or `backward`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogQuery {
    #[serde(default)]
    from: Option<u64>,
    #[serde(default)]
    limit: Option<usize>,
    #[serde(default, rename = "type")]
    event_type: Option<String>,
    #[serde(default)]
    since: Option<String>,
    #[serde(default)]
    until: Option<String>,
    #[serde(default)]
    direction: Option<String>,
}

/// `GET /api/events?…`: a page of the global log. `next` is the `from` of
/// the following page (absent at the end).
pub async fn read_all(
    State(app): State<Arc<App>>,
    ApiQuery(q): ApiQuery<LogQuery>,
) -> Result<Response, ApiError> {
    let limit = limit(q.limit)?;
    let since = q.since.as_deref().map(time).transpose()?;
    let until = q.until.as_deref().map(time).transpose()?;
    let backward = match q.direction.as_deref() {
        None | Some("forward") => false,
        Some("backward") => true,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "`direction` is `forward` or `backward`, not `{other}`"
            )))
        }
    };
    let log = app.rt.log();
    let head = log.head();
    let wanted = |e: &EventRef<Stored>| {
        q.event_type
            .as_ref()
            .is_none_or(|t| *t == e.payload().event_type)
            && since.is_none_or(|s| e.recorded_at().to_system_time() >= s)
            && until.is_none_or(|u| e.recorded_at().to_system_time() <= u)
    };
    let mut last = None;
    let events: Vec<EventRef<Stored>> = if backward {
        let from = Position(q.from.unwrap_or(head.0));
        let iter = log.read_backward(..=from);
        iter.inspect(|e| last = Some(e.position().0))
            .filter(wanted)
            .take(limit)
            .collect()
    } else {
        let from = Position(q.from.unwrap_or(1));
        log.read_all(from..)
            .inspect(|e| last = Some(e.position().0))
            .filter(wanted)
            .take(limit)
            .collect()
    };
    let next = match (last, backward) {
        (Some(p), false) if p < head.0 && events.len() == limit => Some(p + 1),
        (Some(p), true) if p > 1 && events.len() == limit => Some(p - 1),
        _ => None,
    };
    #[derive(Serialize)]
    struct LogPage<'a> {
        events: Vec<EventOut<'a>>,
        head: u64,
        next: Option<u64>,
    }
    let data = LogPage {
        events: events_out(&events),
        head: head.0,
        next,
    };
    Ok(ok(StatusCode::OK, data))
}

fn time(text: &str) -> Result<SystemTime, ApiError> {
    humantime::parse_rfc3339_weak(text)
        .map_err(|e| ApiError::bad_request(format!("`{text}` is not an RFC 3339 time: {e}")))
}

/// `POST /api/commands`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CommandRequest {
    command_type: String,
    command_data: Box<RawValue>,
    #[serde(default)]
    metadata: Option<Box<RawValue>>,
}

/// `POST /api/commands`: hands the command to its user's writer actor and
/// answers 202 with its id at once; the status endpoint follows it.
pub async fn command(
    State(app): State<Arc<App>>,
    ApiJson(c): ApiJson<CommandRequest>,
) -> Result<Response, ApiError> {
    let kind = CommandKind::parse(&c.command_type).ok_or_else(|| {
        ApiError::bad_request(format!(
            "unknown commandType `{}` (CreateUser, UpdateUser or DeleteUser)",
            c.command_type
        ))
    })?;
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Target {
        user_id: String,
    }
    let target: Target = serde_json::from_str(c.command_data.get()).map_err(|e| {
        ApiError::bad_request(format!(
            "`commandData` must be an object with a `userId`: {e}"
        ))
    })?;
    check_stream_id(&target.user_id)?;
    let metadata = c.metadata.unwrap_or_else(empty_object);
    let command = UserCommand {
        kind,
        data: c.command_data,
        metadata,
    };
    let submitted = app.actors.submit(target.user_id.clone(), command).await?;
    Ok(ok(
        StatusCode::ACCEPTED,
        json!({
            "commandId": submitted.id(),
            "commandType": kind.name(),
            "streamId": target.user_id,
            "status": "pending",
        }),
    ))
}

/// `GET /api/commands/{commandId}/status`.
pub async fn command_status(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let not_found = || ApiError::not_found("COMMAND_NOT_FOUND", format!("no command `{id}`"));
    let uuid = Uuid::parse_str(&id).map_err(|_| not_found())?;
    let status = app.actors.status(uuid).ok_or_else(not_found)?;
    let data = match status {
        CommandStatus::Pending => json!({ "commandId": uuid, "status": "pending" }),
        CommandStatus::Processing => json!({ "commandId": uuid, "status": "processing" }),
        CommandStatus::Completed(done) => json!({
            "commandId": uuid,
            "status": "completed",
            "position": done.position.map(|p| p.0),
            "version": done.version,
            "events": done.events,
        }),
        CommandStatus::Failed(why) => {
            json!({ "commandId": uuid, "status": "failed", "error": why })
        }
        _ => json!({ "commandId": uuid, "status": "unknown" }),
    };
    Ok(ok(StatusCode::OK, data))
}

/// `GET /api/queries/{queryId}?consistency=…`: a stream's entry in the
/// `streams` read model. `latest` answers at once from the last published
/// snapshot; `strong` waits until it holds every event acknowledged before
/// the request; `at_least:P` until it holds position `P`.
pub async fn query(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    if let Some(other) = q.keys().find(|k| *k != "consistency") {
        return Err(ApiError::bad_request(format!(
            "unknown query parameter `{other}`"
        )));
    }
    let consistency = q.get("consistency").map_or("latest", String::as_str);
    let snapshot = read_streams(&app, consistency).await?;
    let s = snapshot.0.get(&id).ok_or_else(|| {
        ApiError::not_found(
            "QUERY_NOT_FOUND",
            format!("no stream `{id}` in the read model"),
        )
    })?;
    Ok(ok(
        StatusCode::OK,
        json!({
            "queryId": id,
            "readModel": "streams",
            "consistency": consistency,
            "position": snapshot.position().0,
            "version": s.version,
            "lastPosition": s.position,
            "lastEventType": s.last_event_type,
            "updatedAt": s.updated_at.map(|t| t.to_string()),
            "state": s.state,
        }),
    ))
}

async fn read_streams(app: &App, consistency: &str) -> Result<SnapshotRef<Streams>, ApiError> {
    let reader = &app.streams;
    let timeout = app.config.read_timeout;
    match consistency {
        "latest" => Ok(reader.latest()),
        "strong" => waited(timeout, reader.strong_async()).await,
        other => {
            let p = other
                .strip_prefix("at_least:")
                .and_then(|p| p.parse().ok())
                .ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "`consistency` is `latest`, `strong` or `at_least:<position>`, not `{other}`"
                    ))
                })?;
            waited(timeout, reader.at_least_async(Position(p))).await
        }
    }
}

/// A waiting read, bounded: 504 if the view does not catch up in time.
async fn waited<T>(
    timeout: std::time::Duration,
    read: impl std::future::Future<Output = rwlog::Result<T>>,
) -> Result<T, ApiError> {
    match tokio::time::timeout(timeout, read).await {
        Ok(read) => Ok(read?),
        Err(_) => Err(ApiError::new(
            StatusCode::GATEWAY_TIMEOUT,
            "TIMEOUT",
            "the read model did not catch up in time",
        )),
    }
}

/// `GET /api/projections`: the inline `streams` view and the async
/// projections, each with its position, lag and failure.
pub async fn projections(State(app): State<Arc<App>>) -> Response {
    ok(
        StatusCode::OK,
        json!({ "projections": all_projections(&app) }),
    )
}

fn all_projections(app: &App) -> Vec<Value> {
    let stats = app.rt.stats();
    let head = stats.head.0;
    let views = stats.views.iter().map(|v| {
        json!({
            "id": v.name,
            "kind": "view",
            "position": v.position.0,
            "lag": head.saturating_sub(v.position.0),
            "status": if v.failure.is_some() { "error" } else { "active" },
            "failure": v.failure,
        })
    });
    let projections = stats.projections.iter().map(|p| {
        json!({
            "id": p.name,
            "kind": "projection",
            "position": p.handled.0,
            "checkpoint": p.checkpoint.0,
            "lag": p.lag,
            "status": match (&p.failure, p.running) {
                (Some(_), _) => "error",
                (None, true) => "active",
                (None, false) => "stopped",
            },
            "failure": p.failure,
        })
    });
    views.chain(projections).collect()
}

/// `GET /api/projections/{projectionId}`.
pub async fn projection(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    all_projections(&app)
        .into_iter()
        .find(|p| p["id"] == id.as_str())
        .map(|p| ok(StatusCode::OK, p))
        .ok_or_else(|| ApiError::not_found("PROJECTION_NOT_FOUND", format!("no projection `{id}`")))
}

/// `GET /metrics`: rwlog's metrics and the request counts, as Prometheus
/// text.
pub async fn metrics(State(app): State<Arc<App>>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        app.prometheus.render(),
    )
        .into_response()
}

/// `GET /health`: 200 while the log takes appends and every view and
/// projection runs; 503 otherwise, saying what failed.
pub async fn health(State(app): State<Arc<App>>) -> Response {
    let stats = app.rt.stats();
    let failed_views: Vec<&str> = stats
        .views
        .iter()
        .filter(|v| v.failure.is_some())
        .map(|v| v.name.as_str())
        .collect();
    let failed_projections: Vec<&str> = stats
        .projections
        .iter()
        .filter(|p| p.failure.is_some())
        .map(|p| p.name.as_str())
        .collect();
    let healthy =
        stats.storage_failure.is_none() && failed_views.is_empty() && failed_projections.is_empty();
    let body = json!({
        "status": if healthy { "healthy" } else { "unhealthy" },
        "timestamp": rwlog::Timestamp::now().to_string(),
        "head": stats.head.0,
        "totalEvents": stats.head.0,
        "totalStreams": app.rt.log().stream_count(),
        "storageFailure": stats.storage_failure,
        "failedViews": failed_views,
        "failedProjections": failed_projections,
    });
    let status = if healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    ok(status, body)
}
