//! The shared log's tables, created and versioned by rwlog, and the
//! statements that read and append.
//!
//! ```text
//! <schema>.rwlog_migrations (version, applied_at)       one row per applied version
//! <schema>.head             (only_row, log_id, position) one row: the log's id and head, locked by every append
//! <schema>.batches          (first, last, events, batch_id, body)  one row per sequencer batch
//! <schema>.event_ids        (id, position, version, count)  appends whose first event's id the writer gave
//! ```
//!
//! A batch's `body` is its events' frames exactly as a segment file holds
//! them (`[length][CRC32C][body]` each), so one codec serves both engines.
//! Positions are given under the lock on `head`'s row, in the transaction
//! that inserts the batch: a rolled-back append leaves no hole, and batches
//! become visible strictly in the order of their positions.
//!
//! There is no table of stream versions: under the head's lock a process
//! has read every batch up to the head, so the versions it derives from
//! its log are the database's, and expected versions are checked against
//! them. (Keeping such a table cost 40% of the append rate with 1,000
//! streams written at random.)

use tokio_postgres::{Client, Statement};
use uuid::Uuid;

/// The version of the tables this rwlog reads and writes.
pub(super) const VERSION: i32 = 1;

/// What the schema's migrations table said.
pub(super) enum Migrated {
    /// The tables are there at `VERSION`: the log's id.
    Ready(Uuid),
    /// The tables are at another version.
    Mismatch(i32),
}

/// Creates the schema and its tables if they are missing (under an
/// advisory lock, so processes opening at once create them once), and
/// checks their version.
pub(super) async fn migrate(
    client: &Client,
    schema: &str,
) -> Result<Migrated, tokio_postgres::Error> {
    client.batch_execute("BEGIN").await?;
    let result = migrate_in_transaction(client, schema).await;
    let end = if result.is_ok() { "COMMIT" } else { "ROLLBACK" };
    client.batch_execute(end).await?;
    result
}

async fn migrate_in_transaction(
    client: &Client,
    schema: &str,
) -> Result<Migrated, tokio_postgres::Error> {
    let key = format!("rwlog schema {schema}");
    client
        .execute("SELECT pg_advisory_xact_lock(hashtext($1))", &[&key])
        .await?;
    client
        .batch_execute(&format!(
            "CREATE SCHEMA IF NOT EXISTS {s};
             CREATE TABLE IF NOT EXISTS {s}.rwlog_migrations (
                 version integer PRIMARY KEY,
                 applied_at timestamptz NOT NULL DEFAULT now())",
            s = quoted(schema)
        ))
        .await?;
    let row = client
        .query_one(
            &format!(
                "SELECT max(version) FROM {}.rwlog_migrations",
                quoted(schema)
            ),
            &[],
        )
        .await?;
    let version: Option<i32> = row.get(0);
    match version {
        None => create_tables(client, schema).await,
        Some(VERSION) => {
            let row = client
                .query_one(&format!("SELECT log_id FROM {}.head", quoted(schema)), &[])
                .await?;
            Ok(Migrated::Ready(row.get(0)))
        }
        Some(other) => Ok(Migrated::Mismatch(other)),
    }
}

async fn create_tables(client: &Client, schema: &str) -> Result<Migrated, tokio_postgres::Error> {
    let log_id = Uuid::new_v4();
    client
        .batch_execute(&format!(
            "CREATE TABLE {s}.head (
                 only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
                 log_id uuid NOT NULL,
                 position bigint NOT NULL CHECK (position >= 0));
             CREATE TABLE {s}.batches (
                 first bigint PRIMARY KEY CHECK (first >= 1),
                 last bigint NOT NULL,
                 events integer NOT NULL CHECK (events >= 1),
                 batch_id uuid NOT NULL,
                 body bytea NOT NULL,
                 CHECK (last = first + events - 1));
             CREATE TABLE {s}.event_ids (
                 id uuid PRIMARY KEY,
                 position bigint NOT NULL,
                 version bigint NOT NULL,
                 count bigint NOT NULL)",
            s = quoted(schema)
        ))
        .await?;
    client
        .execute(
            &format!(
                "INSERT INTO {}.head (log_id, position) VALUES ($1, 0)",
                quoted(schema)
            ),
            &[&log_id],
        )
        .await?;
    client
        .execute(
            &format!(
                "INSERT INTO {}.rwlog_migrations (version) VALUES ($1)",
                quoted(schema)
            ),
            &[&VERSION],
        )
        .await?;
    Ok(Migrated::Ready(log_id))
}

