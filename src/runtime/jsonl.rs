//! The log as JSON lines: one event per line, through serde, to move a log
//! between rwlog versions or into another store, and back.

use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, Write};
use std::ops::RangeBounds;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::event::{Event, Metadata, NewEvent};
use crate::position::{Expected, Position};
use crate::write::Ticket;

use super::Runtime;

/// How many imported appends may be in flight before the oldest is waited
/// for: the sequencer batches them.
const IN_FLIGHT: usize = 1024;

/// One exported event.
#[derive(Serialize)]
struct LineOut<'a, E> {
    position: u64,
    stream: &'a str,
    version: u64,
    id: Uuid,
    /// RFC 3339, UTC, for people; `time_ns` for programs.
    time: String,
    time_ns: u64,
    event_type: &'a str,
    schema_version: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    metadata: Option<&'a Metadata>,
    payload: &'a E,
}

/// One event to import.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LineIn<E> {
    position: u64,
    stream: String,
    version: u64,
    id: Uuid,
    // Read and checked for shape, not used: the sequencer records the
    // import's own time, type and schema version.
    #[serde(default)]
    #[allow(dead_code)]
    time: Option<String>,
    #[serde(default)]
    #[allow(dead_code)]
    time_ns: Option<u64>,
    #[serde(default)]
    #[allow(dead_code)]
    event_type: Option<String>,
    #[serde(default)]
    #[allow(dead_code)]
    schema_version: Option<u32>,
    #[serde(default)]
    metadata: Option<Metadata>,
    payload: E,
}

/// What an import did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Imported {
    /// Events read.
    pub read: u64,
    /// Events appended.
    pub appended: u64,
    /// Events the log already held (same position and id): not appended
    /// again.
    pub skipped: u64,
}

impl<E: Event + Serialize> Runtime<E> {
    /// Writes the events in `range` to `out` as JSON lines, one event per
    /// line: `position`, `stream`, `version`, `id`, `time` (RFC 3339 UTC),
    /// `time_ns`, `event_type`, `schema_version`, `metadata` (when there is
    /// any) and `payload` (the event through serde). Returns how many were
    /// written.
    ///
    /// ```
    /// use rwlog::{Event, Runtime};
    /// use serde::{Deserialize, Serialize};
    ///
    /// #[derive(Clone, Debug, Serialize, Deserialize)]
    /// struct Deposited { amount: u64 }
    /// impl Event for Deposited {}
    ///
    /// let rt = Runtime::<Deposited>::builder().build()?;
    /// rt.writer().append("alice", Deposited { amount: 5 })?;
    /// let mut out = Vec::new();
    /// assert_eq!(rt.export_jsonl(&mut out, ..)?, 1);
    ///
    /// let copy = Runtime::<Deposited>::builder().build()?;
    /// let imported = copy.import_jsonl(&out[..])?;
    /// assert_eq!(imported.appended, 1);
    /// assert_eq!(copy.log().get(rwlog::Position(1)).unwrap().payload().amount, 5);
    /// # Ok::<(), rwlog::Error>(())
    /// ```
    ///
    /// Errors: [`Error::Io`] from `out`; [`Error::Codec`] if an event does
    /// not serialize as JSON.
    pub fn export_jsonl(&self, out: impl Write, range: impl RangeBounds<Position>) -> Result<u64> {
        let mut out = std::io::BufWriter::new(out);
        let mut written = 0;
        for e in self.log().read_all(range) {
            let line = LineOut {
                position: e.position().0,
                stream: e.stream().as_str(),
                version: e.version(),
                id: e.id(),
                time: e.recorded_at().to_string(),
                time_ns: e.recorded_at().as_nanos(),
                event_type: e.payload().event_type(),
                schema_version: e.schema_version(),
                metadata: Some(e.metadata()).filter(|m| **m != Metadata::default()),
                payload: e.payload(),
            };
            serde_json::to_writer(&mut out, &line).map_err(|e| Error::Codec(e.to_string()))?;
            out.write_all(b"\n")?;
            written += 1;
        }
        out.flush()?;
        Ok(written)
    }
}

