//! The hub: what every part of a running runtime shares. The log, the
//! wake-up signal, the shutdown gate, the sequencer's counters and whether
//! it has exited. Writers, the sequencer, readers, subscriptions,
//! projections and actors all reach the runtime through it.

use crate::error::Result;
use crate::event::{Event, Timestamp};
use crate::faults::Faults;
use crate::log::Log;
use crate::position::Position;
use crate::read::{Pending, Timeline};
use crate::signal::Signal;
use crate::storage::SharedHead;
use crate::sync::{Arc, AtomicBool, AtomicU64, OnceLock, Ordering};
use crate::write::Gate;

/// What the runtime's handles share.
pub(crate) struct Hub<E> {
    pub(crate) log: Log<E>,
    pub(crate) signal: Signal,
    pub(crate) gate: Arc<Gate>,
    /// Set when the sequencer has ended: nothing is published again.
    exited: AtomicBool,
    pub(crate) counters: Counters,
    /// Why the durable log failed, once it has.
    pub(crate) storage_failure: OnceLock<String>,
    /// A log other processes append to: its head in the database.
    shared: Option<Arc<dyn SharedHead>>,
}

impl<E> Hub<E> {
    pub(crate) fn new(log: Log<E>, faults: Faults, shared: Option<Arc<dyn SharedHead>>) -> Hub<E> {
        Hub {
            log,
            signal: Signal::new(faults),
            gate: Arc::new(Gate::new(faults)),
            exited: AtomicBool::new(false),
            counters: Counters::default(),
            storage_failure: OnceLock::new(),
            shared,
        }
    }

    /// Whether the sequencer has ended: nothing will be published again.
    pub(crate) fn exited(&self) -> bool {
        // Acquire pairs with the Release store in `set_exited`: whoever sees
        // the exit also sees the final batch in the log.
        self.exited.load(Ordering::Acquire)
    }

    /// Marks the sequencer as ended and wakes every waiter.
    pub(crate) fn set_exited(&self) {
        // Release pairs with the Acquire load in `exited`.
        self.exited.store(true, Ordering::Release);
        self.signal.notify();
    }
}

impl<E: Event> Timeline for Hub<E> {
    fn head(&self) -> Position {
        self.log.head()
    }

    fn shared_head_async(&self) -> Pending<'_, Result<Position>> {
        match &self.shared {
            Some(shared) if !Hub::exited(self) => {
                let head = shared.head_async();
                Box::pin(async move { Ok(Position(head.await?)) })
            }
            _ => {
                let head = self.log.head();
                Box::pin(std::future::ready(Ok(head)))
            }
        }
    }

    fn shared_head(&self) -> Result<Position> {
        match &self.shared {
            // Once the sequencer has exited nothing more is adopted: the
            // local head is all a read will ever see.
            Some(shared) if !Hub::exited(self) => Ok(Position(shared.head()?)),
            _ => Ok(self.log.head()),
        }
    }

    fn recorded_at(&self, position: Position) -> Option<Timestamp> {
        self.log.get(position).map(|r| r.recorded_at)
    }

    fn signal(&self) -> &Signal {
        &self.signal
    }

    fn exited(&self) -> bool {
        Hub::exited(self)
    }

    fn storage_failure(&self) -> Option<String> {
        self.storage_failure.get().cloned()
    }
}

/// Counters written by the sequencer only; read for stats (numbers, not
/// synchronization: every access is Relaxed).
#[derive(Debug, Default)]
pub(crate) struct Counters {
    appended: AtomicU64,
    batches: AtomicU64,
    rejected: AtomicU64,
}

/// The counters as read at one moment.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Counted {
    pub(crate) appended: u64,
    pub(crate) batches: u64,
    pub(crate) rejected: u64,
}

impl Counters {
    pub(crate) fn record_batch(&self, events: u64) {
        self.appended.fetch_add(events, Ordering::Relaxed);
        self.batches.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn record_rejected(&self, n: u64) {
        crate::telemetry::rejected(n);
        if n > 0 {
            self.rejected.fetch_add(n, Ordering::Relaxed);
        }
    }

    pub(crate) fn read(&self) -> Counted {
        Counted {
            appended: self.appended.load(Ordering::Relaxed),
            batches: self.batches.load(Ordering::Relaxed),
            rejected: self.rejected.load(Ordering::Relaxed),
        }
    }
}

impl<E> crate::signal::HasSignal for Arc<Hub<E>> {
    fn signal(&self) -> &Signal {
        &self.signal
    }
}
