//! Crash-safe resume for gzip exports read by Vector's `file` source.
//!
//! Vector never re-reads a gzip file that has a checkpoint, even one it was in the middle of
//! when it stopped: the rest of that file would be lost. `resume` finds export files whose
//! checkpoint `position` (in decompressed bytes) is short of where it stands once the file is
//! read (the end of its last line Vector reads: see
//! [`crate::export_file::FileFacts::checkpoint_end`]) and removes those checkpoints, so
//! Vector reads them again from the start; the deterministic uuids of the mapping make the
//! part PostHog already has collapse there.
//!
//! Checkpoints are read as [`super::checkpoints`] describes them; entries of other shapes are
//! kept untouched.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde_json::Value;

/// What `resume` found for one export file or checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileState {
    /// Read to its end: nothing to do.
    Complete { path: PathBuf, length: u64 },
    /// Read in part: its checkpoint is removed so Vector reads it again. A file whose last
    /// line lacked a newline (which Vector never reads) is always partial, and gets one.
    Partial {
        path: PathBuf,
        position: u64,
        length: u64,
        newline_added: bool,
    },
    /// A plain (not gzip) file: Vector resumes those from their checkpoint itself.
    Plain { path: PathBuf, position: u64 },
    /// An export file without a checkpoint: Vector will read it from the start anyway.
    NotStarted { path: PathBuf },
    /// A checkpoint whose file is no longer in the export directory: kept as it is.
    Unknown {
        device: u64,
        inode: u64,
        position: u64,
    },
    /// A gzip file that cannot be decompressed to its end: reported, its checkpoint kept.
    Unreadable { path: PathBuf, error: String },
}

/// The result of a `resume` run.
#[derive(Debug, Clone, Default)]
pub struct ResumeReport {
    pub files: Vec<FileState>,
    pub checkpoints_removed: usize,
    pub checkpoints_file: PathBuf,
    pub dry_run: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ResumeError {
    #[error("{0} is locked by a running Vector ({1}); stop Vector before running resume")]
    Locked(PathBuf, PathBuf),
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("{path} is not a Vector checkpoints file: {source}")]
    Format {
        path: PathBuf,
        source: CheckpointsFormat,
    },
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
}

/// What is wrong with a checkpoints file.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointsFormat {
    #[error("{0}")]
    Json(#[source] serde_json::Error),
    #[error("no `checkpoints` array")]
    NoCheckpoints,
}

/// Finds partially delivered gzip files and (unless `dry_run`) removes their checkpoints.
pub fn resume(
    data_dir: &Path,
    source_id: &str,
    export_dirs: &[PathBuf],
    dry_run: bool,
) -> Result<ResumeReport, ResumeError> {
    if let Some(lock) = held_lock(data_dir) {
        return Err(ResumeError::Locked(data_dir.to_path_buf(), lock));
    }
    let checkpoints_file = super::checkpoints::file(data_dir, source_id);
    let mut report = ResumeReport {
        checkpoints_file: checkpoints_file.clone(),
        dry_run,
        ..ResumeReport::default()
    };
    let text = match fs::read_to_string(&checkpoints_file) {
        Ok(text) => text,
        // No checkpoints yet: nothing was read, nothing can be lost.
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(report),
        Err(error) => {
            return Err(ResumeError::Read {
                path: checkpoints_file,
                source: error,
            });
        }
    };
    let not_checkpoints = |source| ResumeError::Format {
        path: checkpoints_file.clone(),
        source,
    };
    let mut document: Value = serde_json::from_str(&text)
        .map_err(|error| not_checkpoints(CheckpointsFormat::Json(error)))?;
    let entries = document
        .get_mut("checkpoints")
        .and_then(Value::as_array_mut)
        .ok_or_else(|| not_checkpoints(CheckpointsFormat::NoCheckpoints))?;

    let mut files = export_files(export_dirs)?;
    let mut keep = Vec::with_capacity(entries.len());
    for entry in entries.drain(..) {
        let Some((device, inode, position)) = super::checkpoints::dev_inode_checkpoint(&entry)
        else {
            keep.push(entry);
            continue;
        };
        let Some(path) = files.remove(&(device, inode)) else {
            report.files.push(FileState::Unknown {
                device,
                inode,
                position,
            });
            keep.push(entry);
            continue;
        };
        match gzip_facts(&path) {
            Ok(None) => {
                report.files.push(FileState::Plain { path, position });
                keep.push(entry);
            }
            // Read to where Vector's checkpoint can reach: past the last line it reads, since a
            // line too long for it never moves a checkpoint (`prepare` dead-letters those).
            Ok(Some(facts)) if facts.ends_with_newline && position >= facts.checkpoint_end => {
                report.files.push(FileState::Complete {
                    path,
                    length: facts.decompressed_bytes,
                });
                keep.push(entry);
            }
            Ok(Some(facts)) => {
                let newline_added = !facts.ends_with_newline;
                if newline_added && !dry_run {
                    crate::export_file::append_newline_member(&path).map_err(|error| {
                        ResumeError::Write {
                            path: path.clone(),
                            source: error,
                        }
                    })?;
                }
                report.files.push(FileState::Partial {
                    path,
                    position,
                    length: facts.decompressed_bytes + u64::from(newline_added),
                    newline_added,
                });
                report.checkpoints_removed += 1;
            }
            Err(error) => {
                report.files.push(FileState::Unreadable {
                    path,
                    error: error.to_string(),
                });
                keep.push(entry);
            }
        }
    }
    report.files.extend(
        files
            .into_values()
            .map(|path| FileState::NotStarted { path }),
    );
    *entries = keep;
    if report.checkpoints_removed > 0 && !dry_run {
        let json = serde_json::to_vec(&document)
            .map_err(|error| not_checkpoints(CheckpointsFormat::Json(error)))?;
        crate::fs::write_atomically(&checkpoints_file, &json).map_err(|error| {
            ResumeError::Write {
                path: checkpoints_file.clone(),
                source: error,
            }
        })?;
    }
    Ok(report)
}

/// Every regular file under the export directories, by (device, inode).
fn export_files(dirs: &[PathBuf]) -> Result<BTreeMap<(u64, u64), PathBuf>, ResumeError> {
    let mut files = BTreeMap::new();
    for dir in dirs {
        let found = crate::fs::walk_files(dir).map_err(|error| ResumeError::Read {
            path: error.path,
            source: error.source,
        })?;
        for path in found {
            let metadata = fs::metadata(&path).map_err(|error| ResumeError::Read {
                path: path.clone(),
                source: error,
            })?;
            files.insert((metadata.dev(), metadata.ino()), path);
        }
    }
    Ok(files)
}

/// What decompressing a gzip file (all members) finds, or `None` for a plain file.
fn gzip_facts(path: &Path) -> io::Result<Option<crate::export_file::FileFacts>> {
    if !crate::fs::is_gzip_file(path)? {
        return Ok(None);
    }
    crate::export_file::scan_path(path).map(Some)
}

/// A lock file under the data directory that a running Vector holds (its disk buffers lock
/// `buffer.lock` for as long as it runs).
fn held_lock(data_dir: &Path) -> Option<PathBuf> {
    let files = crate::fs::walk_files(data_dir).ok()?;
    files.into_iter().find(|path| {
        path.extension()
            .is_some_and(|extension| extension == "lock")
            && File::open(path).is_ok_and(|file| {
                // Vector holds an exclusive lock; taking and releasing it proves nobody does.
                match file.try_lock() {
                    Ok(()) => {
                        let _ = file.unlock();
                        false
                    }
                    Err(_) => true,
                }
            })
    })
}
