//! Runs a fixed amount of work on several threads and times it, for
//! criterion's `iter_custom`.
#![allow(dead_code)]

use std::hint::black_box;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use crate::contenders::{Contender, Keys};

/// `readers` threads each doing `iters` reads, `writers` threads each doing
/// `iters` writes (flushed, so they are visible to readers), and `mixers`
/// threads each doing `iters` operations of which `read_pct`% are reads. Returns
/// the wall time from the common start until the last thread is done,
/// divided by the thread count, so criterion reports time per operation.
pub fn timed(
    c: &Arc<Contender>,
    readers: usize,
    writers: usize,
    mixers: usize,
    read_pct: u64,
    iters: u64,
) -> Duration {
    let threads = readers + writers + mixers;
    let start = Arc::new(Barrier::new(threads + 1));
    let mut handles = Vec::with_capacity(threads);
    for i in 0..readers {
        let (mut r, start) = (c.reader(), Arc::clone(&start));
        handles.push(thread::spawn(move || {
            let mut keys = Keys::new(1 + i as u64);
            start.wait();
            for _ in 0..iters {
                black_box(r.get(keys.next()));
            }
        }));
    }
    for i in 0..writers {
        let (mut w, start) = (c.writer(i), Arc::clone(&start));
        handles.push(thread::spawn(move || {
            let mut keys = Keys::new(100 + i as u64);
            start.wait();
            for n in 0..iters {
                w.set(keys.next(), n);
            }
            w.flush();
        }));
    }
    for i in 0..mixers {
        let (mut r, mut w, start) = (c.reader(), c.writer(1000 + i), Arc::clone(&start));
        handles.push(thread::spawn(move || {
            let mut keys = Keys::new(200 + i as u64);
            start.wait();
            for n in 0..iters {
                let k = keys.next();
                if k % 100 < read_pct {
                    black_box(r.get(k));
                } else {
                    w.set(k, n);
                }
            }
            w.flush();
        }));
    }
    start.wait();
    let t = Instant::now();
    for h in handles {
        h.join().expect("bench thread");
    }
    t.elapsed() / threads.max(1) as u32
}
