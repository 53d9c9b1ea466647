//! The HTTP event service (examples/http_service) answers every endpoint in
//! its wire format, with the right status for every error, guards writes
//! with its token, caps bodies, resumes server-sent events without gap or
//! duplicate, drains on shutdown with every acknowledged event durable,
//! and its OpenAPI description lists exactly its routes. Each test starts
//! the real router on an ephemeral loopback port and talks to it with
//! reqwest.

#[path = "../examples/http_service/domain.rs"]
mod domain;
#[path = "../examples/http_service/http.rs"]
mod http;
#[path = "../examples/http_service/routes.rs"]
mod routes;
#[path = "../examples/http_service/service.rs"]
mod service;
#[path = "../examples/http_service/snapshots.rs"]
mod snapshots;
#[path = "../examples/http_service/stream.rs"]
mod stream;

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use service::{App, Config};

/// Turns a hang into a failure; no test asserts on time.
const HANG: Duration = Duration::from_secs(60);

struct Server {
    base: String,
    app: Arc<App>,
    client: reqwest::Client,
    served: tokio::task::JoinHandle<std::io::Result<()>>,
    dir: tempfile::TempDir,
}

async fn start(configure: impl FnOnce(&mut Config)) -> Server {
    start_in(tempfile::tempdir().unwrap(), configure).await
}

async fn start_in(dir: tempfile::TempDir, configure: impl FnOnce(&mut Config)) -> Server {
    let mut config = Config::new(dir.path());
    configure(&mut config);
    let app = App::open(config).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let served = tokio::spawn(service::serve(listener, Arc::clone(&app), HANG));
    Server {
        base,
        app,
        client: reqwest::Client::new(),
        served,
        dir,
    }
}

impl Server {
    fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.client.request(method, format!("{}{path}", self.base))
    }

    /// Sends and returns the status and the JSON body.
    async fn call(&self, request: reqwest::RequestBuilder) -> (StatusCode, Value) {
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"));
        (status, body)
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(self.request(Method::GET, path)).await
    }

    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(self.request(Method::POST, path).json(&body))
            .await
    }

    async fn append(&self, stream: &str, event_type: &str, data: Value) -> Value {
        let (status, body) = self
            .post(
                "/api/events",
                json!({"streamId": stream, "eventType": event_type, "eventData": data}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["data"].clone()
    }

    /// Drains and waits until the server and the runtime have stopped.
    async fn stop(self) -> tempfile::TempDir {
        self.app.begin_drain();
        self.served.await.unwrap().unwrap();
        self.dir
    }
}

fn run<F: Future<Output = ()>>(test: F) {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            tokio::time::timeout(HANG, test)
                .await
                .expect("the test hung")
        });
}

fn error_code(body: &Value) -> &str {
    assert_eq!(body["success"], false, "{body}");
    body["error"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("no code: {body}"))
}