impl<E: Event + DeserializeOwned> Runtime<E> {
    /// Appends the events of a JSON-lines export (see
    /// [`export_jsonl`](Runtime::export_jsonl)) with their original ids,
    /// positions, streams and versions, in batches. Idempotent: an event
    /// this log already holds at its position with its id is skipped, so
    /// importing the same file twice, or again after an interruption, adds
    /// nothing twice. The sequencer records the import's own times.
    ///
    /// The import must be the log's only writer while it runs: up to 1,024
    /// lines are in flight at once, and should another writer append
    /// meanwhile, those already submitted land at later positions than
    /// their lines say. The import then stops with an error naming the
    /// first such line.
    ///
    /// Errors: [`Error::Import`] naming the line (1-based) when it is not
    /// an event, when its position is taken by another event or does not
    /// follow the log's head, when its version does not follow its
    /// stream's, or when it landed elsewhere (another writer appended
    /// meanwhile); lines before a refused line were imported, none after
    /// it. [`Error::Io`] from `input`.
    pub fn import_jsonl(&self, input: impl BufRead) -> Result<Imported> {
        let mut done = Imported::default();
        let mut in_flight = VecDeque::new();
        let outcome = self.import_lines(input, &mut done, &mut in_flight);
        // What was submitted before a bad line is waited for either way:
        // the lines before it are imported.
        let mut settled = Ok(());
        while let Some(oldest) = in_flight.pop_front() {
            settled = settled.and(settle(oldest, &mut done));
        }
        outcome.and(settled).map(|()| done)
    }

    fn import_lines(
        &self,
        input: impl BufRead,
        done: &mut Imported,
        in_flight: &mut VecDeque<(u64, u64, u64, Ticket)>,
    ) -> Result<()> {
        let writer = self.writer();
        let mut next = self.log().head().0 + 1;
        // Each stream's version as this import leaves it: a line whose
        // version does not follow is refused before it is submitted, so
        // no submitted append can be rejected and shift those behind it.
        let mut versions: HashMap<String, u64> = HashMap::new();
        for (n, line) in input.lines().enumerate() {
            let n = n as u64 + 1;
            let line = line?;
            if line.trim().is_empty() {
                continue;
            }
            let e: LineIn<E> = serde_json::from_str(&line).map_err(|err| Error::Import {
                line: n,
                reason: err.to_string(),
            })?;
            done.read += 1;
            if e.position < next {
                self.check_present(n, &e)?;
                done.skipped += 1;
                continue;
            }
            if e.position != next {
                let reason = format!("position {}, but the log's next is {next}", e.position);
                return Err(Error::Import { line: n, reason });
            }
            let current = self.next_version(n, &e, &mut versions)?;
            let mut event = NewEvent::new(e.payload).with_id(e.id);
            if let Some(m) = e.metadata {
                event = event.metadata(m);
            }
            let expected = Expected::Exact(current);
            let ticket = writer
                .submit_expecting(e.stream, expected, [event])
                .map_err(|err| Error::Import {
                    line: n,
                    reason: err.to_string(),
                })?;
            in_flight.push_back((n, e.position, e.version, ticket));
            next += 1;
            if in_flight.len() >= IN_FLIGHT {
                if let Some(oldest) = in_flight.pop_front() {
                    settle(oldest, done)?;
                }
            }
        }
        Ok(())
    }

    /// The version of `e`'s stream before it, once `e`'s version follows it
    /// (`versions`: each stream's version as the import leaves it).
    fn next_version(
        &self,
        n: u64,
        e: &LineIn<E>,
        versions: &mut HashMap<String, u64>,
    ) -> Result<u64> {
        let current = *versions
            .entry(e.stream.clone())
            .or_insert_with(|| self.log().stream_version(&e.stream));
        if e.version != current + 1 {
            let reason = format!(
                "version {} of stream `{}`, which is at version {current}",
                e.version, e.stream
            );
            return Err(Error::Import { line: n, reason });
        }
        versions.insert(e.stream.clone(), e.version);
        Ok(current)
    }

    /// The event of line `n` is in the log already, at its position.
    fn check_present(&self, n: u64, e: &LineIn<E>) -> Result<()> {
        let held = self.log().get(Position(e.position));
        match held {
            Some(h)
                if h.id() == e.id
                    && h.stream().as_str() == e.stream
                    && h.version() == e.version =>
            {
                Ok(())
            }
            Some(h) => Err(Error::Import {
                line: n,
                reason: format!(
                    "position {} holds another event in this log ({} of `{}` version {})",
                    e.position,
                    h.id(),
                    h.stream(),
                    h.version()
                ),
            }),
            None => Err(Error::Import {
                line: n,
                reason: format!("position {} is not in this log", e.position),
            }),
        }
    }
}

/// Waits for one imported append and checks it landed where it was.
fn settle(
    (n, position, version, ticket): (u64, u64, u64, Ticket),
    done: &mut Imported,
) -> Result<()> {
    let appended = ticket.wait().map_err(|err| Error::Import {
        line: n,
        reason: err.to_string(),
    })?;
    if appended.position.0 != position || appended.version != version {
        let reason = format!(
            "appended at position {} version {} instead of position {position} version {version}: \
             another writer appended meanwhile",
            appended.position, appended.version
        );
        return Err(Error::Import { line: n, reason });
    }
    done.appended += 1;
    Ok(())
}
