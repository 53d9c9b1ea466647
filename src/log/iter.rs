//! Iterators over the log: by range of positions (both directions) and by
//! stream, each reading the log as it was when it was made.

use crate::event::{Batch, EventRef, Recorded};
use crate::position::Position;
use crate::sync::Arc;

use super::memory::Table;

/// An iterator over a range of the log, from [`Log::read_all`](crate::Log::read_all).
pub struct LogIter<E> {
    table: Table<E>,
    front: u64,
    back: u64,
    /// The batch read last, from either end.
    last: LastBatch<E>,
}

impl<E> LogIter<E> {
    pub(super) fn new(table: Table<E>, front: u64, back: u64) -> LogIter<E> {
        LogIter {
            table,
            front,
            back,
            last: LastBatch::default(),
        }
    }

    /// Calls `f` on each remaining event, front to back, by reference: a
    /// batch at a time, without a reference count per event (replay's loop).
    pub(crate) fn for_each_ref(mut self, mut f: impl FnMut(&Recorded<E>)) {
        while self.front <= self.back {
            let Some(batch) = self.table.batch(self.front) else {
                return;
            };
            let Some(first) = batch.first().map(|e| e.position.0) else {
                return;
            };
            let from = usize::try_from(self.front - first).unwrap_or(usize::MAX);
            let to = usize::try_from(self.back - first).unwrap_or(usize::MAX);
            let run = batch.get(from..=to.min(batch.len() - 1)).unwrap_or(&[]);
            if run.is_empty() {
                return;
            }
            run.iter().for_each(&mut f);
            self.front += run.len() as u64;
        }
    }

    /// The first position the log held when this iterator was made.
    pub(super) fn first(&self) -> u64 {
        self.table.first
    }

    fn read(&mut self, position: u64) -> Option<EventRef<E>> {
        let table = &self.table;
        self.last.read(position, |p| table.batch(p))
    }
}

/// The batch a cursor read last, with its first and last positions: the
/// next event is usually in it, so reading it costs a range check and one
/// reference count instead of a lookup.
pub(crate) struct LastBatch<E>(Option<(Batch<E>, u64, u64)>);

impl<E> Default for LastBatch<E> {
    fn default() -> LastBatch<E> {
        LastBatch(None)
    }
}

impl<E> LastBatch<E> {
    /// The event at `position`, from the remembered batch if it holds it,
    /// else from the batch `fetch` finds for it, which is remembered next.
    #[inline]
    pub(crate) fn read(
        &mut self,
        position: u64,
        fetch: impl FnOnce(u64) -> Option<Batch<E>>,
    ) -> Option<EventRef<E>> {
        let covers = |(_, first, last): &(Batch<E>, u64, u64)| (*first..=*last).contains(&position);
        if !self.0.as_ref().is_some_and(covers) {
            let batch = fetch(position)?;
            let (first, last) = (batch.first()?.position.0, batch.last()?.position.0);
            self.0 = Some((batch, first, last));
        }
        let (batch, first, last) = self.0.as_ref()?;
        let index = usize::try_from(position.checked_sub(*first)?).ok()?;
        (position <= *last).then(|| EventRef::at(Arc::clone(batch), index))
    }
}

impl<E> std::fmt::Debug for LogIter<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogIter")
            .field("front", &self.front)
            .field("back", &self.back)
            .finish()
    }
}

impl<E> Iterator for LogIter<E> {
    type Item = EventRef<E>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.front > self.back {
            return None;
        }
        let r = self.read(self.front);
        self.front += 1;
        r
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = usize::try_from((self.back + 1).saturating_sub(self.front)).unwrap_or(usize::MAX);
        (n, Some(n))
    }
}

impl<E> DoubleEndedIterator for LogIter<E> {
    fn next_back(&mut self) -> Option<Self::Item> {
        if self.front > self.back {
            return None;
        }
        let r = self.read(self.back);
        self.back -= 1;
        r
    }
}

impl<E> ExactSizeIterator for LogIter<E> {}

/// An iterator over one stream, from [`Log::read_stream`](crate::Log::read_stream).
pub struct StreamIter<E> {
    table: Table<E>,
    positions: std::vec::IntoIter<Position>,
}

impl<E> StreamIter<E> {
    pub(super) fn new(table: Table<E>, positions: Vec<Position>) -> StreamIter<E> {
        StreamIter {
            table,
            positions: positions.into_iter(),
        }
    }
}

impl<E> std::fmt::Debug for StreamIter<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamIter")
            .field("remaining", &self.positions.len())
            .finish()
    }
}

impl<E> Iterator for StreamIter<E> {
    type Item = EventRef<E>;

    fn next(&mut self) -> Option<Self::Item> {
        self.table.read(self.positions.next()?.0)
    }
}
