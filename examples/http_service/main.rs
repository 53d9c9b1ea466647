//! An event service over HTTP: rwlog behind axum, with a durable log in a
//! directory, speaking the REST format of the common event-sourcing
//! service (`{"success": true, "data": …}`, errors as
//! `{"success": false, "error": {"code", "message"}}`).
//!
//! ```text
//! cargo run --release --example http_service --features metrics -- DIR \
//!     [--listen 127.0.0.1:3000] [--token-file PATH] [--auth-reads] \
//!     [--cors ORIGIN]... [--max-body BYTES] [--snapshot-every N]
//! ```
//!
//! It listens on loopback unless told otherwise. A bearer token (from
//! `RWLOG_HTTP_TOKEN` or `--token-file`) guards every mutating request,
//! and with `--auth-reads` the reads too (`/health` stays open): 401
//! without it, 403 with a wrong one. CORS is off unless `--cors` names
//! origins (`*` for any). Bodies above `--max-body` (1 MiB) get 413.
//! SIGTERM or Ctrl-C drains: new requests get 503, event streams end, the
//! requests in flight finish, and the runtime shuts down, every
//! acknowledged event on disk (each batch is fsynced before it is
//! acknowledged). `openapi.json` beside this file describes every endpoint.
//!
//! Each endpoint, with `T` the token if one is set:
//!
//! ```text
//! # Append one event (201); with "expectedVersion": N a stale append gets 409 and the actual version;
//! # with "eventId": UUID a retry is acknowledged with the first attempt's position, not written twice.
//! curl -X POST localhost:3000/api/events -H 'Authorization: Bearer T' -H 'Content-Type: application/json' \
//!   -d '{"streamId":"user_123","eventType":"UserCreated","eventData":{"name":"Ann"},"metadata":{"correlationId":"cmd_456"}}'
//! # Append a batch: an array of the same objects (each stream's events atomically).
//! curl -X POST localhost:3000/api/events -H 'Authorization: Bearer T' -H 'Content-Type: application/json' \
//!   -d '[{"streamId":"s","eventType":"A","eventData":{}},{"streamId":"s","eventType":"B","eventData":{}}]'
//! # A stream's events, and from a version on.
//! curl localhost:3000/api/events/user_123
//! curl localhost:3000/api/events/user_123/2
//! # The global log: from a position, a page size, a type, a time window, forward or backward.
//! curl 'localhost:3000/api/events?from=1&limit=100&type=UserCreated&since=2024-01-01T00:00:00Z&direction=backward'
//! # A stream's state rebuilt from its events (from its newest snapshot), with the position it reflects.
//! curl -X POST localhost:3000/api/events/user_123/replay -H 'Authorization: Bearer T'
//! # A command through the writer actors (202 and its id), then its status.
//! curl -X POST localhost:3000/api/commands -H 'Authorization: Bearer T' -H 'Content-Type: application/json' \
//!   -d '{"commandType":"CreateUser","commandData":{"userId":"user_9","email":"a@example.com","name":"Ann"}}'
//! curl localhost:3000/api/commands/COMMAND_ID/status
//! # The read model, at a consistency: latest, strong, or at_least:POSITION.
//! curl 'localhost:3000/api/queries/user_123?consistency=strong'
//! # The view and the projections: position, lag, failure.
//! curl localhost:3000/api/projections
//! curl localhost:3000/api/projections/snapshotter
//! # Snapshots: take one now, list a stream's.
//! curl -X POST localhost:3000/api/snapshots -H 'Authorization: Bearer T' -H 'Content-Type: application/json' \
//!   -d '{"streamId":"user_123"}'
//! curl localhost:3000/api/snapshots/user_123
//! # Server-sent events from a position on; reconnecting with Last-Event-ID resumes after it.
//! curl -N 'localhost:3000/api/subscribe?from=1'
//! curl -N localhost:3000/api/subscribe -H 'Last-Event-ID: 42'
//! # Prometheus metrics, and health.
//! curl localhost:3000/metrics
//! curl localhost:3000/health
//! ```

mod domain;
mod http;
mod routes;
mod service;
mod snapshots;
mod stream;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use service::{App, Config};

const USAGE: &str = "usage: http_service DIR [--listen ADDR] [--token-file PATH] [--auth-reads] \
                     [--cors ORIGIN]... [--max-body BYTES] [--snapshot-every N]";

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<(Config, SocketAddr), String> {
    let mut dir = None;
    let mut listen: SocketAddr = ([127, 0, 0, 1], 3000).into();
    let mut config = Config::new("");
    config.token = std::env::var("RWLOG_HTTP_TOKEN")
        .ok()
        .filter(|t| !t.is_empty());
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--listen" => {
                listen = value("--listen")?
                    .parse()
                    .map_err(|e| format!("--listen: {e}"))?
            }
            "--token-file" => {
                let path = value("--token-file")?;
                let text = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
                config.token = Some(text.trim().to_owned()).filter(|t| !t.is_empty());
            }
            "--auth-reads" => config.auth_reads = true,
            "--cors" => config.cors_origins.push(value("--cors")?),
            "--max-body" => {
                config.max_body = value("--max-body")?
                    .parse()
                    .map_err(|e| format!("--max-body: {e}"))?
            }
            "--snapshot-every" => {
                config.snapshot_every = value("--snapshot-every")?
                    .parse()
                    .map_err(|e| format!("--snapshot-every: {e}"))?
            }
            other if other.starts_with('-') => return Err(format!("unknown option {other}")),
            other if dir.is_none() => dir = Some(PathBuf::from(other)),
            other => return Err(format!("one directory only, not also {other}")),
        }
    }
    config.dir = dir.ok_or("the log's directory is missing")?;
    if config.auth_reads && config.token.is_none() {
        return Err("--auth-reads needs a token (RWLOG_HTTP_TOKEN or --token-file)".into());
    }
    Ok((config, listen))
}

/// Resolves at SIGTERM or Ctrl-C.
async fn stop_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = ctrl_c => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (config, listen) = match parse_args(std::env::args().skip(1)) {
        Ok(parsed) => parsed,
        Err(why) => {
            eprintln!("{why}\n{USAGE}");
            std::process::exit(2);
        }
    };
    let dir = config.dir.clone();
    let app = App::open(config)?;
    let listener = tokio::net::TcpListener::bind(listen).await?;
    eprintln!(
        "rwlog http_service on http://{} (log in {}, head {})",
        listener.local_addr()?,
        dir.display(),
        app.rt.head()
    );
    tokio::spawn({
        let app = std::sync::Arc::clone(&app);
        async move {
            stop_signal().await;
            eprintln!("draining");
            app.begin_drain();
        }
    });
    service::serve(listener, app, Duration::from_secs(10)).await?;
    eprintln!("stopped; every acknowledged event is on disk");
    Ok(())
}
