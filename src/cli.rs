//! The `rwlog` command-line tool (feature `cli`), and the way to build one
//! that knows your event type.
//!
//! ```text
//! rwlog info DIR                what the directory holds: identity, head, segments, snapshots, checkpoints
//! rwlog verify DIR              every batch header and frame checksum
//! rwlog backup DIR DEST         a backup of a directory no runtime has open (progress on a terminal)
//! rwlog restore BACKUP DIR      check every byte of BACKUP, then restore it into DIR
//! rwlog export DIR [--from P] [--to P] [--out FILE]   (else standard output)
//! rwlog import DIR [FILE]       (FILE or standard input; DIR is made if missing)
//! rwlog archive DIR --before P (--view NAME ... | --no-views) [--delete]
//! ```
//!
//! Exit codes: 0 done; 1 an error (I/O, a bad import line); 2 bad usage
//! (`export` or `import` in a tool without the event type included);
//! 3 damage found (the message names the file and offset); 4 the
//! directory is in use by a runtime, or a target is not empty.
//!
//! `export` and `import` go through serde, so they need the event type:
//! the `rwlog` binary, which does not know it, says so. Build a binary of
//! your own in three lines for them:
//!
//! ```no_run
//! # #[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
//! # struct MyEvent;
//! # impl rwlog::Event for MyEvent {}
//! fn main() -> std::process::ExitCode {
//!     rwlog::cli::main_for::<MyEvent>()
//! }
//! ```

use std::ffi::OsString;
use std::io::{self, BufRead, IsTerminal, Write};
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::event::Event;
use crate::ops;
use crate::position::Position;
use crate::runtime::Runtime;
use crate::storage::{ArchiveMode, BackupProgress, Storage};

#[derive(Parser)]
#[command(
    name = "rwlog",
    version,
    about = "Operate rwlog log directories",
    after_help = "Exit codes: 0 done; 1 an error; 2 bad usage; 3 damage found (file and offset named); \
                  4 the directory is in use by a runtime, or a target is not empty."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// What a log directory holds: identity, head, segments, snapshots, checkpoints.
    Info {
        /// The log directory.
        dir: PathBuf,
    },
    /// Checks every batch header and every frame checksum of a log directory.
    Verify {
        /// The log directory.
        dir: PathBuf,
    },
    /// Backs up a log directory that no runtime has open into DEST (new or empty).
    Backup {
        /// The log directory (for a log in use, call `Runtime::backup` in its process).
        dir: PathBuf,
        /// Where the backup goes: a new or empty directory.
        dest: PathBuf,
    },
    /// Checks every byte of BACKUP, then restores it into DIR (new or empty).
    Restore {
        /// A backup directory (holding `rwlog.backup`).
        backup: PathBuf,
        /// Where the log goes: a new or empty directory.
        dir: PathBuf,
    },
    /// Archives the segments wholly before position P of a log directory no runtime has open.
    Archive {
        /// The log directory.
        dir: PathBuf,
        /// Archive the whole segments before this position (kept: the one holding it).
        #[arg(long, value_name = "P")]
        before: u64,
        /// Delete the archived segments instead of moving them to DIR/archive/.
        #[arg(long)]
        delete: bool,
        /// A persisted view of the program (repeat for each): archiving stops at its newest snapshot.
        #[arg(
            long = "view",
            value_name = "NAME",
            required_unless_present = "no_views"
        )]
        views: Vec<String>,
        /// The program has no views (else name them with --view).
        #[arg(long, conflicts_with = "views")]
        no_views: bool,
    },
    /// Writes the log as JSON lines to standard output (needs the event type).
    Export {
        /// The log directory.
        dir: PathBuf,
        /// The first position to write.
        #[arg(long)]
        from: Option<u64>,
        /// The last position to write.
        #[arg(long)]
        to: Option<u64>,
        /// Write to this file instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Appends the JSON lines of FILE (or standard input) to the log (needs the event type).
    Import {
        /// The log directory (made if missing).
        dir: PathBuf,
        /// A JSON-lines file; standard input without it.
        file: Option<PathBuf>,
    },
}

/// What `export` and `import` need of the event type.
trait Typed {
    fn export(&self, dir: &Path, from: u64, to: u64, out: &mut dyn Write) -> Result<u64>;
    fn import(&self, dir: &Path, input: &mut dyn BufRead) -> Result<String>;
}

