//! The `rwlog` tool against a real directory: info, verify (and damage
//! found, exit 3), backup (refused while a runtime has the directory, exit
//! 4), restore, and export/import through a tool that knows the event type.

use std::path::Path;
use std::process::{Command, Output};

use rwlog::{Event, Position, Runtime, Storage};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Deposited {
    amount: u64,
}
impl Event for Deposited {}

fn rwlog(args: &[&Path]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rwlog"))
        .args(args)
        .output()
        .expect("run rwlog")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn filled(dir: &Path) -> Runtime<Deposited> {
    let rt = Runtime::<Deposited>::builder()
        .storage(Storage::dir(dir).segment_bytes(8 << 10))
        .build()
        .unwrap();
    for i in 0..600 {
        rt.writer()
            .append(format!("acct-{}", i % 7), Deposited { amount: i })
            .unwrap();
    }
    rt
}

#[test]
fn info_verify_backup_and_restore_on_a_real_directory() {
    let root = tempfile::tempdir().unwrap();
    let log = root.path().join("log");
    let rt = filled(&log);
    let p = |s: &str| root.path().join(s);

    // While a runtime has it: info works, an offline backup is refused.
    let info = rwlog(&[Path::new("info"), &log]);
    assert_eq!(info.status.code(), Some(0), "{}", text(&info));
    assert!(
        text(&info).contains("head           600"),
        "{}",
        text(&info)
    );
    let busy = rwlog(&[Path::new("backup"), &log, &p("b0")]);
    assert_eq!(busy.status.code(), Some(4), "{}", text(&busy));
    assert!(text(&busy).contains("in use"), "{}", text(&busy));
    rt.shutdown().unwrap();
    drop(rt);

    let ok = rwlog(&[Path::new("verify"), &log]);
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok));
    assert!(text(&ok).contains("600 events"), "{}", text(&ok));

    let backup = rwlog(&[Path::new("backup"), &log, &p("backup")]);
    assert_eq!(backup.status.code(), Some(0), "{}", text(&backup));
    let restore = rwlog(&[Path::new("restore"), &p("backup"), &p("copy")]);
    assert_eq!(restore.status.code(), Some(0), "{}", text(&restore));
    let again = rwlog(&[Path::new("restore"), &p("backup"), &p("copy")]);
    assert_eq!(again.status.code(), Some(4), "{}", text(&again));
    let copy = Runtime::<Deposited>::builder()
        .storage(Storage::dir(p("copy")))
        .build()
        .unwrap();
    assert_eq!(copy.log().head(), Position(600));
    drop(copy);

    // A flipped byte in a frame: found, named, exit 3.
    let seg = std::fs::read_dir(&log)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "seg"))
        .unwrap();
    let mut bytes = std::fs::read(&seg).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x40;
    std::fs::write(&seg, &bytes).unwrap();
    let bad = rwlog(&[Path::new("verify"), &log]);
    assert_eq!(bad.status.code(), Some(3), "{}", text(&bad));
    assert!(
        text(&bad).contains(seg.file_name().unwrap().to_str().unwrap()),
        "{}",
        text(&bad)
    );

    // No such directory, a bad command: clear, non-zero.
    let missing = rwlog(&[Path::new("info"), &p("nowhere")]);
    assert_eq!(missing.status.code(), Some(1), "{}", text(&missing));
    assert!(
        text(&missing).contains("not an rwlog log directory"),
        "{}",
        text(&missing)
    );
    let code = rwlog::cli::run::<Deposited>(["rwlog", "export", p("typo").to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(
        !p("typo").exists(),
        "export made the directory it was given"
    );
    let usage = rwlog(&[Path::new("frobnicate")]);
    assert_eq!(usage.status.code(), Some(2), "{}", text(&usage));
}

#[test]
fn export_and_import_need_the_event_type() {
    let root = tempfile::tempdir().unwrap();
    let log = root.path().join("log");
    filled(&log).shutdown().unwrap();
    let untyped = rwlog(&[Path::new("export"), &log]);
    assert_eq!(untyped.status.code(), Some(2), "{}", text(&untyped));
    assert!(text(&untyped).contains("main_for"), "{}", text(&untyped));

    // A tool built with the type: export, import into a new directory, twice.
    let file = root.path().join("events.jsonl");
    let s = |p: &Path| p.to_str().unwrap().to_owned();
    let code = rwlog::cli::run::<Deposited>(["rwlog", "export", &s(&log), "--out", &s(&file)]);
    assert_eq!(code, 0);
    let copy = root.path().join("copy");
    for _ in 0..2 {
        let code = rwlog::cli::run::<Deposited>(["rwlog", "import", &s(&copy), &s(&file)]);
        assert_eq!(code, 0);
    }
    let rt = Runtime::<Deposited>::builder()
        .storage(Storage::dir(&copy))
        .build()
        .unwrap();
    assert_eq!(rt.log().head(), Position(600));
    assert_eq!(rt.log().stream_version("acct-3"), 86);
}

#[test]
fn inspecting_a_log_a_runtime_is_appending_to_never_reports_damage() {
    let root = tempfile::tempdir().unwrap();
    let log = root.path().join("log");
    let rt = filled(&log);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (w, stop) = (rt.writer(), std::sync::Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut i = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                w.append_batch("busy", (0..20).map(|k| Deposited { amount: i + k }))
                    .unwrap();
                i += 20;
            }
        })
    };
    let mut last = Position(0);
    for _ in 0..200 {
        let seen = rwlog::ops::inspect(&log).expect("a healthy live log");
        assert!(seen.head >= last);
        last = seen.head;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    writer.join().unwrap();
}

