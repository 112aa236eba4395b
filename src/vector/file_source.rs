//! The export as Vector's `file` source sees it: the directories and patterns it reads, and
//! every file they match by (device, inode), as Vector fingerprints them, with the number of
//! bytes Vector reads from it (decompressed), which its checkpoints count.

use std::collections::{BTreeMap, HashMap};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::VectorError;
use crate::migrate::MigrateError;

/// A directory Vector reads, and the pattern (`**/*.json.gz`, or one file's name) under it.
pub(super) struct Root {
    pub dir: PathBuf,
    pub patterns: Vec<String>,
}

/// `path` made absolute (Vector runs in its workspace, not here).
pub(super) fn absolute(path: &Path) -> Result<PathBuf, MigrateError> {
    std::path::absolute(path).map_err(|source| MigrateError::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// The inputs as Vector's file source can read them: directories and single export files;
/// zips must be unpacked first.
pub(super) fn export_roots(inputs: &[PathBuf]) -> Result<Vec<Root>, VectorError> {
    let mut roots = Vec::new();
    for input in inputs {
        let path = absolute(input)?;
        let name = path
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        if path.is_dir() {
            roots.push(Root {
                dir: path,
                patterns: vec!["**/*.json.gz".into(), "**/*.json".into()],
            });
        } else if path.is_file() && (name.ends_with(".json.gz") || name.ends_with(".json")) {
            let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
            roots.push(Root {
                dir,
                patterns: vec![name],
            });
        } else if path.is_file() && name.ends_with(".zip") {
            return Err(VectorError::Input(format!(
                "{}: Vector cannot read a zip; unpack it first (amplitude-posthog unpack) or use --engine embedded, which reads it in place",
                path.display()
            )));
        } else {
            return Err(VectorError::Input(format!(
                "{}: not a directory or a .json.gz / .json export file",
                path.display()
            )));
        }
    }
    Ok(roots)
}

/// Every export file the roots match: its (device, inode) → the bytes Vector reads from it.
pub(super) struct ExportFiles(HashMap<(u64, u64), u64>);

/// Checkpoint positions by (device, inode).
pub(super) type Positions = BTreeMap<(u64, u64), u64>;

impl ExportFiles {
    /// Every file the config's patterns match under `roots`.
    pub fn find(roots: &[Root]) -> Result<ExportFiles, VectorError> {
        let mut files = HashMap::new();
        for root in roots {
            let found = crate::fs::walk_files(&root.dir)?;
            for path in found {
                let name = path.file_name().unwrap_or_default().to_string_lossy();
                let matches =
                    root.patterns
                        .iter()
                        .any(|pattern| match pattern.strip_prefix("**/*") {
                            Some(suffix) => name.ends_with(suffix),
                            None => path == root.dir.join(pattern),
                        });
                if !matches {
                    continue;
                }
                let unreadable = |source| VectorError::Unreadable {
                    path: path.clone(),
                    source,
                };
                let metadata = std::fs::metadata(&path).map_err(unreadable)?;
                let length = if crate::fs::is_gzip_file(&path).map_err(unreadable)? {
                    crate::export_file::scan_path(&path)
                        .map_err(unreadable)?
                        .decompressed_bytes
                } else {
                    metadata.len()
                };
                files.insert((metadata.dev(), metadata.ino()), length);
            }
        }
        Ok(ExportFiles(files))
    }

    /// How many files there are.
    pub fn count(&self) -> u64 {
        self.0.len() as u64
    }

    /// The bytes Vector reads from all of them.
    pub fn total_bytes(&self) -> u64 {
        self.0.values().sum()
    }

    /// The bytes Vector has read, by its checkpoints.
    pub fn bytes_read(&self, positions: &Positions) -> u64 {
        self.0
            .iter()
            .map(|(id, length)| position(positions, id).min(*length))
            .sum()
    }

    /// The files Vector has read to their end, by its checkpoints.
    pub fn done(&self, positions: &Positions) -> u64 {
        self.0
            .iter()
            .filter(|(id, length)| position(positions, id) >= **length)
            .count() as u64
    }
}

fn position(positions: &Positions, id: &(u64, u64)) -> u64 {
    positions.get(id).copied().unwrap_or(0)
}
