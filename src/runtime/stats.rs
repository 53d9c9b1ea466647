//! What [`Runtime::stats`](crate::Runtime::stats) reports.

use crate::hub::Counted;
use crate::position::Position;
use crate::projection::ProjectionState;
use crate::sync::Arc;
use crate::view::AnyView;

/// A picture of the runtime's counters, from [`Runtime::stats`](crate::Runtime::stats).
///
/// ```
/// use rwlog::{Event, Recorded, Runtime, View};
///
/// #[derive(Clone)]
/// struct Tick;
/// impl Event for Tick {}
/// #[derive(Clone, Default)]
/// struct Count(u64);
/// impl View<Tick> for Count {
///     fn apply(&mut self, _: &Recorded<Tick>) { self.0 += 1 }
/// }
///
/// let rt = Runtime::<Tick>::builder().view("count", Count::default()).build()?;
/// rt.writer().append_batch("t", [Tick, Tick, Tick])?;
/// let stats = rt.stats();
/// assert_eq!((stats.appended, stats.batches, stats.mean_batch), (3, 1, 3.0));
/// assert_eq!(stats.views[0].position.0, 3);
/// # Ok::<(), rwlog::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Stats {
    /// The log's head.
    pub head: Position,
    /// Events appended since start.
    pub appended: u64,
    /// Batches sequenced (each published once per view).
    pub batches: u64,
    /// Mean events per batch.
    pub mean_batch: f64,
    /// Appends rejected by the sequencer: a version conflict, or an event
    /// the store refused (too large, or not encodable).
    pub rejected: u64,
    /// Appends waiting in the queue right now.
    pub queue_depth: usize,
    /// Why the durable log failed, if it has: the runtime then refuses
    /// appends until reopened.
    pub storage_failure: Option<String>,
    /// Each view's state.
    pub views: Vec<ViewStats>,
    /// Each projection started on this runtime.
    pub projections: Vec<ProjectionStats>,
}

/// One projection's state in [`Stats`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProjectionStats {
    /// The projection's name.
    pub name: String,
    /// The last event it handled.
    pub handled: Position,
    /// The last checkpoint it saved.
    pub checkpoint: Position,
    /// Events appended but not yet handled: head − handled.
    pub lag: u64,
    /// Whether its thread is still running.
    pub running: bool,
    /// Why it stopped, if its handler failed.
    pub failure: Option<String>,
}

/// One view's state in [`Stats`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ViewStats {
    /// The view's name.
    pub name: String,
    /// The position of its published snapshot.
    pub position: Position,
    /// Why it failed, if its `apply` panicked.
    pub failure: Option<String>,
    /// Publications that cloned the state because every spare copy was held
    /// by a reader (each one adds a spare, up to `spare_copies`).
    pub fallback_clones: u64,
    /// Snapshots kept in memory for time travel, the initial state included.
    pub snapshots_kept: usize,
}

/// Gathers the stats from the sequencer's counters, the views and the
/// projections.
pub(crate) fn collect(
    head: Position,
    counted: Counted,
    queue_depth: usize,
    storage_failure: Option<String>,
    views: &[Arc<dyn AnyView>],
    projections: &[Arc<ProjectionState>],
) -> Stats {
    let Counted {
        appended,
        batches,
        rejected,
    } = counted;
    Stats {
        head,
        appended,
        batches,
        mean_batch: if batches == 0 {
            0.0
        } else {
            appended as f64 / batches as f64
        },
        rejected,
        queue_depth,
        storage_failure,
        views: views
            .iter()
            .map(|v| ViewStats {
                name: v.name().to_owned(),
                position: v.position(),
                failure: v.failure().map(str::to_owned),
                fallback_clones: v.clones(),
                snapshots_kept: v.snapshots_kept(),
            })
            .collect(),
        projections: projections
            .iter()
            .map(|p| {
                let handled = p.handled();
                ProjectionStats {
                    name: p.name.clone(),
                    handled,
                    checkpoint: p.saved(),
                    lag: head.0.saturating_sub(handled.0),
                    running: p.is_running(),
                    failure: p.failure.get().cloned(),
                }
            })
            .collect(),
    }
}