#[test]
fn a_checkpoint_that_proves_a_loss_fails_verify_and_the_offline_backup() {
    let root = tempfile::tempdir().unwrap();
    let log = root.path().join("log");
    let open = || {
        Runtime::<Deposited>::builder()
            .storage(Storage::dir(&log).durability(rwlog::Durability::Fsync))
            .build()
            .unwrap()
    };
    let rt = open();
    for i in 0..20 {
        rt.writer().append("a", Deposited { amount: i }).unwrap();
    }
    rt.shutdown().unwrap();
    drop(rt);
    let seg = std::fs::read_dir(&log)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "seg"))
        .unwrap();
    let at_20 = std::fs::metadata(&seg).unwrap().len();
    let rt = open();
    let options = rwlog::ProjectionOptions {
        checkpoint_every: 1,
    };
    let p = rt
        .projection_with("audit", options, |_: &rwlog::Recorded<Deposited>| Ok(()))
        .unwrap();
    for i in 0..30 {
        rt.writer().append("a", Deposited { amount: i }).unwrap();
    }
    p.wait_for(Position(50), std::time::Duration::from_secs(20))
        .unwrap();
    drop(p);
    rt.shutdown().unwrap();
    drop(rt);
    // The segment loses positions 21..=50; the checkpoint at 50 proves it.
    std::fs::OpenOptions::new()
        .write(true)
        .open(&seg)
        .unwrap()
        .set_len(at_20)
        .unwrap();
    for outcome in [
        rwlog::ops::verify(&log).map(|_| ()),
        rwlog::ops::backup_dir(&log, root.path().join("b"), |_| {}).map(|_| ()),
    ] {
        match outcome {
            Err(rwlog::Error::Corrupt { reason, .. }) => {
                assert!(reason.contains("21..=50 are lost"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn archive_moves_whole_segments_and_a_reopen_starts_at_the_horizon() {
    let root = tempfile::tempdir().unwrap();
    let log = root.path().join("log");
    let rt = filled(&log);
    let versions: Vec<u64> = (0..7)
        .map(|s| rt.log().stream_version(&format!("acct-{s}")))
        .collect();
    // Refused while a runtime has the directory.
    let busy = rwlog(&[
        Path::new("archive"),
        &log,
        Path::new("--before"),
        Path::new("500"),
        Path::new("--no-views"),
    ]);
    assert_eq!(busy.status.code(), Some(4), "{}", text(&busy));
    rt.shutdown().unwrap();
    drop(rt);
    // The program's views must be named (or said to be none).
    let at = |extra: &[&str]| {
        let mut args = vec![
            Path::new("archive"),
            &log,
            Path::new("--before"),
            Path::new("500"),
        ];
        args.extend(extra.iter().map(Path::new));
        rwlog(&args)
    };
    let unsaid = at(&[]);
    assert_eq!(unsaid.status.code(), Some(2), "{}", text(&unsaid));
    // A view without a snapshot yet holds the horizon at the start.
    let held = at(&["--view", "totals"]);
    assert_eq!(held.status.code(), Some(0), "{}", text(&held));
    assert!(text(&held).contains("view `totals`"), "{}", text(&held));
    let done = rwlog(&[
        Path::new("archive"),
        &log,
        Path::new("--before"),
        Path::new("500"),
        Path::new("--no-views"),
    ]);
    assert_eq!(done.status.code(), Some(0), "{}", text(&done));
    assert!(text(&done).contains("moved to archive/"), "{}", text(&done));
    let info = rwlog(&[Path::new("info"), &log]);
    let said = text(&info);
    let first: u64 = said
        .lines()
        .find_map(|l| {
            l.strip_prefix("first")?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no first line in:\n{said}"));
    assert!(first > 1 && first <= 500, "{said}");
    let verify = rwlog(&[Path::new("verify"), &log]);
    assert_eq!(verify.status.code(), Some(0), "{}", text(&verify));
    let counted = format!("ok: {} events (positions {first}..=600)", 601 - first);
    assert!(text(&verify).contains(&counted), "{}", text(&verify));
    // The program opens it at the horizon, with every stream's version.
    let rt = Runtime::<Deposited>::builder()
        .storage(Storage::dir(&log))
        .build()
        .unwrap();
    assert_eq!(
        (rt.log().first(), rt.log().head()),
        (Position(first), Position(600))
    );
    for (s, v) in versions.iter().enumerate() {
        assert_eq!(rt.log().stream_version(&format!("acct-{s}")), *v);
    }
    rt.writer()
        .append("acct-0", Deposited { amount: 1 })
        .unwrap();
    assert_eq!(rt.log().stream_version("acct-0"), versions[0] + 1);
    let bad = rwlog(&[
        Path::new("archive"),
        &root.path().join("nowhere"),
        Path::new("--before"),
        Path::new("5"),
        Path::new("--no-views"),
    ]);
    assert_eq!(bad.status.code(), Some(1), "{}", text(&bad));
    assert!(
        text(&bad).contains("not an rwlog log directory"),
        "{}",
        text(&bad)
    );
}
