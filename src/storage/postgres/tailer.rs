//! The tailer connection: LISTENs for other processes' commits, polls the
//! head as a fallback, and serves reads that need no lock (catching up,
//! the head for strong reads). After any reconnect it reads the head again,
//! since notifications sent while it was away are lost.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};
use tokio_postgres::Config;

use super::conn::{Conn, DbErr};
use super::sql;
use super::wire::{as_position, read_after, read_holding, DbState, ReadReq};
use super::PgOptions;

/// How soon to try again after the database could not be reached.
const RETRY_PAUSE: Duration = Duration::from_millis(100);

pub(super) struct Tailer {
    options: Arc<PgOptions>,
    conn: Conn,
    /// Notified heads, while connected and listening.
    notes: Option<UnboundedReceiver<u64>>,
    state: Arc<DbState>,
    /// The database is unreachable (said once per outage).
    away: bool,
}

impl Tailer {
    pub(super) fn new(options: Arc<PgOptions>, config: Config, state: Arc<DbState>) -> Tailer {
        Tailer {
            conn: Conn::new(Arc::clone(&options), config),
            options,
            notes: None,
            state,
            away: false,
        }
    }

    pub(super) async fn run(mut self, mut requests: UnboundedReceiver<ReadReq>) {
        // Nothing to listen to until the appender has made the tables (or
        // the log is dropped before it could).
        loop {
            tokio::select! {
                // Readiness first: it is told before any request is sent.
                biased;
                _ = self.state.ready() => break,
                request = requests.recv() => match request {
                    // Answered with an error: there is no log to read yet.
                    Some(request) => drop(request),
                    None => return,
                },
            }
        }
        loop {
            if self.notes.is_none() {
                self.listen().await;
            }
            let pause = match self.notes {
                Some(_) => self.options.poll_interval,
                None => RETRY_PAUSE,
            };
            tokio::select! {
                request = requests.recv() => match request {
                    Some(request) => self.serve(request).await,
                    None => return,
                },
                note = next_note(&mut self.notes) => match note {
                    Some(head) => self.state.note(head),
                    None => self.lost("the connection closed"),
                },
                _ = tokio::time::sleep(pause) => {
                    if self.notes.is_some() {
                        let _ = self.head().await;
                    }
                }
            }
        }
    }

    /// Connects, LISTENs, and reads the head.
    async fn listen(&mut self) {
        let (tx, rx) = unbounded_channel();
        let channel = sql::channel(&self.options.schema);
        let listening = match self.conn.live(Some(tx)).await {
            Ok(live) => live
                .client
                .batch_execute(&format!("LISTEN {channel}"))
                .await
                .map_err(DbErr::from),
            Err(e) => Err(e),
        };
        match listening {
            Ok(()) => {
                if std::mem::take(&mut self.away) {
                    tracing::info!("the shared log's database is reachable again");
                }
                self.notes = Some(rx);
                let _ = self.head().await;
            }
            Err(e) => {
                self.conn.close();
                if !std::mem::replace(&mut self.away, true) {
                    tracing::warn!(error = %e.message, "the shared log's database cannot be reached; retrying");
                }
            }
        }
    }

    fn lost(&mut self, why: &str) {
        tracing::debug!(why, "the tailer's connection was lost");
        self.notes = None;
        self.conn.close();
    }

    async fn serve(&mut self, request: ReadReq) {
        if self.notes.is_none() {
            self.listen().await;
        }
        match request {
            ReadReq::After(head, limit, reply) => {
                let result = match self.conn.current() {
                    Some(live) => read_after(&live.client, &live.statements, head, limit).await,
                    None => Err(DbErr::lost("the database cannot be reached")),
                };
                let _ = reply.send(self.checked(result));
            }
            ReadReq::Holding(position, reply) => {
                let result = match self.conn.current() {
                    Some(live) => read_holding(&live.client, &live.statements, position).await,
                    None => Err(DbErr::lost("the database cannot be reached")),
                };
                let _ = reply.send(self.checked(result));
            }
            ReadReq::Head(reply) => {
                let head = self.head().await;
                let _ = reply.send(head);
            }
            ReadReq::HeadSoon(reply) => {
                let head = self.head().await;
                let _ = reply.send(head);
            }
        }
    }

    /// The head now, noted.
    async fn head(&mut self) -> Result<u64, String> {
        let result = match self.conn.current() {
            Some(live) => live
                .client
                .query_one(&live.statements.head, &[])
                .await
                .map(|r| as_position(r.get(0)))
                .map_err(DbErr::from),
            None => Err(DbErr::lost("the database cannot be reached")),
        };
        let head = self.checked(result)?;
        self.state.note(head);
        Ok(head)
    }

    /// Passes a result on, dropping the connection if it was lost.
    fn checked<T>(&mut self, result: Result<T, DbErr>) -> Result<T, String> {
        result.map_err(|e| {
            if e.lost {
                self.lost(&e.message);
            }
            e.message
        })
    }
}

/// The next notified head, or never while not listening.
async fn next_note(notes: &mut Option<UnboundedReceiver<u64>>) -> Option<u64> {
    match notes {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}
