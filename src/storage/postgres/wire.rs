//! What the database thread's tasks and the rest of the process pass each
//! other: requests, replies, rows, and the state they share.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use crossbeam_channel::Sender;
use uuid::Uuid;

use super::conn::DbErr;
use super::sql;
use crate::storage::store::{Known, Rejection};

/// A reply to a request: its result, or why the request failed.
pub(super) type Reply<T, F> = Sender<Result<T, F>>;

/// A stored batch as read: its positions and its frames.
#[derive(Debug)]
pub(super) struct Row {
    pub(super) first: u64,
    pub(super) last: u64,
    pub(super) events: u32,
    pub(super) body: Vec<u8>,
}

/// A batch to commit.
#[derive(Debug, Default)]
pub(super) struct Outgoing {
    pub(super) first: u64,
    pub(super) last: u64,
    pub(super) events: u32,
    pub(super) batch_id: Uuid,
    pub(super) body: Vec<u8>,
    /// The appends whose first id came from the writer.
    pub(super) ids: Vec<Uuid>,
    pub(super) id_positions: Vec<i64>,
    pub(super) id_versions: Vec<i64>,
    pub(super) id_counts: Vec<i64>,
}

/// What `begin` found under the head's lock.
pub(super) struct Began {
    pub(super) head: u64,
    /// The batches after the local head.
    pub(super) rows: Vec<Row>,
}

/// What opening found.
pub(super) enum Setup {
    /// The tables are ready: the log's id.
    Ready(Uuid),
    /// The tables are at another version.
    Mismatch(i32),
}

/// The appender connection's requests.
pub(super) enum AppendReq {
    Setup(Reply<Setup, String>),
    Begin(u64, Reply<Began, Rejection>),
    Known(Vec<Uuid>, Reply<Vec<(Uuid, Known)>, Rejection>),
    Commit(Box<Outgoing>, Reply<(), Rejection>),
    Abort,
}

/// The tailer connection's requests.
pub(super) enum ReadReq {
    /// Batches starting after a position, at most so many.
    After(u64, i64, Reply<Vec<Row>, String>),
    /// The batch holding a position (none if the log does not reach it).
    Holding(u64, Reply<Vec<Row>, String>),
    /// The head now.
    Head(Reply<u64, String>),
    /// The head now, for a task that awaits it.
    HeadSoon(tokio::sync::oneshot::Sender<Result<u64, String>>),
}

/// What the database thread shares with the rest of the process.
#[derive(Default)]
pub(super) struct DbState {
    /// The newest head seen in the database (by the tailer, a read of the
    /// head, or this process's own commit).
    remote_head: AtomicU64,
    /// The head of this process's own log, as far as the store knows it.
    adopted: AtomicU64,
    /// Wakes whoever can take the sequencer role.
    wake: OnceLock<Box<dyn Fn() + Send + Sync>>,
    /// The tables exist: the tailer may start (told once).
    ready: tokio::sync::Notify,
}

impl DbState {
    /// The database's head is at least `head`: while this process has not
    /// adopted that far, wake the sequencer to catch up (again at every
    /// note, so a catch-up that failed is tried once more at the next
    /// poll, and a wake-up lost while another thread held the role is
    /// made up for).
    pub(super) fn note(&self, head: u64) {
        self.remote_head.fetch_max(head, Ordering::SeqCst);
        if head > self.adopted.load(Ordering::SeqCst) {
            self.wake();
        }
    }

    /// This process's log now holds everything up to `head` (adopted, or
    /// its own commit).
    pub(super) fn adopted(&self, head: u64) {
        self.adopted.fetch_max(head, Ordering::SeqCst);
        self.remote_head.fetch_max(head, Ordering::SeqCst);
    }

    pub(super) fn set_ready(&self) {
        self.ready.notify_one();
    }

    /// Waits until the tables exist.
    pub(super) async fn ready(&self) {
        self.ready.notified().await;
    }

    pub(super) fn remote_head(&self) -> u64 {
        self.remote_head.load(Ordering::SeqCst)
    }

    pub(super) fn set_wake(&self, wake: Box<dyn Fn() + Send + Sync>) {
        let _ = self.wake.set(wake);
        // The tailer may have seen a newer head before there was anyone
        // to wake.
        self.wake();
    }

    fn wake(&self) {
        if let Some(wake) = self.wake.get() {
            wake();
        }
    }
}

/// Batches starting after `head`, in order.
pub(super) async fn read_after(
    client: &tokio_postgres::Client,
    statements: &sql::Statements,
    head: u64,
    limit: i64,
) -> Result<Vec<Row>, DbErr> {
    let rows = client
        .query(&statements.read_after, &[&(head as i64), &limit])
        .await?;
    Ok(rows_of(rows))
}

/// The batch holding `position` (the last one starting at or before it).
pub(super) async fn read_holding(
    client: &tokio_postgres::Client,
    statements: &sql::Statements,
    position: u64,
) -> Result<Vec<Row>, DbErr> {
    let rows = client
        .query(&statements.holding, &[&(position as i64)])
        .await?;
    Ok(rows_of(rows))
}

fn rows_of(rows: Vec<tokio_postgres::Row>) -> Vec<Row> {
    rows.into_iter()
        .map(|r| Row {
            first: as_position(r.get(0)),
            last: as_position(r.get(1)),
            events: r.get::<_, i32>(2).max(0) as u32,
            body: r.get(3),
        })
        .collect()
}

/// A stored bigint as a position (a negative one, which the tables'
/// checks forbid, reads as 0 and fails the density check).
pub(super) fn as_position(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}
