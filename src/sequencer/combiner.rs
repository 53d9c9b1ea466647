//! The sequencer role, and who takes it.
//!
//! The sequencer's state sits behind one flag that nobody waits on: whoever
//! takes it holds the role and sequences batches from the queue; everyone else
//! leaves their command in the queue and goes on. With
//! [`Sequencing::Combining`] a writer that queued a command takes the role if
//! it is free and sequences its own command and everyone else's (flat
//! combining: no thread hand-off per append); a writer about to wait for its
//! append that finds the role free and nothing queued sequences it without
//! queueing it at all ([`Drain::sequence_now`]). With [`Sequencing::Thread`]
//! only the sequencer thread takes it. The thread exists in both modes: it
//! takes over when a writer hands the role on, sequences the appends of async
//! tasks (which never sync a file on an executor's thread), and drains the
//! queue at shutdown.
//!
//! No command is ever stranded in the queue. A writer queues its command
//! and then looks at the role; a holder releases the role and then looks at
//! the queue. A SeqCst fence between the two steps on each side means at
//! least one side sees the other (the store-buffer pattern): the writer
//! finds the role free and takes it, or the releaser finds the command and
//! takes the role again (or hands it to the thread).

use std::ops::{Deref, DerefMut};
use std::time::{Duration, Instant};

use crate::error::Result;
use crate::event::Event;
use crate::faults::Faults;
use crate::signal::Signal;
use crate::sync::channel::Receiver;
use crate::sync::{self, fence, AtomicBool, Mutex, MutexGuard, Ordering};
use crate::write::{AppendCmd, Appended, Drain, Queued};

use super::{Ran, Sequencer};

/// Who runs the sequencer; see [`Builder::sequencing`](crate::Builder::sequencing).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Sequencing {
    /// A writer that queues an append and finds nobody sequencing does it
    /// itself, for its append and every other queued one: an acknowledged
    /// append costs no thread hand-off, and a writer thread never waits for a
    /// sequencer thread to get a core. An `append` that finds nobody sequencing
    /// and nothing queued skips the queue and its ticket. A submitting writer
    /// leaves up to 64 appends queued, to be sequenced as one batch. The
    /// sequencer thread only takes over from a writer that has sequenced a
    /// bounded number of batches, sequences what writers left queued after a
    /// millisecond, and sequences async tasks' appends to a durable log (an
    /// executor's thread never syncs a file; in memory, async tasks sequence
    /// too). Views are applied on the writers' threads. The default.
    #[default]
    Combining,
    /// A dedicated thread sequences every append; writers only queue their
    /// appends and wait. Writer threads never run view code or sync a file.
    Thread,
}

/// How many batches a writer sequences before it hands the role on: it
/// sequences its own append (usually in the first) and helps others, but a
/// flood of appends from other threads cannot keep it from returning.
const WRITER_ROUNDS: usize = 4;

/// How many submitted commands may wait in the queue before the writer
/// that submits the next one sequences them all: a batch of many costs
/// little more than a batch of one.
const DEFER: usize = 64;

/// How many commands a submitting writer lets wait in the queue while
/// another thread sequences before it waits for them to be taken: without
/// a bound, writers that submit faster than one thread sequences keep the
/// queue full, and an `append` behind them waits for all of it.
const BACKLOG: usize = 2 * DEFER;

/// How long the sequencer thread lets submitted commands wait for a writer
/// to sequence them before it does.
const SWEEP_AFTER: Duration = Duration::from_millis(1);

/// How long the sequencer thread polls for work before parking, in
/// `Thread` mode and for async tasks' appends to a durable log (their next
/// append usually comes soon, and waking a parked thread costs
/// microseconds).
const SPINS: u32 = sync::budget(128);
const YIELDS: u32 = sync::budget(64);

/// The role: a flag taken without waiting, and the state it guards.
///
/// Invariant: `state` is locked only by the thread that set `held`, so the
/// lock is never contended; the flag is what threads race for. (A flag
/// rather than `Mutex::try_lock`, whose failure loom does not model.)
struct Role<T> {
    held: AtomicBool,
    state: Mutex<T>,
}

