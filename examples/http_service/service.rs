//! The service's state and wiring: configuration, the runtime with its
//! view, writer actors and snapshotting projection, the router, and the
//! drain on shutdown.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::routing::{get, post};
use axum::Router;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use rwlog::{Actors, Durability, Projection, Reader, Runtime, Storage};
use tokio::sync::watch;
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::domain::{Stored, Streams, User};
use crate::{http, routes, snapshots, stream};

/// How the service runs.
#[derive(Clone, Debug)]
pub struct Config {
    /// The durable log's directory.
    pub dir: PathBuf,
    /// The token mutating requests (and reads, with `auth_reads`) must carry.
    pub token: Option<String>,
    /// Whether reads need the token too.
    pub auth_reads: bool,
    /// Origins allowed by CORS: none (CORS off) by default; `*` for any.
    pub cors_origins: Vec<String>,
    /// The largest request body accepted, in bytes.
    pub max_body: usize,
    /// A stream gets a snapshot every this many events (0: never).
    pub snapshot_every: u64,
    /// How long a waiting read (`strong`, `at_least`) may wait.
    pub read_timeout: Duration,
    /// How long the server keeps accepting connections (answering 503)
    /// once draining has begun, for load balancers to notice.
    pub drain_linger: Duration,
}

impl Config {
    pub fn new(dir: impl Into<PathBuf>) -> Config {
        Config {
            dir: dir.into(),
            token: None,
            auth_reads: false,
            cors_origins: Vec::new(),
            max_body: 1 << 20,
            snapshot_every: 100,
            read_timeout: Duration::from_secs(5),
            drain_linger: Duration::ZERO,
        }
    }
}

/// Everything a handler needs.
pub struct App {
    pub config: Config,
    pub rt: Runtime<Stored>,
    pub streams: Reader<Streams>,
    pub actors: Actors<User>,
    pub prometheus: PrometheusHandle,
    /// Keeps the snapshotter running (it stops when dropped).
    _snapshotter: Option<Projection>,
    draining: AtomicBool,
    drain: watch::Sender<bool>,
}

impl App {
    /// Opens the durable log (acknowledging a batch once it is fsynced)
    /// and starts the actors and the snapshotter. Call inside a tokio
    /// runtime: the actors run on it.
    pub fn open(config: Config) -> rwlog::Result<Arc<App>> {
        let prometheus = prometheus();
        let rt = Runtime::<Stored>::builder()
            .view("streams", Streams::default())
            .storage(Storage::dir(&config.dir).durability(Durability::Fsync))
            .build()?;
        let streams = rt.reader::<Streams>("streams")?;
        let actors = rt.actors::<User>(2)?;
        let snapshotter = match config.snapshot_every {
            0 => None,
            every => Some(snapshots::start_snapshotter(&rt, every)?),
        };
        Ok(Arc::new(App {
            config,
            rt,
            streams,
            actors,
            prometheus,
            _snapshotter: snapshotter,
            draining: AtomicBool::new(false),
            drain: watch::channel(false).0,
        }))
    }

    /// Starts draining: new requests get 503, server-sent event streams
    /// end, and the server stops accepting connections.
    pub fn begin_drain(&self) {
        self.draining.store(true, Ordering::Relaxed);
        self.drain.send_replace(true);
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }

    /// Resolves once draining has begun.
    pub async fn drained(&self) {
        let mut rx = self.drain.subscribe();
        // Err only if the sender is gone, which is draining too.
        let _ = rx.wait_for(|draining| *draining).await;
    }
}

/// The Prometheus recorder, installed once per process (tests start
/// several services in one process).
pub fn prometheus() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                eprintln!("another metrics recorder is installed: /metrics will be empty");
            }
            handle
        })
        .clone()
}

/// Every route the service serves, as `(method, path)`; `openapi.json`
/// describes exactly these (checked by the tests).
#[allow(dead_code)] // read by the tests
pub const ROUTES: &[(&str, &str)] = &[
    ("post", "/api/events"),
    ("get", "/api/events"),
    ("get", "/api/events/{streamId}"),
    ("get", "/api/events/{streamId}/{fromVersion}"),
    ("post", "/api/events/{streamId}/replay"),
    ("post", "/api/commands"),
    ("get", "/api/commands/{commandId}/status"),
    ("get", "/api/queries/{queryId}"),
    ("get", "/api/projections"),
    ("get", "/api/projections/{projectionId}"),
    ("post", "/api/snapshots"),
    ("get", "/api/snapshots/{streamId}"),
    ("get", "/api/subscribe"),
    ("get", "/metrics"),
    ("get", "/health"),
];

/// The service's routes and layers.
pub fn router(app: Arc<App>) -> Router {
    let api = Router::new()
        .route("/api/events", post(routes::append).get(routes::read_all))
        .route("/api/events/{stream}", get(routes::read_stream))
        .route("/api/events/{stream}/{from}", get(routes::read_stream_from))
        .route("/api/events/{stream}/replay", post(snapshots::replay))
        .route("/api/commands", post(routes::command))
        .route("/api/commands/{id}/status", get(routes::command_status))
        .route("/api/queries/{id}", get(routes::query))
        .route("/api/projections", get(routes::projections))
        .route("/api/projections/{id}", get(routes::projection))
        .route("/api/snapshots", post(snapshots::take))
        .route("/api/snapshots/{stream}", get(snapshots::list))
        .route("/api/subscribe", get(stream::subscribe))
        .route("/metrics", get(routes::metrics))
        .route("/health", get(routes::health))
        .fallback(http::no_route)
        .method_not_allowed_fallback(http::no_method)
        .layer(axum::extract::DefaultBodyLimit::max(app.config.max_body))
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&app),
            http::authorize,
        ))
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&app),
            http::refuse_while_draining,
        ));
    let api = match cors(&app.config.cors_origins) {
        Some(cors) => api.layer(cors),
        None => api,
    };
    api.with_state(app)
}

/// CORS for the configured origins; `None` (no CORS headers, so browsers
/// on other origins are refused) when none are.
fn cors(origins: &[String]) -> Option<CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(origins.iter().filter_map(|o| o.parse().ok()))
    };
    Some(
        CorsLayer::new()
            .allow_origin(allow)
            .allow_methods(tower_http::cors::Any)
            .allow_headers(tower_http::cors::Any),
    )
}

/// Serves until draining begins (and `drain_linger` more), then waits for
/// the requests in flight (at most `grace`), and shuts the runtime down: every acknowledged event
/// is durable, the snapshotter saves its checkpoint.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Arc<App>,
    grace: Duration,
) -> std::io::Result<()> {
    let upkeep = tokio::spawn({
        let handle = app.prometheus.clone();
        async move {
            loop {
                tokio::time::sleep(Duration::from_secs(5)).await;
                handle.run_upkeep();
            }
        }
    });
    let linger = app.config.drain_linger;
    let server = std::future::IntoFuture::into_future(
        axum::serve(listener, router(Arc::clone(&app))).with_graceful_shutdown({
            let app = Arc::clone(&app);
            async move {
                app.drained().await;
                tokio::time::sleep(linger).await;
            }
        }),
    );
    tokio::pin!(server);
    let served = tokio::select! {
        served = &mut server => served,
        () = async {
            app.drained().await;
            tokio::time::sleep(linger + grace).await;
        } => {
            eprintln!("requests still in flight after {grace:?}: stopping anyway");
            Ok(())
        }
    };
    upkeep.abort();
    app.rt.shutdown().map_err(std::io::Error::other)?;
    served
}
