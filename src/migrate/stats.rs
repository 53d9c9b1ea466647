//! A migration's counters, its phase, the rate bound on discrepancy
//! warnings, and each thread's random draws for the shares.

use std::cell::Cell;
use std::fmt::Debug;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

use crate::position::Position;

/// Where a migration stands, in [`MigrationStats`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Phase {
    /// Writes go to both sides; every read is served by the legacy state.
    Shadow,
    /// Writes go to both sides; a share of reads is served by rwlog.
    MigratingReads,
    /// Legacy writes have stopped; waiting for views and projections.
    CuttingOver,
    /// Only rwlog is written and read.
    CutOver,
    /// Replaying into the legacy state the events it missed.
    RollingBack,
}

/// A migration's counters, from [`Migration::stats`](super::Migration::stats).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct MigrationStats {
    /// The current phase.
    pub phase: Phase,
    /// The share of reads served by rwlog now, in percent (100 while cut
    /// over).
    pub read_share: u8,
    /// The share of rwlog reads verified now, in percent (0 while cut
    /// over, when the legacy state no longer follows).
    pub verify_share: u8,
    /// Reads served by the legacy state.
    pub legacy_reads: u64,
    /// Reads served by rwlog.
    pub rwlog_reads: u64,
    /// rwlog reads compared with the legacy state.
    pub verified: u64,
    /// Reads sampled for verification that could not be compared: the
    /// legacy state and the view were never at the same position during
    /// the read (under heavy writes, or while events appended by other
    /// writers than the dual writers wait to reach the legacy state).
    pub unverified: u64,
    /// Verified reads whose values differed.
    pub discrepancies: u64,
    /// Dual writes acknowledged (appended; applied to the legacy state if
    /// it was written then).
    pub writes: u64,
    /// Dual writes whose append failed, rejected ones included (a
    /// conflict, bad input, a closed runtime): neither side changed.
    pub failed_appends: u64,
    /// Events in the log that the legacy store failed to apply.
    pub failed_legacy_writes: u64,
    /// The last position the legacy state holds.
    pub legacy_position: Position,
    /// While cut over: where the legacy state stopped.
    pub cut_over_at: Option<Position>,
}

/// Reader threads count in stripes of their own (a thread's stripe is
/// chosen once), so counting reads moves no cache line between threads.
const STRIPES: usize = 8;

/// One stripe of the per-read counters, on a cache line of its own.
#[derive(Default)]
#[repr(align(128))]
struct Stripe {
    legacy: AtomicU64,
    rwlog: AtomicU64,
    verified: AtomicU64,
    unverified: AtomicU64,
}

/// Which per-read counter to add to.
#[derive(Clone, Copy)]
pub(super) enum Read {
    Legacy,
    Rwlog,
    Verified,
    Unverified,
}

/// The migration's counters.
#[derive(Default)]
pub(super) struct Counters {
    stripes: [Stripe; STRIPES],
    pub(super) discrepancies: AtomicU64,
    pub(super) writes: AtomicU64,
    pub(super) failed_appends: AtomicU64,
    pub(super) failed_legacy_writes: AtomicU64,
}

impl Counters {
    /// Adds one to a per-read counter, in `stripe`.
    pub(super) fn read_one(&self, stripe: usize, which: Read) {
        let s = &self.stripes[stripe % STRIPES];
        let counter = match which {
            Read::Legacy => &s.legacy,
            Read::Rwlog => &s.rwlog,
            Read::Verified => &s.verified,
            Read::Unverified => &s.unverified,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn sum(&self, which: fn(&Stripe) -> &AtomicU64) -> u64 {
        self.stripes
            .iter()
            .map(|s| which(s).load(Ordering::Relaxed))
            .sum()
    }

    pub(super) fn read(
        &self,
        phase: Phase,
        read_share: u8,
        verify_share: u8,
        legacy_position: Position,
        cut_over_at: Option<Position>,
    ) -> MigrationStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        MigrationStats {
            phase,
            read_share,
            verify_share,
            legacy_reads: self.sum(|s| &s.legacy),
            rwlog_reads: self.sum(|s| &s.rwlog),
            verified: self.sum(|s| &s.verified),
            unverified: self.sum(|s| &s.unverified),
            discrepancies: get(&self.discrepancies),
            writes: get(&self.writes),
            failed_appends: get(&self.failed_appends),
            failed_legacy_writes: get(&self.failed_legacy_writes),
            legacy_position,
            cut_over_at,
        }
    }
}

/// At most about `per_second` discrepancy warnings in any one second
/// (racing threads may let a few more through at a second's turn).
pub(super) struct Warnings {
    per_second: u32,
    start: Instant,
    /// The second since `start` that `count` counts in.
    second: AtomicU64,
    count: AtomicU32,
    /// Warnings left out since the last one emitted.
    left_out: AtomicU64,
}

impl Warnings {
    pub(super) fn new(per_second: u32) -> Warnings {
        Warnings {
            per_second,
            start: Instant::now(),
            second: AtomicU64::new(0),
            count: AtomicU32::new(0),
            left_out: AtomicU64::new(0),
        }
    }

    /// Traces a discrepancy at `warn`, unless this second's are used up.
    pub(super) fn discrepancy(
        &self,
        key: &dyn Debug,
        rwlog: &dyn Debug,
        legacy: &dyn Debug,
        position: Position,
    ) {
        let now = self.start.elapsed().as_secs();
        let second = self.second.load(Ordering::Relaxed);
        if second != now
            && self
                .second
                .compare_exchange(second, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            self.count.store(0, Ordering::Relaxed);
        }
        if self.count.fetch_add(1, Ordering::Relaxed) >= self.per_second {
            self.left_out.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let left_out = self.left_out.swap(0, Ordering::Relaxed);
        tracing::warn!(
            key = ?key,
            rwlog = ?rwlog,
            legacy = ?legacy,
            %position,
            left_out,
            "migration: rwlog and the legacy state disagree"
        );
    }
}

static NEXT_STRIPE: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// This thread's random state (xorshift) and counter stripe.
    static LOCAL: Cell<(u64, usize)> = const { Cell::new((0, 0)) };
}

/// A random number and this thread's stripe: thread-local, so drawing
/// touches nothing shared.
pub(super) fn draw() -> (u64, usize) {
    LOCAL.with(|local| {
        let (mut x, mut stripe) = local.get();
        if x == 0 {
            stripe = NEXT_STRIPE.fetch_add(1, Ordering::Relaxed);
            x = (stripe as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        }
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        local.set((x, stripe));
        (x, stripe % STRIPES)
    })
}
