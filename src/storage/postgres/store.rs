//! The sequencer's store for a shared log: stages a batch as the frames a
//! segment would hold, commits it under the head's lock, and reads back
//! what other processes appended, checking that positions are dense.

use std::path::PathBuf;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::Serialize;
use uuid::Uuid;

use super::db::Db;
use super::wire::{AppendReq, Outgoing, ReadReq, Row};
use crate::error::{Error, Result};
use crate::event::{Event, Recorded};
use crate::storage::frame::{self, Damage};
use crate::storage::store::{Failure, Known, Rejection, SharedHead, Store};
use crate::storage::upcast::Upcasters;

/// How many batches one catch-up reads at most.
const CATCH_UP_BATCHES: i64 = 256;

pub(crate) struct PgStore<E> {
    db: Arc<Db>,
    upcasters: Arc<Upcasters<E>>,
    schema: String,
    max_event_bytes: u32,
    /// The batch being staged.
    out: Outgoing,
    /// The process's local directory (restart points go there) and the
    /// log's id.
    local: Option<(std::path::PathBuf, uuid::Uuid)>,
}

impl<E> PgStore<E> {
    pub(super) fn new(
        db: Arc<Db>,
        upcasters: Arc<Upcasters<E>>,
        schema: String,
        max_event_bytes: u32,
        local: Option<(std::path::PathBuf, uuid::Uuid)>,
    ) -> PgStore<E> {
        PgStore {
            db,
            upcasters,
            schema,
            max_event_bytes,
            out: Outgoing::default(),
            local,
        }
    }

    fn clear(&mut self) -> Outgoing {
        std::mem::take(&mut self.out)
    }
}

impl<E: Event + Serialize + DeserializeOwned> Store<E> for PgStore<E> {
    fn begin(&mut self, head: u64) -> Result<Vec<Recorded<E>>, Failure> {
        self.clear();
        let began = self
            .db
            .append(|reply| AppendReq::Begin(head, reply))
            .map_err(Failure::Batch)?;
        match decode(began.rows, head, &self.schema, &self.upcasters) {
            Ok(foreign) if foreign.last().map_or(head, |r| r.position.0) == began.head => {
                self.db.state.adopted(began.head);
                Ok(foreign)
            }
            Ok(_) => Err(self.corrupt(format!(
                "the head says {} but the batches end elsewhere",
                began.head
            ))),
            Err(e) => Err(self.damaged(e)),
        }
    }

    fn known(&mut self, ids: &[Uuid]) -> Result<Vec<(Uuid, Known)>, Failure> {
        let ids = ids.to_vec();
        self.db
            .append(|reply| AppendReq::Known(ids, reply))
            .map_err(Failure::Batch)
    }

    fn stage(&mut self, records: &[Recorded<E>], keyed: bool) -> Result<()> {
        let (Some(first), Some(last)) = (records.first(), records.last()) else {
            return Ok(());
        };
        let start = self.out.body.len();
        for r in records {
            if let Err(e) = frame::encode_frame(&mut self.out.body, r, self.max_event_bytes) {
                self.out.body.truncate(start);
                return Err(e);
            }
        }
        if self.out.events == 0 {
            self.out.first = first.position.0;
        }
        self.out.last = last.position.0;
        self.out.events += records.len() as u32;
        if keyed {
            self.out.ids.push(first.id);
            self.out.id_positions.push(last.position.0 as i64);
            self.out.id_versions.push(last.version as i64);
            self.out.id_counts.push(records.len() as i64);
        }
        Ok(())
    }

    fn commit(&mut self) -> Result<(), Failure> {
        let mut out = self.clear();
        out.batch_id = Uuid::new_v4();
        let (last, bytes) = (out.last, out.body.len());
        let result = self
            .db
            .append(|reply| AppendReq::Commit(Box::new(out), reply));
        match result {
            Ok(()) => {
                self.db.state.adopted(last);
                crate::telemetry::storage_written(bytes);
                Ok(())
            }
            Err(rejection) => Err(Failure::Batch(rejection)),
        }
    }

