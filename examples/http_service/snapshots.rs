//! Replay and snapshots. A snapshot is an event in the log, in the stream
//! `$snapshot:<streamId>`: the stream's folded state at a version, so it is
//! as durable as the events it summarizes. Replay starts from the newest
//! snapshot at or below the version asked for and folds the events after
//! it. The `snapshotter` projection takes one every `snapshot_every`
//! events of a stream; `POST /api/snapshots` takes one on demand.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use rwlog::{Log, NewEvent, Projection, Runtime};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{json, Value};

use crate::domain::{empty_object, fold, snapshot_id, State as Folded, Stored, SNAPSHOT_PREFIX};
use crate::http::{ok, ApiBody, ApiError, ApiJson};
use crate::routes::{check_stream_id, stream_not_found};
use crate::service::App;

/// A snapshot event's data.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SnapshotData {
    stream_id: String,
    version: u64,
    position: u64,
    state: Folded,
}

/// A stream's state rebuilt from the log.
#[derive(Debug)]
pub struct Rebuilt {
    pub state: Folded,
    /// The stream's version it reflects.
    pub version: u64,
    /// The position of the last event it folds.
    pub position: u64,
    /// The version of the snapshot it started from, if any.
    pub from_snapshot: Option<u64>,
    /// How many events were folded (after the snapshot).
    pub replayed: u64,
}

fn snapshot_stream(stream: &str) -> String {
    format!("{SNAPSHOT_PREFIX}{stream}")
}

/// The newest snapshot of `stream` at or below `version`.
fn newest_snapshot(log: &Log<Stored>, stream: &str, version: u64) -> Option<SnapshotData> {
    log.read_stream(&snapshot_stream(stream), 1)
        .filter_map(|e| serde_json::from_str::<SnapshotData>(e.payload().data.get()).ok())
        .filter(|s| s.version <= version)
        .max_by_key(|s| s.version)
}

/// Folds `stream` from version `from` to `to`; from the newest snapshot
/// when `from` is 1. `None` if the stream has no events.
pub fn rebuild(log: &Log<Stored>, stream: &str, from: u64, to: Option<u64>) -> Option<Rebuilt> {
    let current = log.stream_version(stream);
    if current == 0 {
        return None;
    }
    let to = to.unwrap_or(current).min(current);
    let snapshot = (from <= 1)
        .then(|| newest_snapshot(log, stream, to))
        .flatten();
    let mut rebuilt = Rebuilt {
        version: snapshot.as_ref().map_or(0, |s| s.version),
        position: snapshot.as_ref().map_or(0, |s| s.position),
        from_snapshot: snapshot.as_ref().map(|s| s.version),
        state: snapshot.map(|s| s.state).unwrap_or_default(),
        replayed: 0,
    };
    let start = rebuilt.from_snapshot.map_or(from.max(1), |v| v + 1);
    for e in log
        .read_stream(stream, start)
        .take_while(|e| e.version() <= to)
    {
        fold(&mut rebuilt.state, &e.payload().data);
        rebuilt.version = e.version();
        rebuilt.position = e.position().0;
        rebuilt.replayed += 1;
    }
    Some(rebuilt)
}

/// Takes the snapshot of `stream` at `version` (written once however often
/// it is taken) and returns it as recorded.
fn take_snapshot(rt: &Runtime<Stored>, stream: &str, version: u64) -> rwlog::Result<Option<Value>> {
    let Some(rebuilt) = rebuild(rt.log(), stream, 1, Some(version)) else {
        return Ok(None);
    };
    let data = SnapshotData {
        stream_id: stream.to_owned(),
        version: rebuilt.version,
        position: rebuilt.position,
        state: rebuilt.state,
    };
    let text = serde_json::to_string(&data).map_err(|e| rwlog::Error::Codec(e.to_string()))?;
    let raw = RawValue::from_string(text).map_err(|e| rwlog::Error::Codec(e.to_string()))?;
    let event = NewEvent::new(Stored::new("SnapshotTaken", raw, empty_object()))
        .with_id(snapshot_id(stream, rebuilt.version));
    let ack = rt.writer().append(snapshot_stream(stream), event)?;
    Ok(rt.log().get(ack.position).map(|e| snapshot_json(&e, true)))
}

