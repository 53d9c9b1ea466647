//! A log shared by several processes through PostgreSQL.
//!
//! Every process keeps its own in-memory log, views and readers, as with
//! any other storage; the database holds the one order they all follow.
//! A process's sequencer batch is one transaction: lock the head's row,
//! read (and adopt) whatever other processes appended since this process
//! last looked, check expected versions against streams that are now up to
//! date, insert the batch as one row, move the head, NOTIFY, commit. Then
//! the batch is published to the local views and acknowledged. A tailer
//! per process LISTENs for other processes' commits (polling as a
//! fallback) and wakes the sequencer to adopt them.
//!
//! See [`sql`] for the tables.

use std::str::FromStr;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use uuid::Uuid;

mod appender;
mod conn;
mod db;
mod local;
mod sql;
mod store;
mod tailer;
mod wire;

pub(crate) use store::{PgHead, PgStore};

use super::config::{redacted, PgOptions};
use super::upcast::Upcasters;
use crate::error::{Error, Result};
use crate::event::{Event, Recorded};
use db::Db;
use wire::{AppendReq, ReadReq, Setup};

/// What opening a shared log gives the builder.
pub(crate) struct Opened<E> {
    /// The log from its first position: 1, or the local restart point's.
    pub(crate) events: Vec<Recorded<E>>,
    /// Where the local log starts when it starts from a restart point.
    pub(crate) start: Option<super::Start>,
    /// The process's local directory, if it has one.
    pub(crate) local: Option<super::DirInfo>,
    pub(crate) store: PgStore<E>,
    pub(crate) head: PgHead,
    pub(crate) log_id: Uuid,
}

/// Connects, creates or checks the schema, and reads the log: the whole
/// of it, or only what follows the local directory's restart point.
pub(crate) fn open<E: Event + serde::Serialize + DeserializeOwned>(
    options: &PgOptions,
    upcasters: Arc<Upcasters<E>>,
    views: &super::Registered,
) -> Result<Opened<E>> {
    if !sql::is_plain_schema(&options.schema) {
        return Err(Error::Config(
            "a shared log's schema name may use only lower-case letters, digits and '_', must not start with a digit or `pg_`, and is at most 48 characters",
        ));
    }
    let target = redacted(&options.url);
    let config = tokio_postgres::Config::from_str(&options.url)
        .map_err(|e| Error::Postgres(format!("the connection string {target}: {e}")))?;
    let db = Arc::new(Db::start(Arc::new(options.clone()), config)?);
    let log_id = match db.append(AppendReq::Setup) {
        Ok(Setup::Ready(id)) => id,
        Ok(Setup::Mismatch(found)) => {
            return Err(Error::SchemaMismatch {
                schema: options.schema.clone(),
                found,
                supported: sql::VERSION,
            })
        }
        Err(why) => return Err(Error::Postgres(format!("opening {target}: {why}"))),
    };
    let mut local = match &options.local {
        Some(dir) => Some(local::open(dir, log_id, views)?),
        None => None,
    };
    let (events, after) = read_log(&db, local.as_mut(), options, &upcasters, &target)?;
    let head = events.last().map_or(after, |r| r.position.0);
    db.state.adopted(head);
    tracing::info!(events = events.len(), from = after + 1, schema = %options.schema, "opened the shared log");
    let start = local
        .as_ref()
        .and_then(|l| l.restart.as_ref())
        .map(|h| h.start());
    let dir = local.as_ref().map(|l| l.info.path.clone());
    Ok(Opened {
        events,
        start,
        local: local.map(|l| l.info),
        store: PgStore::new(
            Arc::clone(&db),
            upcasters,
            options.schema.clone(),
            options.max_event_bytes,
            dir.map(|d| (d, log_id)),
        ),
        head: PgHead { db },
        log_id,
    })
}

/// The log from the local restart point if there is one (else from the
/// start), and the position it follows.
fn read_log<E: Event + DeserializeOwned>(
    db: &Db,
    local: Option<&mut local::Local>,
    options: &PgOptions,
    upcasters: &Upcasters<E>,
    target: &str,
) -> Result<(Vec<Recorded<E>>, u64)> {
    let Some(local) = local.filter(|l| l.restart.is_some()) else {
        return Ok((read_after(db, 0, options, upcasters)?, 0));
    };
    let after = local.restart.as_ref().map_or(0, |h| h.first.0 - 1);
    let last_id = local.restart.as_ref().map(|h| h.last_id);
    if ends_batch(db, after, last_id, options, upcasters, target)? {
        return Ok((read_after(db, after, options, upcasters)?, after));
    }
    // The database does not hold the history the restart point was made
    // from (restored from an older backup, perhaps appended to since):
    // this process's snapshots cannot be trusted either.
    tracing::warn!(
        restart = after,
        "the shared log does not hold the local restart point's history: reading all of it"
    );
    local.restart = None;
    Ok((read_after(db, 0, options, upcasters)?, 0))
}

/// Whether the database holds a batch ending at `position` whose last
/// event has the id `last_id`.
fn ends_batch<E: Event + DeserializeOwned>(
    db: &Db,
    position: u64,
    last_id: Option<Uuid>,
    options: &PgOptions,
    upcasters: &Upcasters<E>,
    target: &str,
) -> Result<bool> {
    let rows = db
        .read(|reply| ReadReq::Holding(position, reply))
        .map_err(|why| Error::Postgres(format!("reading the log from {target}: {why}")))?;
    let Some(row) = rows.into_iter().next().filter(|r| r.last == position) else {
        return Ok(false);
    };
    let before = row.first.saturating_sub(1);
    let events = store::decode(vec![row], before, &options.schema, upcasters).ok();
    let last = events.as_ref().and_then(|e| e.last()).map(|e| e.id);
    Ok(last.is_some() && last == last_id)
}

/// Every event after position `after`, read in pages.
fn read_after<E: Event + DeserializeOwned>(
    db: &Db,
    after: u64,
    options: &PgOptions,
    upcasters: &Upcasters<E>,
) -> Result<Vec<Recorded<E>>> {
    let mut events: Vec<Recorded<E>> = Vec::new();
    loop {
        let head = events.last().map_or(after, |r| r.position.0);
        let rows = db
            .read(|reply| ReadReq::After(head, 1024, reply))
            .map_err(|why| {
                let target = redacted(&options.url);
                Error::Postgres(format!("reading the log from {target}: {why}"))
            })?;
        if rows.is_empty() {
            return Ok(events);
        }
        events.extend(store::decode(rows, head, &options.schema, upcasters)?);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_names_are_plain() {
        assert!(sql::is_plain_schema("rwlog"));
        assert!(sql::is_plain_schema("_bank_2"));
        assert!(!sql::is_plain_schema("2bank"));
        assert!(!sql::is_plain_schema("Bank"));
        assert!(!sql::is_plain_schema("a\"; drop"));
        assert!(!sql::is_plain_schema(""));
        assert!(!sql::is_plain_schema("pg_bank"));
        assert!(!sql::is_plain_schema(&"a".repeat(49)));
    }
}