/// The role, held; dropping it lets go.
struct Held<'a, T> {
    role: &'a Role<T>,
    state: Option<MutexGuard<'a, T>>,
}

impl<T> Role<T> {
    fn new(state: T) -> Role<T> {
        Role {
            held: AtomicBool::new(false),
            state: Mutex::new(state),
        }
    }

    /// The role, if nobody holds it.
    fn try_take(&self) -> Option<Held<'_, T>> {
        // Acquire pairs with the Release store in `Held::drop`: the last
        // holder's work on the state is seen (the mutex orders it too).
        self.held
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .ok()?;
        Some(Held {
            role: self,
            state: Some(self.state.lock()),
        })
    }

    /// The role, waiting (yielding) for whoever holds it.
    fn take(&self) -> Held<'_, T> {
        loop {
            if let Some(held) = self.try_take() {
                return held;
            }
            sync::yield_now();
        }
    }
}

impl<T> Drop for Held<'_, T> {
    fn drop(&mut self) {
        drop(self.state.take());
        // Release pairs with the Acquire exchange in `try_take`.
        self.role.held.store(false, Ordering::Release);
    }
}

impl<T> Deref for Held<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        self.state
            .as_deref()
            .unwrap_or_else(|| unreachable!("held until dropped"))
    }
}

impl<T> DerefMut for Held<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        self.state
            .as_deref_mut()
            .unwrap_or_else(|| unreachable!("held until dropped"))
    }
}

/// The queue, the role, and the sequencer thread's wake-up.
pub(crate) struct Combiner<E> {
    queue: Receiver<AppendCmd<E>>,
    role: Role<Sequencer<E>>,
    mode: Sequencing,
    /// The sequencer thread waits on it.
    wake: Signal,
    /// A writer handed the role on, or an async task queued a command: the
    /// thread has work to look at.
    wanted: AtomicBool,
    /// A writer left submitted commands in the queue for later: the thread
    /// sequences them if no writer does soon.
    sweep: AtomicBool,
    /// Shutdown: the thread drains the queue for good and ends.
    closing: AtomicBool,
    /// The log is durable: batches sync a file, which never happens on an
    /// async task's (an executor's) thread.
    durable: bool,
    faults: Faults,
}

impl<E: Event> Combiner<E> {
    pub(crate) fn new(
        queue: Receiver<AppendCmd<E>>,
        sequencer: Sequencer<E>,
        mode: Sequencing,
        faults: Faults,
    ) -> Combiner<E> {
        let durable = sequencer.is_durable();
        Combiner {
            durable,
            queue,
            role: Role::new(sequencer),
            mode,
            wake: Signal::new(faults),
            wanted: AtomicBool::new(false),
            sweep: AtomicBool::new(false),
            closing: AtomicBool::new(false),
            faults,
        }
    }

    /// Sequences if nobody does: batches until the queue is empty or
    /// `rounds` batches have run, then releases the role and looks at the
    /// queue once more: takes the role again, or, with its rounds used up,
    /// hands it to the thread. The batches it ran.
    fn session(&self, rounds: usize) -> usize {
        let mut ran = 0;
        loop {
            let Some(mut sequencer) = self.role.try_take() else {
                return ran;
            };
            while ran < rounds {
                match self.batch(&mut sequencer) {
                    Ran::Nothing => break,
                    Ran::Emptied => {
                        // The queue looked empty: the look after the release
                        // finds anything queued since.
                        ran += 1;
                        break;
                    }
                    Ran::Full => ran += 1,
                }
            }
            drop(sequencer);
            if !self.look_again(ran >= rounds) {
                return ran;
            }
        }
    }