/// The statements of one connection, prepared once per connection.
pub(super) struct Statements {
    /// The head's position, locked until the transaction ends.
    pub(super) lock_head: Statement,
    /// The head's position.
    pub(super) head: Statement,
    /// Batches after position $1, in order, at most $2 of them (a
    /// process's log always ends at a batch's end; the primary key serves
    /// the range).
    pub(super) read_after: Statement,
    /// The batch holding position $1 (the last one starting at or before it).
    pub(super) holding: Statement,
    /// The batch id at first position $1.
    pub(super) batch_at: Statement,
    /// The appends, among ids $1, the log holds.
    pub(super) known: Statement,
    /// Inserts a batch and its keyed ids, moves the head and notifies the
    /// tailers, in one statement.
    pub(super) append: Statement,
}

impl Statements {
    pub(super) async fn prepare(
        client: &Client,
        schema: &str,
    ) -> Result<Statements, tokio_postgres::Error> {
        let s = quoted(schema);
        let channel = channel(schema);
        Ok(Statements {
            lock_head: client
                .prepare(&format!("SELECT position FROM {s}.head FOR UPDATE"))
                .await?,
            head: client
                .prepare(&format!("SELECT position FROM {s}.head"))
                .await?,
            read_after: client
                .prepare(&format!(
                    "SELECT first, last, events, body FROM {s}.batches
                     WHERE first > $1 ORDER BY first LIMIT $2"
                ))
                .await?,
            holding: client
                .prepare(&format!(
                    "SELECT first, last, events, body FROM {s}.batches
                     WHERE first <= $1 ORDER BY first DESC LIMIT 1"
                ))
                .await?,
            batch_at: client
                .prepare(&format!(
                    "SELECT batch_id FROM {s}.batches WHERE first = $1"
                ))
                .await?,
            known: client
                .prepare(&format!(
                    "SELECT id, position, version, count FROM {s}.event_ids WHERE id = ANY($1)"
                ))
                .await?,
            append: client.prepare(&append_sql(&s, &channel)).await?,
        })
    }
}

fn append_sql(s: &str, channel: &str) -> String {
    format!(
        "WITH batch AS (
             INSERT INTO {s}.batches (first, last, events, batch_id, body)
             VALUES ($1, $2, $3, $4, $5)),
         ids AS (
             INSERT INTO {s}.event_ids (id, position, version, count)
             SELECT * FROM unnest($6::uuid[], $7::bigint[], $8::bigint[], $9::bigint[])),
         moved AS (
             UPDATE {s}.head SET position = $2 RETURNING position)
         SELECT pg_notify('{channel}', position::text) FROM moved"
    )
}

/// The NOTIFY channel of the log in `schema`.
pub(super) fn channel(schema: &str) -> String {
    format!("rwlog_{schema}")
}

/// `schema` as a quoted identifier (names are checked to be plain when
/// configured, so this never needs escaping; quoting keeps them exact).
pub(super) fn quoted(schema: &str) -> String {
    format!("\"{schema}\"")
}

/// Whether `schema` may name a shared log: lower-case letters, digits and
/// `_`, not starting with a digit, at most 48 characters (the NOTIFY
/// channel adds 6 to PostgreSQL's 63).
pub(super) fn is_plain_schema(schema: &str) -> bool {
    let mut chars = schema.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_');
    // PostgreSQL keeps names starting with `pg_` for itself.
    first_ok
        && !schema.starts_with("pg_")
        && schema.len() <= 48
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}
