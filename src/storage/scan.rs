//! The scan at open: every snapshot and checkpoint in the directory,
//! judged against the recovered log before anything is trusted, and what
//! to do with those that do not fit.

use std::path::{Path, PathBuf};

use crate::error::Result;
use crate::position::Position;

use super::claim::{Claim, ClaimFile, LogFacts, Verdict};
use super::files;
use super::report::RecoveryReport;
use super::{checkpoint, snapshot};

/// What the scan found, before anything is changed.
#[derive(Debug, Default)]
pub(crate) struct Findings {
    /// Files to move aside, with why.
    pub(crate) unfit: Vec<(PathBuf, String)>,
    /// Files that prove a loss: (file, what it is, the position it proves).
    pub(crate) proofs: Vec<(PathBuf, String, Position)>,
    /// Checkpoints beyond the head without proof, to move back to the head.
    pub(crate) rewind: Vec<(PathBuf, String)>,
    /// Leftover temporary files of interrupted writes.
    pub(crate) leftovers: Vec<PathBuf>,
}

impl Findings {
    /// The highest proven position and the file proving it.
    pub(crate) fn strongest_proof(&self) -> Option<&(PathBuf, String, Position)> {
        self.proofs.iter().max_by_key(|(_, _, p)| *p)
    }
}

/// Checks every claim-carrying file in `dir` (of kind `kind`, named
/// `<something>.<ext>`, made for `name`) against the log.
pub(crate) fn scan_dir(
    dir: &Path,
    ext: &str,
    kind: &ClaimFile,
    name_of: impl Fn(&Path) -> String,
    log: &LogFacts<'_>,
    found: &mut Findings,
) -> Result<()> {
    for path in files::list(dir)? {
        let file = files::name_of(&path);
        if file.ends_with(".tmp") {
            found.leftovers.push(path);
            continue;
        }
        if !file.ends_with(ext) {
            continue;
        }
        let claim = match (kind.read)(&path) {
            Ok(claim) => claim,
            Err(reason) => {
                found
                    .unfit
                    .push((path, format!("a damaged {}: {reason}", kind.what)));
                continue;
            }
        };
        let name = name_of(&path);
        match claim.judge(log, &name) {
            Verdict::Fits | Verdict::Archived => {}
            Verdict::Proof => {
                let what = format!("{} of `{name}`", kind.what);
                found.proofs.push((path, what, claim.position));
            }
            Verdict::Beyond if kind.rewinds => found.rewind.push((path, beyond(log.head))),
            Verdict::Beyond => found
                .unfit
                .push((path, format!("a {} {}", kind.what, beyond(log.head)))),
            Verdict::Unfit(reason) => found
                .unfit
                .push((path, format!("a {} {reason}", kind.what))),
        }
    }
    Ok(())
}

/// Checks every snapshot and checkpoint in the directory against the log.
pub(super) fn scan_claims(root: &Path, facts: &LogFacts<'_>) -> Result<Findings> {
    let mut found = Findings::default();
    for view_dir in files::subdirs(&snapshot::root(root))? {
        let view = files::name_of(&view_dir).to_owned();
        scan_dir(
            &view_dir,
            ".snap",
            &snapshot::KIND,
            |_| view.clone(),
            facts,
            &mut found,
        )?;
    }
    let checkpoints = checkpoint::root(root);
    scan_dir(
        &checkpoints,
        ".checkpoint",
        &checkpoint::KIND,
        checkpoint::name_of,
        facts,
        &mut found,
    )?;
    Ok(found)
}

/// Sets aside the files the scan found unfit (and, after an accepted loss,
/// the snapshots that prove it), moves checkpoints back to the head, and
/// removes leftovers of interrupted writes.
pub(super) fn apply_findings(
    root: &Path,
    found: Findings,
    facts: &LogFacts<'_>,
    report: &mut RecoveryReport,
) -> Result<()> {
    for path in &found.leftovers {
        files::remove(path)?;
    }
    let mut rewind = found.rewind;
    let mut unfit = found.unfit;
    for (path, what, proven) in found.proofs {
        let reason =
            format!("a {what} at position {proven}, beyond the recovered head (loss accepted)");
        match what.starts_with("checkpoint") {
            true => rewind.push((path, reason)),
            false => unfit.push((path, reason)),
        }
    }
    for (path, reason) in unfit {
        let to = files::move_aside(root, &path)?;
        tracing::warn!(file = %path.display(), aside = %to.display(), %reason, "set aside at open");
        report.set_aside.push((path, to, reason));
    }
    for (path, reason) in rewind {
        let name = checkpoint::name_of(&path);
        // Keep the original for whoever looks into the loss.
        let kept = files::aside_path(root, &path);
        if let Some(parent) = kept.parent() {
            files::create_dir(parent)?;
        }
        std::fs::copy(&path, &kept).map_err(files::at(&path, "copy aside"))?;
        report.set_aside.push((
            path.clone(),
            kept,
            format!("{reason}; moved back to the head"),
        ));
        let event_id = (facts.id_at)(facts.head);
        match event_id {
            Some(event_id) => {
                let claim = Claim {
                    log_id: facts.log_id,
                    name: name.clone(),
                    position: facts.head,
                    event_id,
                    synced: false,
                };
                checkpoint::write(path.parent().unwrap_or(root), &claim)?;
            }
            None => files::remove(&path)?,
        }
        tracing::warn!(projection = %name, head = %facts.head, %reason, "checkpoint moved back to the recovered head");
    }
    Ok(())
}

fn beyond(head: Position) -> String {
    format!("beyond the recovered head {head}, written while the log was not synced")
}