    /// After letting go of the role: whether a command is queued that the
    /// caller should come back for (else nobody may be coming for it). With
    /// `done` (its rounds used up), the caller hands the role to the thread
    /// instead and the answer is no.
    fn look_again(&self, done: bool) -> bool {
        if self.faults.unchecked_release() {
            return false;
        }
        // Pairs with the fence in `queued`: a command queued by a writer
        // that found the role still taken is seen here.
        fence(Ordering::SeqCst);
        if self.queue.is_empty() {
            return false;
        }
        if done {
            self.hand_off();
            return false;
        }
        true
    }

    /// One batch.
    fn batch(&self, sequencer: &mut Sequencer<E>) -> Ran {
        self.batch_with(sequencer, None).0
    }

    /// One batch, with the caller's command (with an own reply) last if it
    /// fits (see [`Sequencer::run_batch`]), else the command back. A panic
    /// in the sequencer (a bug of rwlog's) fails it for good rather than
    /// unwinding into a writer with the role held.
    fn batch_with(
        &self,
        sequencer: &mut Sequencer<E>,
        own: Option<AppendCmd<E>>,
    ) -> (Ran, Option<AppendCmd<E>>) {
        match sync::catch_unwind(|| sequencer.run_batch(&self.queue, own)) {
            Ok(done) => done,
            Err(payload) => {
                let message = sync::panic_message(&*payload);
                tracing::error!(%message, "the sequencer panicked; the runtime takes no more appends");
                sequencer.fail_panicked(message);
                (Ran::Full, None)
            }
        }
    }

    /// Asks the sequencer thread to take the role (for work that is not in
    /// the queue: events another process appended to a shared log).
    pub(crate) fn hand_off(&self) {
        // Relaxed: the signal's fences order it with the thread's check.
        self.wanted.store(true, Ordering::Relaxed);
        self.wake.notify();
    }

    /// The sequencer thread's life: sequence whatever it is given, until
    /// shutdown; then drain the queue for good.
    pub(crate) fn run_thread(&self) {
        let _span = tracing::debug_span!("sequencer thread").entered();
        while !self.closing() {
            // With a thread of its own, or when async tasks hand it work,
            // the next command usually comes soon.
            if self.mode == Sequencing::Thread || self.durable {
                self.poll_briefly();
            }
            self.wake
                .wait_until(None, || self.has_work() || self.closing());
            if !self.flag(&self.wanted) && !self.closing() && self.flag(&self.sweep) {
                // Only submitted commands: give the writers a moment to
                // sequence them with their next ones.
                let deadline = Instant::now() + SWEEP_AFTER;
                self.wake
                    .wait_until(Some(deadline), || self.flag(&self.wanted) || self.closing());
            }
            // Relaxed: hints that work may be there; the queue says.
            self.wanted.store(false, Ordering::Relaxed);
            self.sweep.store(false, Ordering::Relaxed);
            self.session(usize::MAX);
        }
        // The gate is closed and no send is in flight: once empty, the
        // queue stays empty. Wait for a writer still sequencing, if any.
        let mut sequencer = self.role.take();
        while self.batch(&mut sequencer) != Ran::Nothing {}
        sequencer.finish();
    }

    fn has_work(&self) -> bool {
        match self.mode {
            Sequencing::Thread => !self.queue.is_empty() || self.flag(&self.wanted),
            Sequencing::Combining => self.flag(&self.wanted) || self.flag(&self.sweep),
        }
    }

    fn flag(&self, flag: &AtomicBool) -> bool {
        // Relaxed: the signal's fences order the flags with their stores.
        flag.load(Ordering::Relaxed)
    }

    /// A writer left a submitted command in the queue: the thread comes for
    /// it unless a writer sequences it first.
    fn sweep_later(&self) {
        // Pairs with the fence in `session`: this sees the flag cleared, or
        // the thread's session after clearing it sees the command.
        fence(Ordering::SeqCst);
        if !self.flag(&self.sweep) {
            self.sweep.store(true, Ordering::Relaxed);
            self.wake.notify();
        }
    }

