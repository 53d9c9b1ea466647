//! File-system helpers: errors that name their path, atomic file
//! replacement, directory sync, and setting files aside.

// Without the `durable` feature only `is_plain_file_name` is used.
#![cfg_attr(not(feature = "durable"), allow(dead_code))]

use std::fmt;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// An I/O error with the operation and path it happened on. Wrapped in an
/// `io::Error` of the same kind, so callers can still match on the kind.
#[derive(Debug)]
struct PathError {
    op: &'static str,
    path: PathBuf,
    source: io::Error,
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.op, self.path.display(), self.source)
    }
}

impl std::error::Error for PathError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// Turns an error of `op` on `path` into one that names both.
pub(crate) fn at<'a>(path: &'a Path, op: &'static str) -> impl FnOnce(io::Error) -> io::Error + 'a {
    move |source| {
        io::Error::new(
            source.kind(),
            PathError {
                op,
                path: path.to_path_buf(),
                source,
            },
        )
    }
}

/// Syncs a directory, so that a file created, renamed or removed in it
/// survives a crash.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(at(dir, "sync directory"))
}

/// Creates `dir` and its parents if missing, durably: each directory made
/// is synced into its parent, so that what is written in it later survives
/// a crash together with the directory itself.
pub(crate) fn create_dir(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut missing = vec![dir];
    while let Some(parent) = missing.last().and_then(|d| d.parent()) {
        if parent.as_os_str().is_empty() || parent.is_dir() {
            break;
        }
        missing.push(parent);
    }
    fs::create_dir_all(dir).map_err(at(dir, "create directory"))?;
    for made in missing.iter().rev() {
        match made.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => sync_dir(parent)?,
            _ => sync_dir(Path::new("."))?,
        }
    }
    Ok(())
}

/// Replaces `dir/name` with `bytes` so that a crash leaves the old file or
/// the new one, whole: a temporary file, synced, renamed over the target,
/// and the directory synced.
pub(crate) fn write_atomically(dir: &Path, name: &str, bytes: &[u8]) -> io::Result<()> {
    create_dir(dir)?;
    let tmp = dir.join(format!("{name}.tmp"));
    let mut file = File::create(&tmp).map_err(at(&tmp, "create"))?;
    file.write_all(bytes).map_err(at(&tmp, "write"))?;
    file.sync_all().map_err(at(&tmp, "sync"))?;
    drop(file);
    let path = dir.join(name);
    fs::rename(&tmp, &path).map_err(at(&path, "rename into place"))?;
    sync_dir(dir)
}

/// Reads a whole file, naming it in the error.
pub(crate) fn read(path: &Path) -> io::Result<Vec<u8>> {
    fs::read(path).map_err(at(path, "read"))
}

/// The entries of a directory that are files, sorted by name; empty if the
/// directory does not exist.
pub(crate) fn list(dir: &Path) -> io::Result<Vec<PathBuf>> {
    entries(dir, |kind| kind.is_file())
}

/// The subdirectories of a directory, sorted; empty if it does not exist.
pub(crate) fn subdirs(dir: &Path) -> io::Result<Vec<PathBuf>> {
    entries(dir, |kind| kind.is_dir())
}

fn entries(dir: &Path, wanted: impl Fn(fs::FileType) -> bool) -> io::Result<Vec<PathBuf>> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(at(dir, "list")(e)),
    };
    let mut found = Vec::new();
    for entry in entries {
        let entry = entry.map_err(at(dir, "list"))?;
        if wanted(entry.file_type().map_err(at(&entry.path(), "stat"))?) {
            found.push(entry.path());
        }
    }
    found.sort();
    Ok(found)
}

/// The segment files, by first position.
pub(crate) fn list_segments(root: &Path) -> crate::error::Result<Vec<(u64, PathBuf)>> {
    let mut segments = Vec::new();
    for path in list(root)? {
        let Some(stem) = name_of(&path).strip_suffix(".seg") else {
            continue;
        };
        let first = stem
            .parse::<u64>()
            .map_err(|_| crate::error::Error::Corrupt {
                file: path.clone(),
                offset: 0,
                reason: "a segment file name that is not a position".into(),
            })?;
        segments.push((first, path));
    }
    segments.sort();
    Ok(segments)
}

