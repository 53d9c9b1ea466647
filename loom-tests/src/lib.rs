//! Helpers shared by the loom models in `tests/`.
//!
//! Run: `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test --release`.
//! Each test file holds one test, which runs the model's broken variant (in a
//! child process) and then the model itself.

use std::process::Command;

use loom::thread;
use rwlog::{Error, Position, Runtime};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

/// The event every model appends.
#[derive(Clone, Debug, PartialEq)]
pub struct Note(pub u64);

impl rwlog::Event for Note {}

const CHILD: &str = "RWLOG_LOOM_BROKEN";
const CAUGHT: &str = "RWLOG_LOOM_CAUGHT";

/// Runs a loom model and returns how many interleavings it explored.
pub fn explore(model: impl Fn() + Sync + Send + 'static) -> usize {
    let count = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&count);
    loom::model(move || {
        seen.fetch_add(1, Ordering::Relaxed);
        model();
    });
    count.load(Ordering::Relaxed)
}

static EXPLORED: AtomicUsize = AtomicUsize::new(0);
static FIRST_PANIC: AtomicBool = AtomicBool::new(true);

/// Runs the broken variant `name` of the model in test `test` and asserts
/// that loom finds its bug: an assertion failure or a deadlock in some
/// interleaving. Returns how many interleavings ran until then and what loom
/// reported.
///
/// The variant runs in a child process (this test binary, re-run for this
/// one test), because once loom reports, unwinding through rwlog's `Drop`
/// code touches loom objects mid-panic and loom aborts the process. The
/// child's panic hook reports the first failure before that can happen.
/// In the child this function does not return.
fn expect_caught(
    test: &str,
    name: &str,
    model: impl Fn() + Sync + Send + 'static,
) -> (usize, String) {
    if std::env::var(CHILD).as_deref() == Ok(name) {
        std::panic::set_hook(Box::new(|info| {
            if FIRST_PANIC.swap(false, Ordering::SeqCst) {
                let message = info
                    .payload_as_str()
                    .unwrap_or("non-string panic")
                    .replace('\n', " ");
                eprintln!("{CAUGHT} {} {message}", EXPLORED.load(Ordering::SeqCst));
            }
        }));
        loom::model(move || {
            EXPLORED.fetch_add(1, Ordering::SeqCst);
            model();
        });
        eprintln!("loom explored every interleaving without finding a bug");
        std::process::exit(0);
    }
    let exe = std::env::current_exe().expect("the test binary's path");
    let out = Command::new(exe)
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD, name)
        .output()
        .expect("re-running the test binary");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let report = stderr
        .lines()
        .find_map(|l| l.strip_prefix(CAUGHT))
        .unwrap_or_else(|| panic!("loom did not catch the broken variant `{name}`:\n{stderr}"));
    assert!(
        !out.status.success(),
        "the broken variant `{name}` exited cleanly"
    );
    let (count, message) = report.trim().split_once(' ').unwrap_or((report.trim(), ""));
    (count.parse().unwrap_or(0), message.to_owned())
}

/// The shutdown model: a writer appends while the runtime shuts down; the
/// append is acknowledged and in the log, or refused and not in it, and
/// nothing lands in the log after shutdown returns.
pub fn shutdown_model(faults: rwlog::Faults, sequencing: rwlog::Sequencing) {
    let rt = Arc::new(
        Runtime::<Note>::builder()
            .sequencing(sequencing)
            .faults(faults)
            .build()
            .unwrap(),
    );
    let w = rt.writer();
    let writer = thread::spawn(move || w.append("s", Note(1)));
    rt.shutdown().unwrap();
    let at_shutdown = rt.log().head();
    let result = writer.join().unwrap();
    assert_eq!(
        rt.log().head(),
        at_shutdown,
        "an append landed after shutdown returned"
    );
    match result {
        Ok(ack) => {
            assert_eq!(ack.position, Position(1));
            assert_eq!(rt.log().head(), Position(1), "an acked append is missing");
        }
        Err(Error::Closed) => {
            assert_eq!(rt.log().head(), Position(0), "a refused append was written")
        }
        Err(e) => panic!("unexpected error {e}"),
    }
}

/// Checks a model the standard way: first its broken variant (`model(true)`,
/// one protocol step broken), which loom must catch, then the model itself
/// (`model(false)`) over every interleaving; prints a line for each.
/// `test` is the calling test's name (the broken variant re-runs it in a
/// child process), `subject` what the model runs ("rwlog", "RwLock").
pub fn check_model(
    test: &str,
    title: &str,
    subject: &str,
    broken: &str,
    model: impl Fn(bool) + Clone + Sync + Send + 'static,
) {
    let variant = model.clone();
    let caught = expect_caught(test, broken, move || variant(true));
    report_caught(title, &format!("broken: {broken}"), caught);
    report(title, subject, explore(move || model(false)));
}

/// [`check_model`] for a model of rwlog's runtime: its broken variant runs
/// with the faults `breaks` sets. Every model file ends with this call, the
/// same shape each time (a deliberate mirror).
pub fn check_runtime_model(
    test: &str,
    title: &str,
    broken: &str,
    breaks: fn(&mut rwlog::Faults),
    model: fn(rwlog::Faults),
) {
    check_model(test, title, "rwlog", broken, move |broken| {
        let mut faults = rwlog::Faults::default();
        if broken {
            breaks(&mut faults);
        }
        model(faults)
    });
}

/// Prints a model's interleaving count (shown with `--nocapture`).
pub fn report(model: &str, variant: &str, interleavings: usize) {
    println!("loom: {model:<24} {variant:<32} {interleavings:>7} interleavings");
}

/// Prints what loom reported for a broken variant.
fn report_caught(model: &str, variant: &str, (interleavings, message): (usize, String)) {
    let short: String = message.chars().take(70).collect();
    println!("loom: {model:<24} {variant:<32} caught after {interleavings} interleavings: {short}");
}
