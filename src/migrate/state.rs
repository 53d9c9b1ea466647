//! What every handle of a migration shares: the legacy store and how far
//! it follows the log, the write gate, the shares, the phase, and the
//! cut-over and rollback that move between phases.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{RwLock, RwLockReadGuard};
use std::time::{Duration, Instant};

use super::stats::{Counters, MigrationStats, Phase, Warnings};
use super::{unpoison, Legacy, MigrationOptions};
use crate::error::{Error, Result};
use crate::event::Event;
use crate::position::Position;
use crate::runtime::Runtime;
use crate::sync::{self, Mutex};
use crate::write::Writer;

/// Failures of legacy updates kept for the writers of those events to
/// collect; beyond this many (events no dual writer appended), the oldest
/// are dropped. Every one is counted and traced anyway.
const KEPT_FAILURES: usize = 1024;

/// A percentage read on every read: a relaxed atomic, so setting it blocks
/// nothing.
#[derive(Debug, Default)]
pub(super) struct Share(AtomicU8);

impl Share {
    pub(super) fn set(&self, percent: u8) {
        self.0.store(percent, Ordering::Relaxed);
    }

    pub(super) fn get(&self) -> u8 {
        self.0.load(Ordering::Relaxed)
    }
}

/// The phases as stored (the shadow phase and the read migration differ
/// only by the read share).
const LIVE: u8 = 0;
const CUTTING_OVER: u8 = 1;
const CUT_OVER: u8 = 2;
const ROLLING_BACK: u8 = 3;

/// What the handles of one migration share.
pub(super) struct Inner<E: Event, L> {
    pub(super) rt: Runtime<E>,
    pub(super) writer: Writer<E>,
    pub(super) legacy: L,
    /// Dual writes hold it shared; a cut-over or rollback holds it
    /// exclusively while it changes whether the legacy state is written.
    gate: RwLock<()>,
    /// Legacy updates run one at a time, in log order, under this lock;
    /// it keeps the failures not yet collected by their writers.
    follow: Mutex<BTreeMap<Position, String>>,
    /// The last position applied to the legacy state (stored under
    /// `follow`, after the update; read by verification without a lock).
    pub(super) applied: AtomicU64,
    /// The position being applied to the legacy state: stored before the
    /// update starts, so a verified read that saw any of the update (through
    /// the legacy store's lock) also sees this move past `applied`, and
    /// does not compare a legacy state ahead of the position it checked.
    pub(super) applying: AtomicU64,
    /// Whether the legacy state is written and read: changed only under
    /// the gate held exclusively.
    pub(super) live: AtomicBool,
    pub(super) read_share: Share,
    pub(super) verify_share: Share,
    phase: AtomicU8,
    /// Where the legacy state stopped at the cut-over (while cut over).
    cut_at: Mutex<Option<Position>>,
    /// Cut-overs and rollbacks run one at a time.
    coordinator: Mutex<()>,
    pub(super) counters: Counters,
    pub(super) warnings: Warnings,
    options: MigrationOptions,
}

impl<E: Event, L: Legacy<E>> Inner<E, L> {
    pub(super) fn new(rt: Runtime<E>, legacy: L, options: MigrationOptions) -> Inner<E, L> {
        let head = rt.head();
        Inner {
            writer: rt.writer(),
            rt,
            legacy,
            gate: RwLock::new(()),
            follow: Mutex::new(BTreeMap::new()),
            applied: AtomicU64::new(head.0),
            applying: AtomicU64::new(head.0),
            live: AtomicBool::new(true),
            read_share: Share::default(),
            verify_share: Share::default(),
            phase: AtomicU8::new(LIVE),
            cut_at: Mutex::new(None),
            coordinator: Mutex::new(()),
            counters: Counters::default(),
            warnings: Warnings::new(options.warnings_per_second),
            options,
        }
    }