    /// Polls for work for a moment before parking.
    fn poll_briefly(&self) {
        let started = Instant::now();
        for i in 0..SPINS + YIELDS {
            if self.has_work() || self.closing() {
                return;
            }
            if i < SPINS {
                sync::spin_loop();
            } else {
                sync::yield_now();
            }
        }
        tracing::trace!(us = started.elapsed().as_micros() as u64, "sequencer parks");
    }

    fn closing(&self) -> bool {
        // Relaxed: the signal's fences order it with `close`'s notify.
        self.closing.load(Ordering::Relaxed)
    }

    /// Tells the thread to drain the queue and end (the gate must be closed
    /// and no send in flight).
    pub(crate) fn close(&self) {
        self.closing.store(true, Ordering::Relaxed);
        self.wake.notify();
    }

    /// A submitting writer found the role taken and a backlog queued: it
    /// waits (yielding its core to the sequencing thread) until the backlog
    /// is down to what it may defer, sequencing itself if the role frees.
    fn hold_back(&self) {
        while self.queue.len() > BACKLOG {
            if self.session(WRITER_ROUNDS) == 0 {
                sync::yield_now();
            }
        }
    }

    /// Drops every queued command unsequenced (each answers `Closed`): for
    /// a runtime whose sequencer thread died.
    pub(crate) fn drop_queued(&self) {
        while self.queue.try_recv().is_ok() {}
    }
}

impl<E: Event> Drain<E> for Combiner<E> {
    fn may_sequence_now(&self, by: Queued) -> bool {
        let here = match by {
            Queued::Waiting => true,
            Queued::Async => !self.durable,
            Queued::Submitted => false,
        };
        self.mode == Sequencing::Combining && here
    }

    fn sequence_now(
        &self,
        cmd: AppendCmd<E>,
        by: Queued,
    ) -> Result<Result<Appended>, AppendCmd<E>> {
        // Only with nothing queued: commands queued before it go first, and
        // a writer with a queue ahead of it joins the queue.
        if !self.may_sequence_now(by) || !self.queue.is_empty() {
            return Err(cmd);
        }
        let Some(mut sequencer) = self.role.try_take() else {
            return Err(cmd);
        };
        let back = match self.batch_with(&mut sequencer, Some(cmd)) {
            (_, Some(cmd)) => Err(cmd),
            (_, None) => Ok(sequencer.take_own()),
        };
        drop(sequencer);
        if self.look_again(false) {
            self.session(WRITER_ROUNDS - 1);
        }
        back
    }

    fn queued(&self, by: Queued) {
        match (self.mode, by) {
            (Sequencing::Thread, _) => self.wake.notify(),
            // A durable batch syncs a file: not on an executor's thread, and
            // not on a submitter's, which would wait out each sync for
            // commands it does not wait for; the thread, syncing while they
            // queue, takes them a whole queue at a time.
            (Sequencing::Combining, Queued::Async | Queued::Submitted) if self.durable => {
                self.hand_off()
            }
            (Sequencing::Combining, Queued::Submitted) if self.queue.len() < DEFER => {
                self.sweep_later()
            }
            (Sequencing::Combining, by) => {
                // Pairs with the fence in `session`: this thread sees the role
                // free, or its holder sees the command just queued.
                fence(Ordering::SeqCst);
                if self.session(WRITER_ROUNDS) == 0 && by == Queued::Submitted {
                    self.hold_back();
                }
            }
        }
    }

    fn full(&self) -> bool {
        match self.mode {
            Sequencing::Combining if self.durable => {
                // The thread makes room a sync at a time: wait for it.
                self.hand_off();
                true
            }
            Sequencing::Combining => {
                if self.session(WRITER_ROUNDS) == 0 {
                    // Someone else sequences: room comes soon.
                    sync::yield_now();
                }
                false
            }
            Sequencing::Thread => {
                self.wake.notify();
                true
            }
        }
    }

    fn help(&self) -> bool {
        self.mode == Sequencing::Combining && self.session(WRITER_ROUNDS) > 0
    }
}
