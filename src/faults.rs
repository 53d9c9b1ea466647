//! Deliberate bugs, for the loom models' broken variants.
//!
//! A model that cannot fail proves nothing, so each loom model also runs
//! against a variant of rwlog's real code with one protocol step broken, and
//! expects loom to find the failure. The switches exist only in `--cfg loom`
//! builds; elsewhere `Faults` is empty and every check is a constant `false`.

/// Which protocol steps to break (`--cfg loom` builds only; see
/// `loom-tests/`).
#[cfg(loom)]
#[derive(Clone, Copy, Debug, Default)]
pub struct Faults {
    /// Publish the log head with a `Relaxed` store instead of `Release`.
    pub relaxed_head: bool,
    /// Publish each batch in two steps, exposing a half-applied state
    /// tagged with the batch's final position.
    pub torn_publish: bool,
    /// Drop the fences that order a waiter's announcement against a
    /// notifier's check, so a wake-up can be lost.
    pub lost_wakeup: bool,
    /// Let writers through the shutdown gate without announcing themselves.
    pub unguarded_gate: bool,
    /// Release the sequencer role without looking at the queue again, so a
    /// command queued meanwhile can be stranded.
    pub unchecked_release: bool,
    /// When the log lets go of its front, empty the chunk tables before
    /// raising the first position, so a reader can miss a position it
    /// counts as held.
    pub late_first: bool,
}

/// No faults: normal builds cannot break anything on purpose. (A field, not
/// a unit struct, so that `Faults::default()` reads the same in both builds.)
#[cfg(not(loom))]
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Faults {
    _none: (),
}

#[cfg(not(loom))]
impl Faults {
    pub(crate) const fn relaxed_head(self) -> bool {
        false
    }
    pub(crate) const fn torn_publish(self) -> bool {
        false
    }
    pub(crate) const fn lost_wakeup(self) -> bool {
        false
    }
    pub(crate) const fn unguarded_gate(self) -> bool {
        false
    }
    pub(crate) const fn unchecked_release(self) -> bool {
        false
    }
    #[cfg_attr(not(feature = "durable"), allow(dead_code))]
    pub(crate) const fn late_first(self) -> bool {
        false
    }
}

#[cfg(loom)]
impl Faults {
    pub(crate) fn relaxed_head(self) -> bool {
        self.relaxed_head
    }
    pub(crate) fn torn_publish(self) -> bool {
        self.torn_publish
    }
    pub(crate) fn lost_wakeup(self) -> bool {
        self.lost_wakeup
    }
    pub(crate) fn unguarded_gate(self) -> bool {
        self.unguarded_gate
    }
    pub(crate) fn unchecked_release(self) -> bool {
        self.unchecked_release
    }
    pub(crate) fn late_first(self) -> bool {
        self.late_first
    }
}