    /// Held by a dual write: no phase change runs meanwhile.
    pub(super) fn enter(&self) -> RwLockReadGuard<'_, ()> {
        unpoison(self.gate.read())
    }

    /// Applies to the legacy state, in order, every event after the last
    /// one it holds up to `to`. A failed update is counted and traced; with
    /// `stop`, the first one ends the replay with [`Error::Legacy`] and the
    /// legacy state holds the events before it; without, it is kept for
    /// [`collect`](Inner::collect) and the replay goes on. Returns how many
    /// events were applied.
    pub(super) fn follow_to(&self, to: Position, stop: bool) -> Result<u64> {
        let mut failures = self.follow.lock();
        let from = Position(self.applied.load(Ordering::Relaxed)).next();
        let mut applied = 0;
        for event in self.rt.log().read_all(from..=to) {
            let position = event.position();
            self.applying.store(position.0, Ordering::Release);
            let outcome = match sync::catch_unwind(|| self.legacy.apply(&event)) {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err((e.to_string(), false)),
                Err(panic) => Err((format!("panicked: {}", sync::panic_message(&*panic)), true)),
            };
            if let Err((message, panicked)) = outcome {
                self.counters
                    .failed_legacy_writes
                    .fetch_add(1, Ordering::Relaxed);
                tracing::warn!(%position, error = %message, "the legacy store failed to apply an event");
                // An error leaves the legacy state as it was (the `Legacy`
                // contract), so a replay stops before the event and a retry
                // applies it. A panic may have left part of it: it is
                // never applied again (that could apply it twice).
                if stop && !panicked {
                    self.applying.store(position.0 - 1, Ordering::Release);
                    return Err(Error::Legacy { position, message });
                }
                if stop {
                    self.applied.store(position.0, Ordering::Release);
                    let message = format!(
                        "{message}; the legacy state may hold part of this event, and it is not applied again"
                    );
                    return Err(Error::Legacy { position, message });
                }
                if failures.len() >= KEPT_FAILURES {
                    failures.pop_first();
                }
                failures.insert(position, message);
            }
            self.applied.store(position.0, Ordering::Release);
            applied += 1;
        }
        Ok(applied)
    }

    /// The first failed legacy update among `first..=last` (an append's
    /// events), taking every one of them out of the kept failures.
    pub(super) fn collect(&self, first: Position, last: Position) -> Option<Error> {
        let mut failures = self.follow.lock();
        let mut found = None;
        while let Some(entry) = failures.range(first..=last).next() {
            let position = *entry.0;
            let message = failures.remove(&position).unwrap_or_default();
            found.get_or_insert(Error::Legacy { position, message });
        }
        found
    }

    pub(super) fn cut_over(&self) -> Result<Position> {
        let _one_at_a_time = self.coordinator.lock();
        if let Some(at) = *self.cut_at.lock() {
            return Ok(at);
        }
        let (at, head) = {
            let _gate = unpoison(self.gate.write());
            let head = self.rt.head();
            // Events of other writers the legacy state has not seen yet.
            self.follow_to(head, false)?;
            self.live.store(false, Ordering::Release);
            // Only now: whoever sees the phase sees reads on rwlog's side.
            self.phase.store(CUTTING_OVER, Ordering::Release);
            let at = Position(self.applied.load(Ordering::Relaxed));
            *self.cut_at.lock() = Some(at);
            (at, head)
        };
        match self.caught_up(head) {
            Ok(()) => {
                self.phase.store(CUT_OVER, Ordering::Release);
                tracing::info!(%at, "migration cut over: the legacy state is no longer written");
                Ok(at)
            }
            Err(reason) => Err(self.abandon(reason)),
        }
    }

    /// Rolls back a cut-over that could not complete, and says why.
    fn abandon(&self, reason: String) -> Error {
        tracing::warn!(%reason, "migration cut-over abandoned: rolling back");
        match self.roll_back() {
            Ok(_) => Error::CutOverAbandoned { reason },
            Err(e) => Error::CutOverAbandoned {
                reason: format!("{reason}; the rollback failed too ({e}): still cut over"),
            },
        }
    }

    pub(super) fn rollback(&self) -> Result<u64> {
        let _one_at_a_time = self.coordinator.lock();
        self.roll_back()
    }

    fn roll_back(&self) -> Result<u64> {
        if self.cut_at.lock().is_none() {
            return Ok(0);
        }
        self.phase.store(ROLLING_BACK, Ordering::Release);
        let _gate = unpoison(self.gate.write());
        let replayed = match self.follow_to(self.rt.head(), true) {
            Ok(n) => n,
            Err(e) => {
                self.phase.store(CUT_OVER, Ordering::Release);
                return Err(e);
            }
        };
        self.live.store(true, Ordering::Release);
        *self.cut_at.lock() = None;
        self.phase.store(LIVE, Ordering::Release);
        tracing::info!(
            replayed,
            "migration rolled back: the legacy state is written again"
        );
        Ok(replayed)
    }

    /// Waits until every view and running projection reaches `head`, or
    /// one fails, or the cut-over's time is up.
    fn caught_up(&self, head: Position) -> std::result::Result<(), String> {
        // No deadline for a timeout too long to add (`Duration::MAX`).
        let deadline = Instant::now().checked_add(self.options.cut_over_timeout);
        loop {
            let stats = self.rt.stats();
            let mut behind = None;
            for v in &stats.views {
                if let Some(f) = &v.failure {
                    return Err(format!("view `{}` failed: {f}", v.name));
                }
                if v.position < head {
                    behind = Some(format!("view `{}` at {}", v.name, v.position));
                }
            }
            for p in &stats.projections {
                if let Some(f) = &p.failure {
                    return Err(format!("projection `{}` failed: {f}", p.name));
                }
                if p.running && p.handled < head {
                    behind = Some(format!("projection `{}` at {}", p.name, p.handled));
                }
            }
            let Some(behind) = behind else { return Ok(()) };
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(format!(
                    "{behind} had not reached the head ({head}) after {:?}",
                    self.options.cut_over_timeout
                ));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

impl<E: Event, L> Inner<E, L> {
    pub(super) fn stats(&self) -> MigrationStats {
        // Acquire pairs with the Release store of CUTTING_OVER: that phase
        // is seen only with `live` already false.
        let phase = match self.phase.load(Ordering::Acquire) {
            CUTTING_OVER => Phase::CuttingOver,
            CUT_OVER => Phase::CutOver,
            ROLLING_BACK => Phase::RollingBack,
            _ if self.read_share.get() == 0 => Phase::Shadow,
            _ => Phase::MigratingReads,
        };
        let live = self.live.load(Ordering::Relaxed);
        self.counters.read(
            phase,
            if live { self.read_share.get() } else { 100 },
            if live { self.verify_share.get() } else { 0 },
            Position(self.applied.load(Ordering::Relaxed)),
            *self.cut_at.lock(),
        )
    }
}
