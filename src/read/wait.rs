//! The waiting reads as futures: the same waits as `at_least`, `strong` and
//! `bounded`, and a wait for the next publication, without blocking the
//! thread. A task on a current-thread runtime can wait while another task
//! on the same thread appends: the runtime's signal wakes the task, with
//! no polling.

use super::{Reader, SnapshotRef, Staleness};
use crate::error::{Error, Result};
use crate::position::Position;
use crate::signal;

impl<V: Send + Sync + 'static> Reader<V> {
    /// [`at_least`](Reader::at_least) as a future: a snapshot at `position`
    /// or later, awaited without blocking the thread.
    ///
    /// Errors as `at_least`'s.
    ///
    /// ```
    /// # use rwlog::{Event, Recorded, Runtime, View};
    /// # #[derive(Clone)] struct Add(u64);
    /// # impl Event for Add {}
    /// # #[derive(Clone, Default)] struct Sum(u64);
    /// # impl View<Add> for Sum { fn apply(&mut self, e: &Recorded<Add>) { self.0 += e.payload().0 } }
    /// # let rt = Runtime::<Add>::builder().view("sum", Sum::default()).build()?;
    /// let r = rt.reader::<Sum>("sum")?;
    /// let w = rt.writer();
    /// let tasks = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// tasks.block_on(async {
    ///     let ack = w.append_async("n", Add(5)).await?;
    ///     let s = r.at_least_async(ack.position).await?;
    ///     assert_eq!(s.0, 5);
    ///     Ok::<(), rwlog::Error>(())
    /// })?;
    /// # Ok::<(), rwlog::Error>(())
    /// ```
    pub async fn at_least_async(&self, position: Position) -> Result<SnapshotRef<V>> {
        let mut head = self.timeline.head();
        if position > head {
            head = self.timeline.shared_head_async().await?;
        }
        if position > head {
            return Err(Error::PositionOutOfRange {
                requested: position,
                head,
            });
        }
        self.reached(position).await
    }

    /// [`strong`](Reader::strong) as a future: a snapshot including every
    /// append acknowledged before the call, awaited without blocking the
    /// thread (a shared log's head is read without blocking it either).
    pub async fn strong_async(&self) -> Result<SnapshotRef<V>> {
        let head = self.timeline.shared_head_async().await?;
        self.reached(head).await
    }

    /// [`bounded`](Reader::bounded) as a future.
    pub async fn bounded_async(&self, bound: Staleness) -> Result<SnapshotRef<V>> {
        match self.fresh_enough(bound) {
            Ok(s) => Ok(s),
            Err(target) => self.reached(target).await,
        }
    }

    /// The first snapshot published after `after`: resolves when the view
    /// moves past it (at once if it already has). Like
    /// `tokio::sync::watch::Receiver::changed`, with the position as the
    /// version seen:
    ///
    /// ```no_run
    /// # async fn follow(r: rwlog::Reader<u64>) -> rwlog::Result<()> {
    /// let mut seen = r.latest().position();
    /// loop {
    ///     let s = r.changed(seen).await?;   // Err(Closed) once the runtime is shut down
    ///     seen = s.position();
    ///     println!("now {}", *s.state());
    /// }
    /// # }
    /// ```
    ///
    /// Errors: [`Error::ViewFailed`] if the view failed;
    /// [`Error::Closed`] once the runtime has shut down and nothing newer
    /// will be published.
    pub async fn changed(&self, after: Position) -> Result<SnapshotRef<V>> {
        self.reached(after.next()).await
    }

    /// Resolves as a wait for `position` settles.
    async fn reached(&self, position: Position) -> Result<SnapshotRef<V>> {
        signal::until(self.timeline.signal(), || self.settled(position)).await
    }
}