fn snapshot_json(e: &rwlog::Recorded<Stored>, with_state: bool) -> Value {
    let data: Value = serde_json::from_str(e.payload().data.get()).unwrap_or(Value::Null);
    let mut s = json!({
        "snapshotId": e.id(),
        "streamId": data["streamId"],
        "version": data["version"],
        "position": data["position"],
        "createdAt": e.recorded_at().to_string(),
    });
    if with_state {
        s["state"] = data["state"].clone();
    }
    s
}

/// Starts the `snapshotter` projection: a snapshot of a stream every
/// `every` events of it. It resumes from its checkpoint after a restart;
/// an event it sees again makes the same snapshot, which the log's
/// idempotent appends write once.
pub fn start_snapshotter(rt: &Runtime<Stored>, every: u64) -> rwlog::Result<Projection> {
    let runtime = rt.clone();
    rt.projection("snapshotter", move |e| {
        let stream = e.stream().as_str();
        if stream.starts_with('$') || e.version() % every != 0 {
            return Ok(());
        }
        match take_snapshot(&runtime, stream, e.version()) {
            Ok(_) | Err(rwlog::Error::Closed) => Ok(()),
            Err(other) => Err(other.into()),
        }
    })
}

/// `POST /api/snapshots` body.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TakeRequest {
    stream_id: String,
    /// The version to snapshot (default: the current one).
    #[serde(default)]
    version: Option<u64>,
}

/// `POST /api/snapshots`: snapshots a stream now (or at a past version).
pub async fn take(
    State(app): State<Arc<App>>,
    ApiJson(r): ApiJson<TakeRequest>,
) -> Result<Response, ApiError> {
    check_stream_id(&r.stream_id)?;
    let current = app.rt.log().stream_version(&r.stream_id);
    if current == 0 {
        return Err(stream_not_found(&r.stream_id));
    }
    let version = r.version.unwrap_or(current);
    if version == 0 || version > current {
        return Err(ApiError::bad_request(format!(
            "`version` must be 1 to {current}, the stream's current version"
        ))
        .with("currentVersion", current));
    }
    // Folding and appending block: off the executor's threads.
    let rt = app.rt.clone();
    let stream = r.stream_id.clone();
    let taken = tokio::task::spawn_blocking(move || take_snapshot(&rt, &stream, version))
        .await
        .map_err(|e| {
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL", e.to_string())
        })??;
    let snapshot = taken.ok_or_else(|| stream_not_found(&r.stream_id))?;
    Ok(ok(StatusCode::CREATED, snapshot))
}

/// `GET /api/snapshots/{streamId}`: the stream's snapshots, oldest first,
/// and the newest with its state.
pub async fn list(
    State(app): State<Arc<App>>,
    Path(stream): Path<String>,
) -> Result<Response, ApiError> {
    let log = app.rt.log();
    if log.stream_version(&stream) == 0 {
        return Err(stream_not_found(&stream));
    }
    let events: Vec<_> = log.read_stream(&snapshot_stream(&stream), 1).collect();
    let snapshots: Vec<Value> = events.iter().map(|e| snapshot_json(e, false)).collect();
    let newest = events.last().map(|e| snapshot_json(e, true));
    Ok(ok(
        StatusCode::OK,
        json!({ "streamId": stream, "snapshots": snapshots, "latest": newest }),
    ))
}

/// `POST /api/events/{streamId}/replay` body (optional).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReplayRequest {
    #[serde(default)]
    from_version: Option<u64>,
    #[serde(default)]
    to_version: Option<u64>,
}

/// `POST /api/events/{streamId}/replay`: the stream's state rebuilt from
/// the log (from its newest snapshot when replaying from the start), with
/// the version and position it reflects.
pub async fn replay(
    State(app): State<Arc<App>>,
    Path(stream): Path<String>,
    ApiBody(body): ApiBody,
) -> Result<Response, ApiError> {
    let r: ReplayRequest = if body.iter().all(u8::is_ascii_whitespace) {
        ReplayRequest::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "INVALID_JSON", e.to_string()))?
    };
    let from = r.from_version.unwrap_or(1);
    let rebuilt = rebuild(app.rt.log(), &stream, from, r.to_version)
        .ok_or_else(|| stream_not_found(&stream))?;
    Ok(ok(
        StatusCode::OK,
        json!({
            "streamId": stream,
            "state": rebuilt.state,
            "fromVersion": from,
            "toVersion": rebuilt.version,
            "position": rebuilt.position,
            "head": app.rt.log().head().0,
            "fromSnapshot": rebuilt.from_snapshot,
            "eventsReplayed": rebuilt.replayed,
        }),
    ))
}
