//! Starting projections: a handler on a thread, or an `async` one as a
//! tokio task.

use crate::error::{Error, Result};
use crate::event::Event;
#[cfg(feature = "async")]
use crate::projection::AsyncProjection;
use crate::projection::{Checkpoints, Projection, ProjectionOptions, ProjectionState, Projector};
use crate::sync::Arc;

use super::Runtime;

impl<E: Event> Runtime<E> {
    /// Starts a projection: `projector` handles every event after
    /// the projection's checkpoint (from the start for a new name), on its
    /// own thread, saving the checkpoint every 1000 events (see
    /// [`projection_with`](Runtime::projection_with)). With a durable log the
    /// checkpoint is a file in the log's directory, so the projection
    /// resumes after a restart; otherwise it resumes when restarted under
    /// the same name in this runtime. Delivery is at least once.
    ///
    /// The closure's event type is inferred: `rt.projection("mailer", |e| ...)`;
    /// it returns `Result<(), ProjectionError>` (`Ok(())` when handled). For
    /// a handler that awaits, see
    /// [`projection_async`](Runtime::projection_async).
    /// A [`Projector`] of your own goes through
    /// [`projection_with`](Runtime::projection_with).
    pub fn projection<F>(&self, name: &str, handler: F) -> Result<Projection>
    where
        F: FnMut(
                &crate::event::Recorded<E>,
            ) -> std::result::Result<(), crate::projection::ProjectionError>
            + Send
            + 'static,
    {
        self.projection_with(name, ProjectionOptions::default(), handler)
    }

    /// [`projection`](Runtime::projection) with settings.
    ///
    /// Errors: [`Error::Closed`] after [`shutdown`](Runtime::shutdown);
    /// [`Error::Config`] for a name that is not a plain file name.
    pub fn projection_with(
        &self,
        name: &str,
        options: ProjectionOptions,
        projector: impl Projector<E>,
    ) -> Result<Projection> {
        self.start_named(name, |checkpoints| {
            Projection::start(
                Arc::clone(&self.inner.hub),
                checkpoints,
                name,
                options,
                projector,
            )
        })
    }

    /// Starts an async projection: `handler` is an `async` closure, run as a
    /// task on the current tokio runtime, for handlers that await (an HTTP
    /// client, a database driver); otherwise like
    /// [`projection`](Runtime::projection): every event after the
    /// checkpoint, at least once, one at a time in order, the checkpoint
    /// saved every 1000 events and when stopped. An error or a panic in the
    /// handler stops the projection (only it).
    ///
    /// Errors: [`Error::Config`] when called outside a tokio runtime or with
    /// a name that is not a plain file name; [`Error::Closed`] after
    /// [`shutdown`](Runtime::shutdown).
    #[cfg(feature = "async")]
    pub fn projection_async<F, Fut>(&self, name: &str, handler: F) -> Result<AsyncProjection>
    where
        F: FnMut(crate::event::EventRef<E>) -> Fut + Send + 'static,
        Fut: std::future::Future<
                Output = std::result::Result<(), crate::projection::ProjectionError>,
            > + Send
            + 'static,
    {
        self.projection_async_with(name, ProjectionOptions::default(), handler)
    }

    /// [`projection_async`](Runtime::projection_async) with settings.
    #[cfg(feature = "async")]
    pub fn projection_async_with<F, Fut>(
        &self,
        name: &str,
        options: ProjectionOptions,
        handler: F,
    ) -> Result<AsyncProjection>
    where
        F: FnMut(crate::event::EventRef<E>) -> Fut + Send + 'static,
        Fut: std::future::Future<
                Output = std::result::Result<(), crate::projection::ProjectionError>,
            > + Send
            + 'static,
    {
        self.start_named(name, |checkpoints| {
            crate::projection::start_task(
                Arc::clone(&self.inner.hub),
                checkpoints,
                name,
                options,
                handler,
            )
        })
    }

    /// Starts projection `name` and lists it for stats and shutdown
    /// (replacing a stopped one of the same name). Refused while one of
    /// that name runs: two would save the same checkpoint. The list's lock
    /// is held throughout, so two starts of one name cannot both pass;
    /// shutdown takes the checkpoints' lock and this one apart, never
    /// nested, so this cannot deadlock with it.
    fn start_named<P>(
        &self,
        name: &str,
        start: impl FnOnce(Arc<Checkpoints>) -> Result<(P, Arc<ProjectionState>)>,
    ) -> Result<P> {
        let mut list = self.inner.projections.lock();
        if list.iter().any(|p| p.name == name && p.is_running()) {
            return Err(Error::Config(
                "a projection of this name is running: stop it before starting it again",
            ));
        }
        let checkpoints = self.inner.checkpoints.lock().clone().ok_or(Error::Closed)?;
        let (projection, state) = start(checkpoints)?;
        list.retain(|p| p.name != name);
        list.push(state);
        Ok(projection)
    }
}
