//! One owner per directory: an exclusive OS lock on `rwlog.lock`, held for
//! as long as anything of the runtime may write to the directory.
//!
//! The lock is `flock`-style (std's [`File::try_lock`]): it belongs to the
//! open file, so a second open in the same process conflicts as well as one
//! in another process, and the OS releases it when the file is closed or the
//! process dies. The holder writes its process id into the file, so a
//! refused opener can say who holds it.
//!
//! A process also keeps a registry of the directories its own runtimes
//! hold. That tells a real conflict within the process from a lock that
//! was just released but still shows as held: a child process being
//! spawned keeps a copy of every open file between its fork and its exec
//! (when close-on-exec closes it), and with it the lock. Such a lock is
//! waited for, briefly.

use std::collections::HashSet;
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::sync::{Mutex, MutexGuard};

use super::files::at;

pub(crate) const FILE: &str = "rwlog.lock";

/// The directories this process's runtimes hold, by canonical path.
static HELD: OnceLock<Mutex<HashSet<PathBuf>>> = OnceLock::new();

fn held() -> MutexGuard<'static, HashSet<PathBuf>> {
    HELD.get_or_init(|| Mutex::new(HashSet::new())).lock()
}

/// How long a lock this process released, but that a spawning child still
/// holds, is waited for.
const GHOST_WAIT: Duration = Duration::from_secs(5);

/// The held lock on a log directory; dropping the last handle releases it.
#[derive(Debug)]
pub(crate) struct DirLock {
    /// Holding the file holds the lock.
    file: Option<File>,
    /// The directory's canonical path, in the registry.
    key: PathBuf,
}

impl Drop for DirLock {
    fn drop(&mut self) {
        drop(self.file.take());
        held().remove(&self.key);
    }
}

impl DirLock {
    /// Locks `dir` for this runtime.
    ///
    /// Errors: [`Error::Locked`] if another runtime holds it;
    /// [`Error::Io`] naming the lock file if it cannot be opened or locked.
    pub(crate) fn acquire(dir: &Path) -> Result<DirLock> {
        let key = dir.canonicalize().map_err(at(dir, "resolve"))?;
        let path = dir.join(FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(at(&path, "open"))?;
        let locked = |dir: &Path, file: &mut File| Error::Locked {
            dir: dir.to_path_buf(),
            holder: holder(file),
        };
        if !held().insert(key.clone()) {
            // Held by a runtime of this process.
            return Err(locked(dir, &mut file));
        }
        // From here on, dropping the lock takes the key out again.
        let mut lock = DirLock { file: None, key };
        let deadline = Instant::now() + GHOST_WAIT;
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(TryLockError::WouldBlock) => {
                    // This process holds no runtime on it: another process
                    // does, or a child being spawned still has our last one.
                    let ours = holder(&mut file) == Some(std::process::id());
                    if !ours || Instant::now() >= deadline {
                        return Err(locked(dir, &mut file));
                    }
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err(TryLockError::Error(e)) => return Err(at(&path, "lock")(e).into()),
            }
        }
        // Who holds it, for whoever is refused. Not synced: it is a hint.
        let pid = format!("{}\n", std::process::id());
        file.set_len(0)
            .and_then(|()| file.seek(SeekFrom::Start(0)))
            .and_then(|_| file.write_all(pid.as_bytes()))
            .map_err(at(&path, "write"))?;
        lock.file = Some(file);
        Ok(lock)
    }
}

/// The process id the holder wrote, if it can be read.
fn holder(file: &mut File) -> Option<u32> {
    let mut text = String::new();
    file.seek(SeekFrom::Start(0)).ok()?;
    file.read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_in_the_same_process_is_refused_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let first = DirLock::acquire(dir.path()).unwrap();
        match DirLock::acquire(dir.path()) {
            Err(Error::Locked { dir: d, holder }) => {
                assert_eq!(d, dir.path());
                assert_eq!(holder, Some(std::process::id()));
            }
            other => panic!("expected Locked, got {other:?}"),
        }
        drop(first);
        DirLock::acquire(dir.path()).unwrap();
    }
}
