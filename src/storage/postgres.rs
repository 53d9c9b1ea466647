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
    pub(crate) events: Vec<Recorded<E>>,
    pub(crate) store: PgStore<E>,
    pub(crate) head: PgHead,
    pub(crate) log_id: Uuid,
}

/// Connects, creates or checks the schema, and reads the whole log.
pub(crate) fn open<E: Event + serde::Serialize + DeserializeOwned>(
    options: &PgOptions,
    upcasters: Arc<Upcasters<E>>,
) -> Result<Opened<E>> {
    if !sql::is_plain_schema(&options.schema) {
        return Err(Error::Config(
            "a shared log's schema name may use only lower-case letters, digits and '_', must not start with a digit, and is at most 48 characters",
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
    let mut events: Vec<Recorded<E>> = Vec::new();
    loop {
        let head = events.last().map_or(0, |r| r.position.0);
        let rows = db
            .read(|reply| ReadReq::After(head, 1024, reply))
            .map_err(|why| Error::Postgres(format!("reading the log from {target}: {why}")))?;
        if rows.is_empty() {
            break;
        }
        events.extend(store::decode(rows, head, &options.schema, &upcasters)?);
    }
    db.state.adopted(events.last().map_or(0, |r| r.position.0));
    tracing::info!(events = events.len(), schema = %options.schema, "opened the shared log");
    Ok(Opened {
        events,
        store: PgStore::new(
            Arc::clone(&db),
            upcasters,
            options.schema.clone(),
            options.max_event_bytes,
        ),
        head: PgHead { db },
        log_id,
    })
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
        assert!(!sql::is_plain_schema(&"a".repeat(49)));
    }
}