#[test]
fn events_are_appended_read_by_stream_and_version_and_checked_for_conflicts() {
    run(async {
        let s = start(|_| {}).await;
        let (status, body) = s
            .post(
                "/api/events",
                json!({"streamId": "user_123", "eventType": "UserCreated",
                       "eventData": {"name": "Ann"},
                       "metadata": {"correlationId": "cmd_456", "causationId": "cmd_789"}}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED);
        assert_eq!(body["success"], true);
        let e = &body["data"];
        assert_eq!(
            (e["streamId"].as_str(), e["version"].as_u64()),
            (Some("user_123"), Some(1))
        );
        assert_eq!(
            (e["eventType"].as_str(), e["position"].as_u64()),
            (Some("UserCreated"), Some(1))
        );
        assert!(e["eventId"].as_str().is_some() && e["timestamp"].as_str().is_some());

        s.append("user_123", "UserUpdated", json!({"name": "Bo"}))
            .await;
        let (status, body) = s.get("/api/events/user_123").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["data"]["currentVersion"], 2);
        let events = body["data"]["events"].as_array().unwrap();
        assert_eq!(events.len(), 2);
        assert_eq!(events[0]["eventData"], json!({"name": "Ann"}));
        assert_eq!(events[0]["metadata"]["correlationId"], "cmd_456");
        let (_, body) = s.get("/api/events/user_123/2").await;
        assert_eq!(body["data"]["events"].as_array().unwrap().len(), 1);
        assert_eq!(body["data"]["events"][0]["version"], 2);

        // A stale expected version: 409 with the actual one; nothing written.
        let (status, body) = s
            .post(
                "/api/events",
                json!({"streamId": "user_123", "eventType": "X", "eventData": {}, "expectedVersion": 1}),
            )
            .await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert_eq!(error_code(&body), "VERSION_CONFLICT");
        assert_eq!(body["error"]["actualVersion"], 2);
        let (status, _) = s
            .post(
                "/api/events",
                json!({"streamId": "user_123", "eventType": "X", "eventData": {}, "expectedVersion": 2}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED);
        let (status, _) = s
            .post(
                "/api/events",
                json!({"streamId": "fresh", "eventType": "X", "eventData": {}, "expectedVersion": 0}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED);
        s.stop().await;
    });
}

#[test]
fn an_event_id_makes_an_append_idempotent_and_a_batch_is_atomic_per_stream() {
    run(async {
        let s = start(|_| {}).await;
        let id = "0190b6a6-0000-7000-8000-000000000001";
        let event =
            json!({"streamId": "a", "eventType": "Paid", "eventData": {"n": 1}, "eventId": id});
        let (_, first) = s.post("/api/events", event.clone()).await;
        let (status, again) = s.post("/api/events", event).await;
        assert_eq!(status, StatusCode::CREATED);
        assert_eq!(first["data"], again["data"]);
        assert_eq!(again["data"]["eventId"], id);
        assert_eq!(s.app.rt.log().stream_version("a"), 1);

        let (status, body) = s
            .post(
                "/api/events",
                json!([
                    {"streamId": "b", "eventType": "One", "eventData": {}, "expectedVersion": 0},
                    {"streamId": "c", "eventType": "Two", "eventData": {}},
                    {"streamId": "b", "eventType": "Three", "eventData": {}},
                ]),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let events = body["data"]["events"].as_array().unwrap();
        assert_eq!(events.len(), 3);
        let b: Vec<_> = events.iter().filter(|e| e["streamId"] == "b").collect();
        assert_eq!(
            (b[0]["version"].as_u64(), b[1]["version"].as_u64()),
            (Some(1), Some(2))
        );
        assert_eq!(
            b[1]["position"].as_u64().unwrap(),
            b[0]["position"].as_u64().unwrap() + 1
        );

        // A conflicting batch writes none of its stream's events.
        let (status, _) = s
            .post(
                "/api/events",
                json!([
                    {"streamId": "b", "eventType": "Four", "eventData": {}, "expectedVersion": 0},
                    {"streamId": "b", "eventType": "Five", "eventData": {}},
                ]),
            )
            .await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert_eq!(s.app.rt.log().stream_version("b"), 2);
        s.stop().await;
    });
}

#[test]
fn the_global_log_reads_forward_backward_by_type_and_time() {
    run(async {
        let s = start(|_| {}).await;
        for i in 0..5 {
            let kind = if i % 2 == 0 { "Even" } else { "Odd" };
            s.append(&format!("s{i}"), kind, json!({ "i": i })).await;
        }
        let positions = |body: &Value| -> Vec<u64> {
            body["data"]["events"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["position"].as_u64().unwrap())
                .collect()
        };
        let (_, body) = s.get("/api/events?from=2&limit=2").await;
        assert_eq!(positions(&body), [2, 3]);
        assert_eq!(
            (body["data"]["next"].as_u64(), body["data"]["head"].as_u64()),
            (Some(4), Some(5))
        );
        let (_, body) = s.get("/api/events?direction=backward&limit=2").await;
        assert_eq!(positions(&body), [5, 4]);
        assert_eq!(body["data"]["next"], 3);
        let (_, body) = s.get("/api/events?type=Odd").await;
        assert_eq!(positions(&body), [2, 4]);
        assert_eq!(body["data"]["next"], Value::Null);
        let (_, body) = s
            .get("/api/events?since=2000-01-01T00:00:00Z&until=2999-01-01T00:00:00Z")
            .await;
        assert_eq!(positions(&body).len(), 5);
        let (_, body) = s.get("/api/events?until=2000-01-01T00:00:00Z").await;
        assert!(positions(&body).is_empty());
        for bad in [
            "direction=up",
            "since=yesterday",
            "limit=0",
            "from=x",
            "colour=red",
        ] {
            let (status, body) = s.get(&format!("/api/events?{bad}")).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
            assert_eq!(body["success"], false);
        }
        s.stop().await;
    });
}

#[test]
fn bad_input_gets_a_json_error_with_the_right_status() {
    run(async {
        let s = start(|c| c.max_body = 1024).await;
        s.append("x", "Made", json!({})).await;
        let raw = |body: &'static str| {
            s.request(Method::POST, "/api/events")
                .header("content-type", "application/json")
                .body(body)
        };
        for (body, code) in [
            ("{not json", "INVALID_JSON"),
            (
                r#"{"streamId":"x","eventType":"E","eventData":{},"colour":1}"#,
                "INVALID_JSON",
            ),
            (r#"{"streamId":"x","eventType":"E"}"#, "INVALID_JSON"),
            (
                r#"{"streamId":"x","eventType":"E","eventData":{},"eventId":"nope"}"#,
                "INVALID_JSON",
            ),
            (
                r#"{"streamId":"x","eventType":"E","eventData":[1]}"#,
                "BAD_REQUEST",
            ),
            (
                r#"{"streamId":"$snapshot:x","eventType":"E","eventData":{}}"#,
                "BAD_REQUEST",
            ),
            (
                r#"{"streamId":"","eventType":"E","eventData":{}}"#,
                "BAD_REQUEST",
            ),
            (
                r#"{"streamId":"x","eventType":"","eventData":{}}"#,
                "BAD_REQUEST",
            ),
            ("[]", "BAD_REQUEST"),
        ] {
            let (status, reply) = s.call(raw(body)).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {reply}");
            assert_eq!(error_code(&reply), code, "{body}");
        }
        assert_eq!(
            s.app.rt.log().head().0,
            1,
            "a refused append writes nothing"
        );

        let big =
            json!({"streamId": "x", "eventType": "E", "eventData": {"pad": "p".repeat(2048)}});
        let (status, reply) = s.post("/api/events", big.clone()).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(error_code(&reply), "PAYLOAD_TOO_LARGE");
        let (status, _) = s
            .post("/api/snapshots", json!({"streamId": "p".repeat(2048)}))
            .await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        let (status, reply) = s
            .call(s.request(Method::POST, "/api/commands").body("{}"))
            .await;
        assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        assert_eq!(error_code(&reply), "UNSUPPORTED_MEDIA_TYPE");

        for (path, status, code) in [
            (
                "/api/events/nobody",
                StatusCode::NOT_FOUND,
                "STREAM_NOT_FOUND",
            ),
            ("/api/events/x/two", StatusCode::BAD_REQUEST, "BAD_REQUEST"),
            ("/api/nowhere", StatusCode::NOT_FOUND, "NOT_FOUND"),
            (
                "/api/subscribe?from=-1",
                StatusCode::BAD_REQUEST,
                "BAD_REQUEST",
            ),
        ] {
            let (got, reply) = s.get(path).await;
            assert_eq!(got, status, "{path}: {reply}");
            assert_eq!(error_code(&reply), code, "{path}");
        }
        let (status, reply) = s.call(s.request(Method::DELETE, "/api/events")).await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(error_code(&reply), "METHOD_NOT_ALLOWED");
        let (status, _) = s.post("/api/events/nobody/replay", json!({})).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (status, _) = s.post("/api/events/x/replay", json!({"colour": 1})).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        s.stop().await;
    });
}

#[test]
fn commands_go_through_the_actors_and_report_their_status() {
    run(async {
        let s = start(|_| {}).await;
        let command = |kind: &str| {
            json!({"commandType": kind, "commandData": {"userId": "user_9", "name": "Ann"},
                   "metadata": {"correlationId": "c1"}})
        };
        let (status, body) = s.post("/api/commands", command("CreateUser")).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        let created = body["data"]["commandId"].as_str().unwrap().to_owned();
        let done = settle(&s, &created).await;
        assert_eq!(done["status"], "completed", "{done}");
        assert_eq!(
            (done["version"].as_u64(), done["position"].as_u64()),
            (Some(1), Some(1))
        );
        let (_, events) = s.get("/api/events/user_9").await;
        assert_eq!(events["data"]["events"][0]["eventType"], "UserCreated");

        let (_, body) = s.post("/api/commands", command("CreateUser")).await;
        let again = settle(&s, body["data"]["commandId"].as_str().unwrap()).await;
        assert_eq!(again["status"], "failed");
        assert!(
            again["error"].as_str().unwrap().contains("already exists"),
            "{again}"
        );

        let (status, body) = s.post("/api/commands", command("LaunchRocket")).await;
        assert_eq!(
            (status, error_code(&body)),
            (StatusCode::BAD_REQUEST, "BAD_REQUEST")
        );
        let (status, _) = s
            .post(
                "/api/commands",
                json!({"commandType": "CreateUser", "commandData": {}}),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        for id in ["0190b6a6-0000-7000-8000-000000000009", "not-a-uuid"] {
            let (status, body) = s.get(&format!("/api/commands/{id}/status")).await;
            assert_eq!(
                (status, error_code(&body)),
                (StatusCode::NOT_FOUND, "COMMAND_NOT_FOUND")
            );
        }
        s.stop().await;
    });
}

/// Polls a command's status until it is completed or failed.
async fn settle(s: &Server, id: &str) -> Value {
    loop {
        let (status, body) = s.get(&format!("/api/commands/{id}/status")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let data = body["data"].clone();
        if data["status"] == "completed" || data["status"] == "failed" {
            return data;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[test]
fn queries_read_the_model_at_the_consistency_asked_for() {
    run(async {
        let s = start(|_| {}).await;
        s.append("cart", "Added", json!({"apples": 1})).await;
        let e = s.append("cart", "Added", json!({"pears": 2})).await;
        let p = e["position"].as_u64().unwrap();
        for consistency in ["strong".to_owned(), format!("at_least:{p}")] {
            let (status, body) = s
                .get(&format!("/api/queries/cart?consistency={consistency}"))
                .await;
            assert_eq!(status, StatusCode::OK, "{body}");
            let d = &body["data"];
            assert!(d["position"].as_u64().unwrap() >= p);
            assert_eq!(d["version"], 2);
            assert_eq!(d["state"], json!({"apples": 1, "pears": 2}));
        }
        let (status, body) = s.get("/api/queries/cart").await;
        assert_eq!(
            (status, body["data"]["consistency"].as_str()),
            (StatusCode::OK, Some("latest"))
        );
        for (path, status) in [
            (
                "/api/queries/nobody?consistency=strong",
                StatusCode::NOT_FOUND,
            ),
            (
                "/api/queries/cart?consistency=eventual",
                StatusCode::BAD_REQUEST,
            ),
            (
                "/api/queries/cart?consistency=at_least:x",
                StatusCode::BAD_REQUEST,
            ),
            (
                "/api/queries/cart?consistency=at_least:999",
                StatusCode::BAD_REQUEST,
            ),
            ("/api/queries/cart?colour=red", StatusCode::BAD_REQUEST),
        ] {
            let (got, body) = s.get(path).await;
            assert_eq!(got, status, "{path}: {body}");
            assert_eq!(body["success"], false);
        }
        s.stop().await;
    });
}

#[test]
fn snapshots_are_taken_every_n_events_and_replay_starts_from_them() {
    run(async {
        let s = start(|c| c.snapshot_every = 3).await;
        for i in 1..=7 {
            s.append("acct", "Set", json!({ "last": i, format!("k{i}"): i }))
                .await;
        }
        // The snapshotter follows the log on its own thread: wait for it.
        let listed = loop {
            let (status, body) = s.get("/api/snapshots/acct").await;
            assert_eq!(status, StatusCode::OK);
            if body["data"]["snapshots"].as_array().unwrap().len() == 2 {
                break body;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        assert_eq!(listed["data"]["latest"]["version"], 6);
        assert_eq!(listed["data"]["latest"]["state"]["last"], 6);

        let (status, body) = s.post("/api/events/acct/replay", json!({})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let d = &body["data"];
        assert_eq!(
            (d["fromSnapshot"].as_u64(), d["eventsReplayed"].as_u64()),
            (Some(6), Some(1))
        );
        assert_eq!(
            (d["toVersion"].as_u64(), d["state"]["last"].as_u64()),
            (Some(7), Some(7))
        );
        assert_eq!(d["state"]["k1"], 1);
        let (_, body) = s
            .call(s.request(Method::POST, "/api/events/acct/replay"))
            .await;
        assert_eq!(
            body["data"]["state"], d["state"],
            "an empty body replays all"
        );
        let (_, body) = s
            .post("/api/events/acct/replay", json!({"toVersion": 2}))
            .await;
        assert_eq!(body["data"]["state"], json!({"last": 2, "k1": 1, "k2": 2}));
        let (_, body) = s
            .post("/api/events/acct/replay", json!({"fromVersion": 7}))
            .await;
        assert_eq!(body["data"]["state"], json!({"last": 7, "k7": 7}));

        let (status, body) = s
            .post("/api/snapshots", json!({"streamId": "acct", "version": 2}))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert_eq!(body["data"]["state"]["last"], 2);
        let (_, again) = s
            .post("/api/snapshots", json!({"streamId": "acct", "version": 2}))
            .await;
        assert_eq!(
            again["data"]["snapshotId"], body["data"]["snapshotId"],
            "taken once"
        );
        let (status, body) = s
            .post("/api/snapshots", json!({"streamId": "acct", "version": 8}))
            .await;
        assert_eq!(
            (status, body["error"]["currentVersion"].as_u64()),
            (StatusCode::BAD_REQUEST, Some(7))
        );
        let (status, _) = s
            .post("/api/snapshots", json!({"streamId": "nobody"}))
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (status, _) = s.get("/api/snapshots/nobody").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        s.stop().await;
    });
}

#[test]
fn projections_report_position_lag_and_failure() {
    run(async {
        let s = start(|_| {}).await;
        s.append("p", "E", json!({})).await;
        let (status, body) = s.get("/api/projections").await;
        assert_eq!(status, StatusCode::OK);
        let ids: BTreeSet<_> = body["data"]["projections"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["id"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(
            ids,
            BTreeSet::from(["snapshotter".to_owned(), "streams".to_owned()])
        );
        let (status, body) = s.get("/api/projections/streams").await;
        assert_eq!(status, StatusCode::OK);
        let d = &body["data"];
        assert_eq!(
            (d["kind"].as_str(), d["status"].as_str()),
            (Some("view"), Some("active"))
        );
        assert_eq!(
            (d["position"].as_u64(), d["lag"].as_u64()),
            (Some(1), Some(0))
        );
        assert!(d["failure"].is_null());
        let (status, body) = s.get("/api/projections/snapshotter").await;
        assert_eq!(
            (status, body["data"]["kind"].as_str()),
            (StatusCode::OK, Some("projection"))
        );
        let (status, body) = s.get("/api/projections/nope").await;
        assert_eq!(
            (status, error_code(&body)),
            (StatusCode::NOT_FOUND, "PROJECTION_NOT_FOUND")
        );
        s.stop().await;
    });
}

/// Reads server-sent events until `n` have come: (id, data) each.
async fn read_sse(response: reqwest::Response, n: usize) -> Vec<(u64, Value)> {
    let mut body = response.bytes_stream();
    let mut buffer: Vec<u8> = Vec::new();
    let mut events = Vec::new();
    while events.len() < n {
        let chunk = body.next().await.expect("the stream ended early").unwrap();
        buffer.extend_from_slice(&chunk);
        while let Some(end) = buffer.windows(2).position(|w| w == b"\n\n") {
            let block: Vec<u8> = buffer.drain(..end + 2).collect();
            let block = String::from_utf8(block).unwrap();
            let (mut id, mut data) = (None, None);
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("id:") {
                    id = Some(v.trim().parse::<u64>().unwrap());
                } else if let Some(v) = line.strip_prefix("data:") {
                    data = Some(serde_json::from_str::<Value>(v.trim()).unwrap());
                }
            }
            if let (Some(id), Some(data)) = (id, data) {
                events.push((id, data));
            }
        }
    }
    events
}

#[test]
fn server_sent_events_resume_after_last_event_id_exactly_once() {
    run(async {
        let s = start(|_| {}).await;
        for i in 1..=4 {
            s.append("feed", "Posted", json!({ "i": i })).await;
        }
        let first = s
            .request(Method::GET, "/api/subscribe?from=1")
            .send()
            .await
            .unwrap();
        assert_eq!(first.status(), StatusCode::OK);
        assert!(first.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream"));
        let mut seen = read_sse(first, 3).await; // then the client goes away
        let last = seen.last().unwrap().0;
        for i in 5..=6 {
            s.append("feed", "Posted", json!({ "i": i })).await;
        }
        let resumed = s
            .request(Method::GET, "/api/subscribe?from=1")
            .header("Last-Event-ID", last.to_string())
            .send()
            .await
            .unwrap();
        let writer = {
            let client = s.client.clone();
            let url = format!("{}/api/events", s.base);
            tokio::spawn(async move {
                for i in 7..=8 {
                    let e =
                        json!({"streamId": "feed", "eventType": "Posted", "eventData": { "i": i }});
                    client.post(&url).json(&e).send().await.unwrap();
                }
            })
        };
        seen.extend(read_sse(resumed, 8 - seen.len()).await);
        writer.await.unwrap();
        let ids: Vec<u64> = seen.iter().map(|(id, _)| *id).collect();
        assert_eq!(
            ids,
            (1..=8).collect::<Vec<_>>(),
            "every event once, in order"
        );
        for (id, data) in &seen {
            assert_eq!(data["position"].as_u64(), Some(*id));
            assert_eq!(data["eventData"]["i"].as_u64(), Some(*id));
        }
        let (status, _) = s
            .call(
                s.request(Method::GET, "/api/subscribe")
                    .header("Last-Event-ID", "x"),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        s.stop().await;
    });
}

#[test]
fn the_token_guards_writes_and_optionally_reads() {
    run(async {
        let s = start(|c| c.token = Some("s3cret".into())).await;
        let event = json!({"streamId": "t", "eventType": "E", "eventData": {}});
        let post = || s.request(Method::POST, "/api/events").json(&event);
        let response = post().send().await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(response.headers()["www-authenticate"], "Bearer");
        let (status, body) = s.call(post().bearer_auth("guess")).await;
        assert_eq!(
            (status, error_code(&body)),
            (StatusCode::FORBIDDEN, "FORBIDDEN")
        );
        let (status, body) = s
            .call(post().header("Authorization", "Basic czNjcmV0"))
            .await;
        assert_eq!(
            (status, error_code(&body)),
            (StatusCode::UNAUTHORIZED, "UNAUTHORIZED")
        );
        let (status, _) = s.call(post().bearer_auth("s3cret")).await;
        assert_eq!(status, StatusCode::CREATED);
        let (status, _) = s.get("/api/events/t").await;
        assert_eq!(status, StatusCode::OK, "reads are open unless configured");
        s.stop().await;

        let s = start(|c| {
            c.token = Some("s3cret".into());
            c.auth_reads = true;
        })
        .await;
        for path in ["/api/events", "/api/projections", "/metrics"] {
            let (status, _) = s.get(path).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
            let (status, _) = s
                .call(s.request(Method::GET, path).bearer_auth("nope"))
                .await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
        }
        let (status, _) = s
            .call(s.request(Method::GET, "/api/events").bearer_auth("s3cret"))
            .await;
        assert_eq!(status, StatusCode::OK);
        let (status, _) = s.get("/health").await;
        assert_eq!(status, StatusCode::OK, "health stays open");
        s.stop().await;
    });
}

#[test]
fn cors_is_off_unless_origins_are_configured() {
    run(async {
        let origin = "http://app.example";
        let s = start(|_| {}).await;
        let response = s
            .request(Method::GET, "/health")
            .header("Origin", origin)
            .send()
            .await
            .unwrap();
        assert!(!response
            .headers()
            .contains_key("access-control-allow-origin"));
        s.stop().await;
        let s = start(|c| c.cors_origins = vec![origin.to_owned()]).await;
        let response = s
            .request(Method::GET, "/health")
            .header("Origin", origin)
            .send()
            .await
            .unwrap();
        assert_eq!(response.headers()["access-control-allow-origin"], origin);
        s.stop().await;
    });
}

#[test]
fn metrics_and_health_are_served() {
    run(async {
        let s = start(|_| {}).await;
        s.append("m", "E", json!({})).await;
        let response = s.request(Method::GET, "/metrics").send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let text = response.text().await.unwrap();
        for metric in [
            "rwlog_events_appended_total",
            "rwlog_append_seconds",
            "http_requests_total",
        ] {
            assert!(text.contains(metric), "{metric} missing from:\n{text}");
        }
        let (status, body) = s.get("/health").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["data"]["status"], "healthy");
        assert!(body["data"]["head"].as_u64().unwrap() >= 1);
        s.stop().await;
    });
}

#[test]
fn draining_refuses_new_requests_and_shutdown_keeps_every_acknowledged_event() {
    run(async {
        // Lingering: the server still answers (503) after draining begins.
        let s = start(|c| c.drain_linger = HANG).await;
        let events = s
            .request(Method::GET, "/api/subscribe?from=1")
            .send()
            .await
            .unwrap();
        s.append("d", "E", json!({})).await;
        s.app.begin_drain();
        // The event stream ends once draining begins.
        let rest = events.text().await.unwrap();
        assert!(rest.contains("id: 1"), "{rest}");
        let (status, body) = s.get("/api/projections").await;
        assert_eq!(
            (status, error_code(&body)),
            (StatusCode::SERVICE_UNAVAILABLE, "SHUTTING_DOWN")
        );
        s.served.abort();
        s.app.rt.shutdown().unwrap();

        // A shut-down runtime refuses appends: 503.
        let s = start(|_| {}).await;
        let acked: Vec<u64> = {
            let mut acked = Vec::new();
            for i in 0..20 {
                let e = s.append("kept", "E", json!({ "i": i })).await;
                acked.push(e["position"].as_u64().unwrap());
            }
            acked
        };
        s.app.rt.shutdown().unwrap();
        let (status, body) = s
            .post(
                "/api/events",
                json!({"streamId": "late", "eventType": "E", "eventData": {}}),
            )
            .await;
        assert_eq!(
            (status, error_code(&body)),
            (StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE")
        );
        let dir = s.stop().await;

        // Reopened: every acknowledged event is there.
        let s = start_in(dir, |_| {}).await;
        let (_, body) = s.get("/api/events/kept").await;
        let positions: Vec<u64> = body["data"]["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["position"].as_u64().unwrap())
            .collect();
        assert_eq!(positions, acked);
        s.stop().await;
    });
}

#[test]
fn the_openapi_description_lists_exactly_the_routes() {
    let text = include_str!("../examples/http_service/openapi.json");
    let doc: Value = serde_json::from_str(text).unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let mut described = BTreeSet::new();
    for (path, operations) in doc["paths"].as_object().unwrap() {
        for (method, operation) in operations.as_object().unwrap() {
            assert!(
                !operation["responses"].as_object().unwrap().is_empty(),
                "{method} {path} has no responses"
            );
            described.insert((method.clone(), path.clone()));
        }
    }
    let served: BTreeSet<_> = service::ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    assert_eq!(described, served);
    let docs = include_str!("../examples/http_service/main.rs");
    for (_, path) in service::ROUTES {
        let prefix = path.split('{').next().unwrap();
        assert!(
            docs.contains(&format!("localhost:3000{prefix}")),
            "no curl line for {path}"
        );
    }
}
