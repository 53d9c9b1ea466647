//! Runs readers, writers and mixed threads against one contender, for a
//! fixed number of operations each (criterion's `iter_custom`) or until
//! told to stop (the compare example's timed windows).
#![allow(dead_code)]

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::contenders::{Contender, Keys};

/// How long each thread runs.
#[derive(Clone)]
pub enum Run {
    /// This many operations.
    Iters(u64),
    /// Until the flag is set.
    Until(Arc<AtomicBool>),
}

impl Run {
    /// Calls `step` in chunks of `chunk` until done; returns the calls.
    fn each(&self, chunk: u64, mut step: impl FnMut()) -> u64 {
        match self {
            Run::Iters(n) => {
                (0..*n).for_each(|_| step());
                *n
            }
            Run::Until(stop) => {
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    (0..chunk).for_each(|_| step());
                    n += chunk;
                }
                n
            }
        }
    }
}

/// Threads started and waiting at a barrier for [`Workers::go`].
pub struct Workers {
    start: Arc<Barrier>,
    handles: Vec<JoinHandle<(u64, u64)>>,
}

/// What the threads do: `readers` read, `writers` write (flushed at the
/// end, so every write is visible to readers), `mixers` read `read_pct`%
/// of the time and write otherwise.
#[derive(Clone, Copy)]
pub struct Mix {
    pub readers: usize,
    pub writers: usize,
    pub mixers: usize,
    pub read_pct: u64,
}

impl Workers {
    /// Starts the threads; they wait for [`go`](Workers::go).
    pub fn spawn(c: &Arc<Contender>, mix: Mix, run: Run) -> Workers {
        let threads = mix.readers + mix.writers + mix.mixers;
        let start = Arc::new(Barrier::new(threads + 1));
        let mut handles = Vec::with_capacity(threads);
        let spawn = |f: Box<dyn FnOnce() -> (u64, u64) + Send>| {
            let start = Arc::clone(&start);
            thread::spawn(move || {
                start.wait();
                f()
            })
        };
        for i in 0..mix.readers {
            let (mut r, run) = (c.reader(), run.clone());
            let mut keys = Keys::new(1 + i as u64);
            handles.push(spawn(Box::new(move || {
                (
                    run.each(256, || {
                        black_box(r.get(keys.next()));
                    }),
                    0,
                )
            })));
        }
        for i in 0..mix.writers {
            let (mut w, run) = (c.writer(i), run.clone());
            let mut keys = Keys::new(100 + i as u64);
            handles.push(spawn(Box::new(move || {
                let mut n = 0;
                let writes = run.each(16, || {
                    w.set(keys.next(), n);
                    n += 1;
                });
                w.flush();
                (0, writes)
            })));
        }
        for i in 0..mix.mixers {
            let (mut r, mut w, run) = (c.reader(), c.writer(1000 + i), run.clone());
            let mut keys = Keys::new(200 + i as u64);
            let read_pct = mix.read_pct;
            handles.push(spawn(Box::new(move || {
                let (mut reads, mut writes) = (0, 0);
                run.each(64, || {
                    let k = keys.next();
                    if k % 100 < read_pct {
                        black_box(r.get(k));
                        reads += 1;
                    } else {
                        w.set(k, writes);
                        writes += 1;
                    }
                });
                w.flush();
                (reads, writes)
            })));
        }
        Workers { start, handles }
    }

    /// Lets every thread start at once.
    pub fn go(&self) {
        self.start.wait();
    }

    /// Waits for every thread; the reads and writes they did.
    pub fn join(self) -> (u64, u64) {
        self.handles
            .into_iter()
            .map(|h| h.join().expect("bench thread"))
            .fold((0, 0), |(r, w), (a, b)| (r + a, w + b))
    }
}

/// Runs `iters` operations on every thread of `mix` and returns the wall
/// time from the common start until the last thread is done, divided by the
/// thread count, so criterion reports time per operation.
pub fn timed(c: &Arc<Contender>, mix: Mix, iters: u64) -> Duration {
    let threads = (mix.readers + mix.writers + mix.mixers).max(1);
    let workers = Workers::spawn(c, mix, Run::Iters(iters));
    workers.go();
    let t = Instant::now();
    workers.join();
    t.elapsed() / threads as u32
}
