//! The dual writer: append the event, then apply it to the legacy state.

use std::fmt;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::state::Inner;
use super::Legacy;
use crate::error::Result;
use crate::event::{Event, NewEvent};
use crate::position::{Expected, StreamId};
use crate::write::{Appended, Writer};

/// Writes both sides of a migration: appends the event, then (until the
/// cut-over) applies it to the legacy state, in log order, and returns once
/// both are done. From [`Migration::writer`](super::Migration::writer);
/// clone it for each thread.
///
/// Outcomes:
/// - `Ok`: the log holds the event, the views show it, and the legacy state
///   holds it too unless the migration is cut over.
/// - The append's error: nothing changed on either side (counted as a
///   failed append).
/// - [`Error::Legacy`](crate::Error::Legacy): the log holds the event (at
///   the error's position) but the legacy store failed to apply it. It is
///   counted and traced; verification will show the difference, and the
///   legacy state goes on with the events after it.
///
/// Events appended by other writers of the runtime are applied to the
/// legacy state too, in their place in the log, by the next dual write (or
/// by the cut-over).
pub struct DualWriter<E: Event, L> {
    inner: Arc<Inner<E, L>>,
}

impl<E: Event, L> Clone for DualWriter<E, L> {
    fn clone(&self) -> Self {
        DualWriter {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<E: Event, L> fmt::Debug for DualWriter<E, L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DualWriter").finish_non_exhaustive()
    }
}

impl<E: Event, L: Legacy<E>> DualWriter<E, L> {
    pub(super) fn new(inner: Arc<Inner<E, L>>) -> DualWriter<E, L> {
        DualWriter { inner }
    }

    /// [`Writer::append`] on both sides.
    pub fn append(
        &self,
        stream: impl Into<StreamId>,
        event: impl Into<NewEvent<E>>,
    ) -> Result<Appended> {
        self.write(|w| w.append(stream, event))
    }

    /// [`Writer::append_batch`] on both sides: atomic in the log and its
    /// views, applied to the legacy state event by event (each a
    /// [`Legacy::apply`]), so a reader of the legacy state may see part of
    /// the batch. Where that matters, make the change one event.
    pub fn append_batch<I>(&self, stream: impl Into<StreamId>, events: I) -> Result<Appended>
    where
        I: IntoIterator,
        I::Item: Into<NewEvent<E>>,
    {
        self.write(|w| w.append_batch(stream, events))
    }

    /// [`Writer::append_expecting`] on both sides.
    pub fn append_expecting<I>(
        &self,
        stream: impl Into<StreamId>,
        expected: Expected,
        events: I,
    ) -> Result<Appended>
    where
        I: IntoIterator,
        I::Item: Into<NewEvent<E>>,
    {
        self.write(|w| w.append_expecting(stream, expected, events))
    }

    fn write(&self, append: impl FnOnce(&Writer<E>) -> Result<Appended>) -> Result<Appended> {
        let inner = &*self.inner;
        // Held until the legacy state has the event: a cut-over waits for
        // it, and the phase cannot change in between.
        let _gate = inner.enter();
        let live = inner.live.load(Ordering::Acquire);
        let appended = append(&inner.writer).inspect_err(|_| {
            inner
                .counters
                .failed_appends
                .fetch_add(1, Ordering::Relaxed);
        })?;
        inner.counters.writes.fetch_add(1, Ordering::Relaxed);
        if live {
            inner.follow_to(appended.position, false)?;
            if let Some(failed) = inner.collect(appended.first_position(), appended.position) {
                return Err(failed);
            }
        }
        Ok(appended)
    }
}
