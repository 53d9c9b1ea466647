//! The appender connection: one transaction per sequencer batch, holding
//! the head's row lock from `begin` to `commit`.
//!
//! A connection lost before the commit was sent leaves nothing behind (the
//! server rolls the transaction back). One lost while committing is
//! resolved: reconnect, take the head's lock (which waits until the old
//! transaction has ended, committed or not), and look for the batch's id
//! at its first position. Only if the database cannot be reached again in
//! time is the outcome reported unknown.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::{try_join, try_join3, TryFutureExt};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio_postgres::Config;
use uuid::Uuid;

use super::conn::{Conn, DbErr};
use super::sql::{self, Migrated};
use super::wire::{as_position, read_after, AppendReq, Began, DbState, Outgoing, Setup};
use super::PgOptions;
use crate::storage::store::{Known, Rejection};

/// How long to wait between attempts to reach the database again.
const RETRY_PAUSE: Duration = Duration::from_millis(50);

pub(super) struct Appender {
    options: Arc<PgOptions>,
    state: Arc<DbState>,
    conn: Conn,
    /// A transaction is open on `conn`.
    in_transaction: bool,
}

impl Appender {
    pub(super) fn new(options: Arc<PgOptions>, config: Config, state: Arc<DbState>) -> Appender {
        Appender {
            state,
            conn: Conn::new(Arc::clone(&options), config),
            options,
            in_transaction: false,
        }
    }

    pub(super) async fn run(mut self, mut requests: UnboundedReceiver<AppendReq>) {
        while let Some(request) = requests.recv().await {
            match request {
                AppendReq::Setup(reply) => {
                    let _ = reply.send(self.setup().await);
                }
                AppendReq::Begin(head, reply) => {
                    let _ = reply.send(self.begin(head).await);
                }
                AppendReq::Known(ids, reply) => {
                    let _ = reply.send(self.known(&ids).await);
                }
                AppendReq::Commit(batch, reply) => {
                    let _ = reply.send(self.commit(&batch).await);
                }
                AppendReq::Abort => self.end_transaction().await,
            }
        }
    }

    /// Creates or checks the tables, then lets the tailer start.
    async fn setup(&mut self) -> Result<Setup, String> {
        let bare = self.conn.bare().await.map_err(|e| e.message)?;
        let setup = match sql::migrate(&bare.client, &self.options.schema).await {
            Ok(Migrated::Ready(id)) => Setup::Ready(id),
            Ok(Migrated::Mismatch(v)) => return Ok(Setup::Mismatch(v)),
            Err(e) => return Err(DbErr::from(e).message),
        };
        drop(bare);
        self.conn.live(None).await.map_err(|e| e.message)?;
        self.state.set_ready();
        Ok(setup)
    }

    /// Locks the head and reads what other processes appended after
    /// `head`. A lost connection is retried (nothing was written) until
    /// `reconnect_within`; an error the server answered is not.
    async fn begin(&mut self, head: u64) -> Result<Began, Rejection> {
        let deadline = Instant::now() + self.options.reconnect_within;
        loop {
            match self.begin_once(head).await {
                Ok(began) => return Ok(began),
                Err(e) => {
                    self.end_transaction().await;
                    if !e.lost || Instant::now() >= deadline {
                        let why = format!("starting a batch after position {head}: {}", e.message);
                        return Err(Rejection::NotWritten(why));
                    }
                    self.conn.close();
                    tokio::time::sleep(RETRY_PAUSE).await;
                }
            }
        }
    }

    async fn begin_once(&mut self, head: u64) -> Result<Began, DbErr> {
        let live = self.conn.live(None).await?;
        // From here, whatever fails, the transaction is rolled back.
        self.in_transaction = true;
        // One round trip: the read of what others appended is a statement
        // of its own, so its snapshot is taken once the lock is held and
        // sees every batch committed before it.
        let begin = live.client.batch_execute("BEGIN").map_err(DbErr::from);
        let lock = live
            .client
            .query_one(&live.statements.lock_head, &[])
            .map_err(DbErr::from);
        let read = read_after(&live.client, &live.statements, head, i64::MAX);
        let (_, row, rows) = try_join3(begin, lock, read).await?;
        let db_head = as_position(row.get::<_, i64>(0));
        Ok(Began {
            head: db_head,
            rows,
        })
    }

