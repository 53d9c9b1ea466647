//! Every stream's current version, as the sequencer keeps it.

use std::collections::HashMap;

use crate::error::Result;
use crate::position::StreamId;

/// Every stream's current version. The sequencer is the only writer of
/// streams, so its own map is authoritative and needs no lock.
///
/// Consecutive appends to one stream (a writer's submits, batched) look
/// its version up once: the stream of the last append and its version are
/// kept aside (`run`), and written back when another stream comes or the
/// batch ends ([`end_run`](Versions::end_run)).
pub(super) struct Versions {
    map: HashMap<StreamId, u64, foldhash::fast::RandomState>,
    /// The last stream appended to, its version, and whether `map` is
    /// behind it.
    run: Option<(StreamId, u64, bool)>,
}

impl Versions {
    pub(super) fn new(versions: impl IntoIterator<Item = (StreamId, u64)>) -> Versions {
        Versions {
            map: versions.into_iter().collect(),
            run: None,
        }
    }

    /// Runs `append` with the stream's current version; when it returns
    /// how many events it appended, the version moves on by that many.
    pub(super) fn advance<T>(
        &mut self,
        stream: StreamId,
        append: impl FnOnce(&StreamId, u64) -> Result<(u64, T)>,
    ) -> Result<T> {
        let cached = match &self.run {
            Some((last, version, _)) if *last == stream => Some(*version),
            _ => None,
        };
        if cached.is_none() {
            self.end_run();
        }
        // One hash lookup for a known stream: the slot found here is the
        // one updated below.
        let slot = match cached {
            Some(_) => None,
            None => self.map.get_mut(&stream),
        };
        let current = cached.or(slot.as_deref().copied()).unwrap_or(0);
        let (count, out) = append(&stream, current)?;
        let version = current + count;
        match (cached, slot) {
            (Some(_), _) => self.run = Some((stream, version, true)),
            (None, Some(slot)) => {
                *slot = version;
                self.run = Some((stream, version, false));
            }
            (None, None) => {
                self.map.insert(stream, version);
            }
        }
        Ok(out)
    }

    /// Writes the version of the last stream appended to back to the map
    /// if it moved on since it was looked up: at the end of every batch.
    pub(super) fn end_run(&mut self) {
        if let Some((stream, version, true)) = self.run.take() {
            self.map.insert(stream, version);
        }
    }

    /// Sets a stream's version (another process's append; an undone one).
    pub(super) fn set(&mut self, stream: StreamId, version: u64) {
        self.end_run();
        self.map.insert(stream, version);
    }

    /// Every stream's version (between batches: none is kept aside).
    pub(super) fn iter(&self) -> impl Iterator<Item = (&StreamId, &u64)> {
        debug_assert!(self.run.as_ref().is_none_or(|r| !r.2));
        self.map.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn appending(n: u64) -> impl FnOnce(&StreamId, u64) -> Result<(u64, u64)> {
        move |_, current| Ok((n, current))
    }

    #[test]
    fn a_run_of_appends_to_one_stream_is_written_back_when_it_ends() {
        let a = StreamId::from("a");
        let b = StreamId::from("b");
        let mut v = Versions::new([(a.clone(), 3)]);
        assert_eq!(v.advance(a.clone(), appending(1)).unwrap(), 3);
        assert_eq!(v.advance(a.clone(), appending(2)).unwrap(), 4);
        assert_eq!(v.advance(a.clone(), appending(1)).unwrap(), 6);
        // Another stream ends the run: a's version is in the map.
        assert_eq!(v.advance(b.clone(), appending(1)).unwrap(), 0);
        assert_eq!(v.map[&a], 7);
        assert_eq!(v.advance(b.clone(), appending(1)).unwrap(), 1);
        v.end_run();
        assert_eq!((v.map[&a], v.map[&b]), (7, 2));
        assert!(v.run.is_none());
    }

    #[test]
    fn a_refused_append_leaves_the_version() {
        let a = StreamId::from("a");
        let mut v = Versions::new([]);
        v.advance(a.clone(), appending(2)).unwrap();
        let refused = v.advance(a.clone(), |_, _| -> Result<(u64, ())> {
            Err(crate::Error::Closed)
        });
        assert!(refused.is_err());
        assert_eq!(v.advance(a.clone(), appending(1)).unwrap(), 2);
        v.set(StreamId::from("b"), 9);
        assert_eq!((v.map[&a], v.map[&StreamId::from("b")]), (3, 9));
    }
}