/// The file name of `path` as text ("" if it has none).
pub(crate) fn name_of(path: &Path) -> &str {
    path.file_name().and_then(|n| n.to_str()).unwrap_or("")
}

/// Where `file` (under `root`) goes when set aside: the same relative path
/// under `root/aside/`, with a numeric suffix if that name is taken.
pub(crate) fn aside_path(root: &Path, file: &Path) -> PathBuf {
    let relative = match file.strip_prefix(root) {
        Ok(relative) => relative,
        Err(_) => Path::new(file.file_name().unwrap_or(file.as_os_str())),
    };
    let target = root.join("aside").join(relative);
    if !target.exists() {
        return target;
    }
    (1..)
        .map(|n| {
            let mut t = target.clone().into_os_string();
            t.push(format!(".{n}"));
            PathBuf::from(t)
        })
        .find(|t| !t.exists())
        .unwrap_or(target)
}

/// Moves `file` (under `root`) to `root/aside/`, durably; returns where it
/// went.
pub(crate) fn move_aside(root: &Path, file: &Path) -> io::Result<PathBuf> {
    let target = aside_path(root, file);
    let parent = target.parent().unwrap_or(root);
    create_dir(parent)?;
    fs::rename(file, &target).map_err(at(file, "move aside"))?;
    sync_dir(parent)?;
    if let Some(from) = file.parent() {
        sync_dir(from)?;
    }
    Ok(target)
}

/// Copies the bytes of `file` from `offset` on to `root/aside/`, durably
/// (before they are cut off); returns the copy's path.
pub(crate) fn copy_tail_aside(root: &Path, file: &Path, offset: u64) -> io::Result<PathBuf> {
    let data = read(file)?;
    let tail = data.get(offset as usize..).unwrap_or(&[]);
    let mut name = file.as_os_str().to_owned();
    name.push(format!(".from-{offset}"));
    let target = aside_path(root, Path::new(&name));
    let parent = target.parent().unwrap_or(root);
    write_atomically(parent, name_of(&target), tail)?;
    Ok(target)
}

/// Removes a file if it exists, naming it in the error.
pub(crate) fn remove(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(at(path, "remove")(e)),
        _ => Ok(()),
    }
}

/// Whether a user-given name (a persisted view's, a projection's) can name a
/// file in the log directory as it is: letters, digits, `-`, `_` and `.`,
/// and not `.` or `..`.
pub(crate) fn is_plain_file_name(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_names_become_file_names() {
        for ok in ["balances", "cart-totals_v2", "a.b"] {
            assert!(is_plain_file_name(ok), "{ok}");
        }
        for bad in ["", ".", "..", "../etc", "a/b", "a b", "ü"] {
            assert!(!is_plain_file_name(bad), "{bad}");
        }
    }

    #[test]
    fn errors_name_the_operation_and_path_and_keep_their_kind() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope");
        let e = read(&missing).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        let text = e.to_string();
        assert!(text.starts_with("read ") && text.contains("nope"), "{text}");
        // A directory where a file is expected: the error names it too.
        let e = read(dir.path()).unwrap_err();
        assert!(
            e.to_string().contains(&*dir.path().to_string_lossy()),
            "{e}"
        );
    }

    #[test]
    fn set_aside_files_keep_their_relative_path_and_never_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let sub = root.join("snapshots").join("v");
        fs::create_dir_all(&sub).unwrap();
        for round in 0..2 {
            let f = sub.join("1.snap");
            fs::write(&f, [round]).unwrap();
            let to = move_aside(root, &f).unwrap();
            assert!(to.starts_with(root.join("aside").join("snapshots").join("v")));
            assert_eq!(fs::read(&to).unwrap(), [round]);
            assert!(!f.exists());
        }
    }
}