/// The `rwlog` binary's: no event type.
struct Untyped;

impl Typed for Untyped {
    fn export(&self, _: &Path, _: u64, _: u64, _: &mut dyn Write) -> Result<u64> {
        Err(Error::Config(NEEDS_TYPE))
    }

    fn import(&self, _: &Path, _: &mut dyn BufRead) -> Result<String> {
        Err(Error::Config(NEEDS_TYPE))
    }
}

const NEEDS_TYPE: &str = "export and import decode events, so they need the event type: \
    build a binary of your own with `rwlog::cli::main_for::<YourEvent>()`";

struct With<E>(PhantomData<fn() -> E>);

impl<E: Event + Serialize + DeserializeOwned> Typed for With<E> {
    fn export(&self, dir: &Path, from: u64, to: u64, out: &mut dyn Write) -> Result<u64> {
        // Opening a runtime would make a missing directory a new log.
        if !dir.join("rwlog.id").is_file() {
            let why = format!("{}: not an rwlog log directory", dir.display());
            return Err(io::Error::new(io::ErrorKind::NotFound, why).into());
        }
        let rt = Runtime::<E>::builder().storage(Storage::dir(dir)).build()?;
        rt.export_jsonl(out, Position(from)..=Position(to))
    }

    fn import(&self, dir: &Path, input: &mut dyn BufRead) -> Result<String> {
        let rt = Runtime::<E>::builder().storage(Storage::dir(dir)).build()?;
        let done = rt.import_jsonl(input)?;
        rt.shutdown()?;
        Ok(format!(
            "read {} events: {} appended, {} already in the log; head {}",
            done.read,
            done.appended,
            done.skipped,
            rt.log().head()
        ))
    }
}

/// The `rwlog` binary: every command but `export` and `import`.
pub fn main() -> ExitCode {
    exit(run_with(std::env::args_os(), &Untyped))
}

/// A `rwlog` tool that knows the event type `E`: every command.
pub fn main_for<E: Event + Serialize + DeserializeOwned>() -> ExitCode {
    exit(run_with(std::env::args_os(), &With::<E>(PhantomData)))
}

/// Runs the tool on `args` (the first is the program's name) with event
/// type `E`, writing to standard output and error; returns the exit code.
pub fn run<E: Event + Serialize + DeserializeOwned>(
    args: impl IntoIterator<Item = impl Into<OsString> + Clone>,
) -> u8 {
    run_with(args, &With::<E>(PhantomData))
}

fn exit(code: u8) -> ExitCode {
    ExitCode::from(code)
}

fn run_with(args: impl IntoIterator<Item = impl Into<OsString> + Clone>, typed: &dyn Typed) -> u8 {
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 2 } else { 0 };
        }
    };
    let archiving = matches!(cli.command, Command::Archive { .. });
    match command(cli.command, typed) {
        Ok(()) => 0,
        // The reader of the output went away (`rwlog info DIR | head`).
        Err(Error::Io(e)) if e.kind() == io::ErrorKind::BrokenPipe => 0,
        Err(e) => {
            eprintln!("rwlog: {e}");
            if matches!(e, Error::Locked { .. }) {
                let how = match archiving {
                    true => "archived from its own process: `Runtime::archive_before`",
                    false => "backed up from its own process: `Runtime::backup`",
                };
                eprintln!("rwlog: a log in use is {how}");
            }
            code_of(&e)
        }
    }
}

/// The exit code for an error.
fn code_of(e: &Error) -> u8 {
    match e {
        // This tool was asked for what it cannot do: bad usage.
        Error::Config(why) if *why == NEEDS_TYPE => 2,
        Error::Corrupt { .. } => 3,
        Error::Locked { .. } | Error::NotEmpty { .. } => 4,
        _ => 1,
    }
}

