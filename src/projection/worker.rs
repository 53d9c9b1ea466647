//! A projection's thread: follow the log from the checkpoint, hand each
//! event to the projector, save the checkpoint now and then.

use std::time::Duration;

use uuid::Uuid;

use crate::event::Event;
use crate::hub::Hub;
use crate::position::Position;
use crate::subscription::Subscription;
use crate::sync::{self, Arc, Ordering};

use super::{Checkpoints, ProjectionState, Projector};

/// How long the thread waits for an event before looking at its stop flag.
const POLL: Duration = Duration::from_millis(20);

/// The thread's state.
pub(super) struct Worker<E, P> {
    pub(super) hub: Arc<Hub<E>>,
    pub(super) checkpoints: Arc<Checkpoints>,
    pub(super) state: Arc<ProjectionState>,
    pub(super) projector: P,
    pub(super) from: Position,
    pub(super) every: u64,
}

impl<E: Event, P: Projector<E>> Worker<E, P> {
    /// Handles events until stopped, failed, or the runtime ended and every
    /// event was handled; then saves the checkpoint.
    pub(super) fn run(mut self) {
        let mut sub = Subscription::new(Arc::clone(&self.hub), self.from.next());
        let mut unsaved = 0;
        // The id of the last event handled, which its checkpoint names.
        let mut last_id = None;
        // Relaxed: a request, not a publication; the stopper joins the
        // thread, which orders everything it did before it ends.
        while !self.state.stop.load(Ordering::Relaxed) {
            let Some(event) = sub.next_timeout(POLL) else {
                if let Some(error) = sub.error() {
                    // It fell behind the log's horizon: what it missed was
                    // archived.
                    self.state.fail_at(sub.position(), &error.to_string());
                    break;
                }
                if self.hub.exited() && sub.try_next().is_none() {
                    break;
                }
                continue;
            };
            if let Err(message) = self.handle(&event) {
                self.state.fail(&event, self.hub.log.head(), &message);
                break;
            }
            self.state.advanced(&event, self.hub.log.head());
            last_id = Some(event.id);
            unsaved += 1;
            if unsaved >= self.every {
                self.save(event.position, last_id);
                unsaved = 0;
            }
        }
        let handled = self.state.handled();
        if handled != self.state.saved() {
            self.save(handled, last_id);
        }
        self.state.ended();
    }

    /// Runs the projector on one event; a panic is a failure like an error.
    fn handle(&mut self, event: &crate::event::Recorded<E>) -> Result<(), String> {
        let projector = &mut self.projector;
        match sync::catch_unwind(|| projector.handle(event)) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(payload) => Err(sync::panic_message(&*payload)),
        }
    }

    fn save(&self, position: Position, id: Option<Uuid>) {
        let Some(id) = id else { return };
        match self.checkpoints.save(&self.state.name, position, id) {
            Ok(()) => self.state.saved.store(position.0, Ordering::Relaxed),
            Err(e) => {
                tracing::warn!(projection = %self.state.name, error = %e, "could not save a checkpoint")
            }
        }
    }
}
