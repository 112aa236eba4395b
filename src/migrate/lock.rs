//! One run per state: `migrate` holds an exclusive OS lock on `<state>/migration.lock` for the
//! whole run (either engine), `report` and `verify` a shared one while they read. The kernel
//! releases a lock when its process dies, however it dies, so a SIGKILLed run never leaves a
//! stale lock behind. A second `migrate` on the same state refuses at once, naming the state
//! and the process that holds it: two runs on one state would send the same events twice and
//! count them twice.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// The lock file under the state directory.
pub const LOCK_FILE: &str = "migration.lock";

/// A held lock; released when dropped (or when the process ends).
#[derive(Debug)]
pub struct StateLock {
    _file: File,
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "the state {state} is in use by {holder}: one run per state (two would send events twice); \
         wait for it to end or stop it, or give another --state"
    )]
    Busy { state: PathBuf, holder: String },
    #[error(
        "the state {state} is being migrated by {holder}: wait for it to end, then run this again"
    )]
    Migrating { state: PathBuf, holder: String },
    #[error("cannot lock the state {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl StateLock {
    /// For `migrate`: the only process on the state, creating the directory if needed.
    pub fn exclusive(state_dir: &Path) -> Result<StateLock, LockError> {
        crate::fs::create_private_dir(state_dir).map_err(|source| LockError::Io {
            path: state_dir.to_path_buf(),
            source,
        })?;
        let path = state_dir.join(LOCK_FILE);
        let mut file = open(&path)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(LockError::Busy {
                    state: state_dir.to_path_buf(),
                    holder: holder(&mut file),
                });
            }
            Err(TryLockError::Error(source)) => return Err(LockError::Io { path, source }),
        }
        // Who holds it, for the next process that finds it taken.
        let who = format!("migrate (pid {})\n", std::process::id());
        let written = file
            .set_len(0)
            .and_then(|()| file.seek(SeekFrom::Start(0)))
            .and_then(|_| file.write_all(who.as_bytes()));
        written.map_err(|source| LockError::Io { path, source })?;
        Ok(StateLock { _file: file })
    }

    /// For `report` and `verify`: no `migrate` runs on the state while they read it. `None`
    /// when the state directory has no lock file (nothing ever ran there).
    pub fn shared(state_dir: &Path) -> Result<Option<StateLock>, LockError> {
        let path = state_dir.join(LOCK_FILE);
        if !path.exists() {
            return Ok(None);
        }
        let mut file = open(&path)?;
        match file.try_lock_shared() {
            Ok(()) => Ok(Some(StateLock { _file: file })),
            Err(TryLockError::WouldBlock) => Err(LockError::Migrating {
                state: state_dir.to_path_buf(),
                holder: holder(&mut file),
            }),
            Err(TryLockError::Error(source)) => Err(LockError::Io { path, source }),
        }
    }
}

fn open(path: &Path) -> Result<File, LockError> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .map_err(|source| LockError::Io {
            path: path.to_path_buf(),
            source,
        })
}

/// What the lock file says of its holder: the last `migrate` that held it, if that process is
/// still alive; otherwise a reader (`report` or `verify`).
fn holder(file: &mut File) -> String {
    let mut text = String::new();
    let _ = file.seek(SeekFrom::Start(0));
    let _ = file.take(200).read_to_string(&mut text);
    let text = text.trim();
    let pid = text
        .strip_prefix("migrate (pid ")
        .and_then(|rest| rest.strip_suffix(')'))
        .and_then(|pid| pid.parse::<i32>().ok());
    match pid {
        // Signal 0 only asks whether the process exists.
        Some(pid) if unsafe { libc::kill(pid, 0) } == 0 => text.to_owned(),
        _ => "another process (a report or verify reading it)".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_exclusive_lock_is_refused_naming_the_holder_and_freed_on_drop() {
        let dir = tempfile::tempdir().expect("tmp");
        let held = StateLock::exclusive(dir.path()).expect("first");
        let error = StateLock::exclusive(dir.path()).expect_err("second");
        let text = error.to_string();
        assert!(
            text.contains(&format!("migrate (pid {})", std::process::id())),
            "{text}"
        );
        assert!(matches!(
            StateLock::shared(dir.path()),
            Err(LockError::Migrating { .. })
        ));
        drop(held);
        let reader = StateLock::shared(dir.path())
            .expect("free")
            .expect("a lock file");
        assert!(matches!(
            StateLock::exclusive(dir.path()),
            Err(LockError::Busy { .. })
        ));
        drop(reader);
        StateLock::exclusive(dir.path()).expect("free again");
    }

    #[test]
    fn a_state_without_a_lock_file_needs_no_shared_lock() {
        let dir = tempfile::tempdir().expect("tmp");
        assert!(StateLock::shared(dir.path()).expect("no file").is_none());
    }
}