    async fn known(&mut self, ids: &[Uuid]) -> Result<Vec<(Uuid, Known)>, Rejection> {
        let result = match self.conn.current() {
            Some(live) => live
                .client
                .query(&live.statements.known, &[&ids])
                .await
                .map_err(DbErr::from),
            None => Err(DbErr::lost("the connection closed")),
        };
        match result {
            Ok(rows) => Ok(rows
                .iter()
                .map(|r| {
                    let known = Known {
                        position: as_position(r.get(1)),
                        version: as_position(r.get(2)),
                        count: as_position(r.get(3)),
                    };
                    (r.get(0), known)
                })
                .collect()),
            Err(e) => {
                self.end_transaction().await;
                Err(Rejection::NotWritten(format!(
                    "looking up the batch's event ids: {}",
                    e.message
                )))
            }
        }
    }

    async fn commit(&mut self, batch: &Outgoing) -> Result<(), Rejection> {
        let result = self.commit_once(batch).await;
        self.in_transaction = false;
        let span = format!("positions {}..={}", batch.first, batch.last);
        match result {
            Ok(()) => Ok(()),
            Err(e) if !e.lost => {
                // The pipelined COMMIT ended the failed transaction as a
                // rollback; make sure of it.
                self.rollback().await;
                Err(Rejection::NotWritten(format!(
                    "committing {span}: {}",
                    e.message
                )))
            }
            Err(e) => self.resolve(batch, &span, e).await,
        }
    }

    async fn commit_once(&mut self, b: &Outgoing) -> Result<(), DbErr> {
        let Some(live) = self.conn.current() else {
            // The transaction died with its connection before the commit
            // was sent: certainly not committed.
            return Err(DbErr {
                message: "the connection closed before the commit was sent".into(),
                lost: false,
            });
        };
        let (first, last, events) = (b.first as i64, b.last as i64, b.events as i32);
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 9] = [
            &first,
            &last,
            &events,
            &b.batch_id,
            &b.body,
            &b.ids,
            &b.id_positions,
            &b.id_versions,
            &b.id_counts,
        ];
        let append = live.client.query(&live.statements.append, &params);
        let commit = live.client.batch_execute("COMMIT");
        try_join(append, commit).await?;
        Ok(())
    }

    /// The connection was lost while committing: find out whether the
    /// batch is in the log.
    async fn resolve(&mut self, b: &Outgoing, span: &str, lost: DbErr) -> Result<(), Rejection> {
        let deadline = Instant::now() + self.options.reconnect_within;
        loop {
            self.conn.close();
            match self.find(b).await {
                Ok(true) => {
                    tracing::info!(%span, "the connection was lost while committing; the batch was committed");
                    return Ok(());
                }
                Ok(false) => {
                    return Err(Rejection::NotWritten(format!(
                        "the connection was lost while committing {span} ({}); after reconnecting, the batch was not in the log",
                        lost.message
                    )))
                }
                Err(e) if Instant::now() < deadline => {
                    tracing::debug!(error = %e.message, "resolving a commit: retrying");
                    tokio::time::sleep(RETRY_PAUSE).await;
                }
                Err(e) => {
                    return Err(Rejection::Unknown(format!(
                        "the connection was lost while committing {span} ({}), and the database could not be asked whether the commit happened within {:?} ({})",
                        lost.message, self.options.reconnect_within, e.message
                    )))
                }
            }
        }
    }

    /// Whether the batch is in the log, asked under the head's lock (which
    /// the transaction that committed it, or did not, has let go of).
    async fn find(&mut self, b: &Outgoing) -> Result<bool, DbErr> {
        let live = self.conn.live(None).await?;
        let begin = live.client.batch_execute("BEGIN");
        let lock = live.client.query_one(&live.statements.lock_head, &[]);
        let found = try_join(begin, lock).await;
        let found = match found {
            Ok(_) => live
                .client
                .query_opt(&live.statements.batch_at, &[&(b.first as i64)])
                .await
                .map_err(DbErr::from),
            Err(e) => Err(DbErr::from(e)),
        };
        let _ = live.client.batch_execute("ROLLBACK").await;
        let row = found?;
        Ok(row.is_some_and(|r| r.get::<_, Uuid>(0) == b.batch_id))
    }

    /// Ends an open transaction without committing it.
    async fn end_transaction(&mut self) {
        if std::mem::take(&mut self.in_transaction) {
            self.rollback().await;
        }
    }

    async fn rollback(&mut self) {
        if let Some(live) = self.conn.current() {
            if let Err(e) = live.client.batch_execute("ROLLBACK").await {
                let e = DbErr::from(e);
                tracing::debug!(error = %e.message, "rollback failed; reconnecting");
                self.conn.close();
            }
        }
    }
}