fn command(command: Command, typed: &dyn Typed) -> Result<()> {
    let mut out = io::stdout().lock();
    match command {
        Command::Info { dir } => write!(out, "{}", ops::inspect(&dir)?)?,
        Command::Verify { dir } => verify(&dir, &mut out)?,
        Command::Backup { dir, dest } => {
            let mut bar = Bar::new();
            let done = ops::backup_dir(&dir, &dest, |p| bar.show(p))?;
            bar.finish();
            writeln!(
                out,
                "backed up positions 1..={} ({} files, {} bytes) into {}",
                done.head.0,
                done.files,
                done.bytes,
                dest.display()
            )?;
        }
        Command::Restore { backup, dir } => {
            let done = Runtime::<Nothing>::restore(&backup, &dir)?;
            writeln!(
                out,
                "restored positions 1..={} ({} files, {} bytes) into {}",
                done.head.0,
                done.files,
                done.bytes,
                dir.display()
            )?;
        }
        Command::Archive {
            dir,
            before,
            delete,
            views,
            no_views: _,
        } => archive(&dir, before, delete, &views, &mut out)?,
        Command::Export {
            dir,
            from,
            to,
            out: file,
        } => {
            let (from, to) = (from.unwrap_or(1), to.unwrap_or(u64::MAX));
            export(typed, &dir, from, to, file.as_deref(), &mut out)?;
        }
        Command::Import { dir, file } => {
            let said = import(typed, &dir, file.as_deref())?;
            writeln!(out, "{said}")?;
        }
    }
    Ok(())
}

fn verify(dir: &Path, out: &mut dyn Write) -> Result<()> {
    let summary = ops::verify(dir)?;
    let events = (summary.head.0 + 1).saturating_sub(summary.first.0);
    writeln!(
        out,
        "ok: {events} events (positions {}..={}) in {} segments, every checksum matches",
        summary.first.0,
        summary.head.0,
        summary.segments.len()
    )?;
    Ok(())
}

fn archive(
    dir: &Path,
    before: u64,
    delete: bool,
    views: &[String],
    out: &mut dyn Write,
) -> Result<()> {
    let mode = match delete {
        true => ArchiveMode::Delete,
        false => ArchiveMode::Move,
    };
    let views: Vec<&str> = views.iter().map(String::as_str).collect();
    let done = ops::archive_dir(dir, Position(before), mode, &views)?;
    let gone = if delete {
        "deleted"
    } else {
        "moved to archive/"
    };
    writeln!(
        out,
        "the log starts at position {}: {} segments ({} bytes) {gone}",
        done.first, done.segments, done.bytes
    )?;
    if let Some(why) = done.held_back {
        writeln!(out, "not as far as asked: {why}")?;
    }
    Ok(())
}

fn export(
    typed: &dyn Typed,
    dir: &Path,
    from: u64,
    to: u64,
    file: Option<&Path>,
    out: &mut dyn Write,
) -> Result<()> {
    let n = match file {
        Some(path) => {
            let mut f = std::fs::File::create(path).map_err(|e| named(path, e))?;
            typed.export(dir, from, to, &mut f)?
        }
        None => typed.export(dir, from, to, out)?,
    };
    eprintln!("exported {n} events");
    Ok(())
}

fn import(typed: &dyn Typed, dir: &Path, file: Option<&Path>) -> Result<String> {
    match file {
        Some(path) => {
            let f = std::fs::File::open(path).map_err(|e| named(path, e))?;
            typed.import(dir, &mut io::BufReader::new(f))
        }
        None => typed.import(dir, &mut io::stdin().lock()),
    }
}

/// An I/O error naming the file.
fn named(path: &Path, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

/// An event type for what needs none (a restore copies bytes).
#[derive(Clone)]
enum Nothing {}

impl Event for Nothing {}

/// A progress bar on standard error, when it is a terminal.
struct Bar {
    on: bool,
}

impl Bar {
    fn new() -> Bar {
        Bar {
            on: io::stderr().is_terminal(),
        }
    }

    fn show(&mut self, p: BackupProgress) {
        if !self.on {
            return;
        }
        let share = (p.events as f64 / p.total_events.max(1) as f64).min(1.0);
        let filled = (share * 30.0) as usize;
        let mib = p.bytes as f64 / (1 << 20) as f64;
        eprint!(
            "\r[{}{}] {:>3.0}%  {}/{} events  {mib:.1} MiB",
            "#".repeat(filled),
            "-".repeat(30 - filled),
            share * 100.0,
            p.events,
            p.total_events
        );
    }

    fn finish(&self) {
        if self.on {
            eprintln!();
        }
    }
}