    fn abort(&mut self) {
        self.clear();
        self.db.tell(AppendReq::Abort);
    }

    fn behind(&self, head: u64) -> bool {
        self.db.state.remote_head() > head
    }

    fn catch_up(&mut self, head: u64) -> Result<Vec<Recorded<E>>, Failure> {
        let rows = self
            .db
            .read(|reply| ReadReq::After(head, CATCH_UP_BATCHES, reply))
            .map_err(|why| Failure::Batch(Rejection::NotWritten(why)))?;
        let foreign =
            decode(rows, head, &self.schema, &self.upcasters).map_err(|e| self.damaged(e))?;
        self.db
            .state
            .adopted(foreign.last().map_or(head, |r| r.position.0));
        Ok(foreign)
    }

    fn is_shared(&self) -> bool {
        true
    }

    fn keeps_restart_points(&self) -> bool {
        self.local.is_some()
    }

    fn save_restart_point(&mut self, start: &crate::storage::Start) -> std::io::Result<()> {
        let Some((dir, log_id)) = &self.local else {
            return Ok(());
        };
        let restart = crate::storage::Horizon {
            log_id: *log_id,
            first: start.first,
            last_id: start.before_id,
            last_time: start.before_time,
            mode: Default::default(),
            versions: start.versions.clone(),
        };
        super::local::save(dir, &restart)
    }
}

impl<E> PgStore<E> {
    fn corrupt(&self, reason: String) -> Failure {
        let e = Error::Corrupt {
            file: PathBuf::from(format!("{}.batches", self.schema)),
            offset: 0,
            reason,
        };
        self.damaged(e)
    }

    /// The log read back is damaged (or an event does not decode): no more
    /// appends, since what follows it cannot be trusted.
    fn damaged(&self, e: Error) -> Failure {
        self.db.tell(AppendReq::Abort);
        Failure::Fatal(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            e.to_string(),
        ))
    }
}

/// Decodes stored batches that must continue the log after `head`,
/// checking that every position is the one after the last.
pub(super) fn decode<E: Event + DeserializeOwned>(
    rows: Vec<Row>,
    mut head: u64,
    schema: &str,
    upcasters: &Upcasters<E>,
) -> Result<Vec<Recorded<E>>> {
    let mut out = Vec::new();
    for row in rows {
        let corrupt = |offset: usize, reason: String| Error::Corrupt {
            file: PathBuf::from(format!(
                "{schema}.batches, the batch at position {}",
                row.first
            )),
            offset: offset as u64,
            reason,
        };
        let dense = row.first == head + 1
            && u64::from(row.events) == (row.last + 1).saturating_sub(row.first);
        if !dense {
            return Err(corrupt(0, format!(
                "it holds positions {}..={} ({} events), but the log before it ends at {head}: positions must be dense",
                row.first, row.last, row.events
            )));
        }
        let count = u64::from(row.events);
        frame::decode_body(&row.body, row.first, count, upcasters, &mut out).map_err(
            |e| match e {
                Damage::At(offset, reason) => corrupt(offset, reason),
                Damage::Decode(_, e) => e,
            },
        )?;
        head = row.last;
    }
    Ok(out)
}

/// A shared log's head, for readers.
pub(crate) struct PgHead {
    pub(super) db: Arc<Db>,
}

impl SharedHead for PgHead {
    fn head(&self) -> Result<u64> {
        let head = self
            .db
            .read(ReadReq::Head)
            .map_err(|why| Error::Postgres(format!("reading the shared log's head: {why}")))?;
        Ok(head)
    }

    fn head_async(
        &self,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<u64>> + Send + 'static>> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.db.read_async(ReadReq::HeadSoon(tx));
        Box::pin(async move {
            let head = rx
                .await
                .unwrap_or_else(|_| Err("rwlog's database thread has ended".into()));
            head.map_err(|why| Error::Postgres(format!("reading the shared log's head: {why}")))
        })
    }

    fn set_wake(&self, wake: Box<dyn Fn() + Send + Sync>) {
        self.db.state.set_wake(wake);
    }
}
