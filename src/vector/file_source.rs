//! The export as Vector's `file` source sees it: the directories and patterns it reads, and
//! every file they match by (device, inode), as Vector fingerprints them, with where its
//! checkpoint (in decompressed bytes) stands once Vector has read and delivered it.

use std::collections::{BTreeMap, HashMap};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::VectorError;
use super::prepare::{PrepareReport, Prepared};
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

/// Every export file the roots match, in the order found.
pub(super) fn matching_files(roots: &[Root]) -> Result<Vec<PathBuf>, VectorError> {
    let mut files = Vec::new();
    for root in roots {
        let found = crate::fs::walk_files(&root.dir)?;
        for path in found {
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            let matches = root
                .patterns
                .iter()
                .any(|pattern| match pattern.strip_prefix("**/*") {
                    Some(suffix) => name.ends_with(suffix),
                    None => path == root.dir.join(pattern),
                });
            if matches {
                files.push(path);
            }
        }
    }
    Ok(files)
}

/// One export file as the supervisor follows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ExportFile {
    pub path: PathBuf,
    /// Where Vector's checkpoint stands once the file is read and delivered (decompressed
    /// bytes): see [`crate::export_file::FileFacts::checkpoint_end`].
    pub end: u64,
}

/// Every export file the roots match, by (device, inode) as Vector fingerprints them.
pub(super) struct ExportFiles(HashMap<(u64, u64), ExportFile>);

/// Checkpoint positions by (device, inode).
pub(super) type Positions = BTreeMap<(u64, u64), u64>;

/// A file Vector has not read to its end: where its checkpoint is, and where it should be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Unfinished<'a> {
    pub path: &'a Path,
    pub position: u64,
    pub end: u64,
}

impl ExportFiles {
    /// The files `prepare` went through, as they are now; an error names a file that cannot
    /// be read (Vector would stop at the damage).
    pub fn prepared(report: &PrepareReport) -> Result<ExportFiles, VectorError> {
        let mut files = HashMap::new();
        for prepared in &report.files {
            let path = prepared.path().to_path_buf();
            let unreadable = |source| VectorError::Unreadable {
                path: path.clone(),
                source,
            };
            let facts = match prepared {
                // What prepare found, told as it told it.
                Prepared::Unreadable { error, .. } => {
                    return Err(unreadable(std::io::Error::other(error.clone())));
                }
                _ => prepared.facts().expect("a readable file has facts"),
            };
            let metadata = std::fs::metadata(&path).map_err(unreadable)?;
            files.insert(
                (metadata.dev(), metadata.ino()),
                ExportFile {
                    path,
                    end: facts.checkpoint_end,
                },
            );
        }
        Ok(ExportFiles(files))
    }

    /// Files as given, for tests of what is made of them.
    #[cfg(test)]
    pub fn from_files(files: impl IntoIterator<Item = ((u64, u64), ExportFile)>) -> ExportFiles {
        ExportFiles(files.into_iter().collect())
    }

    /// How many files there are.
    pub fn count(&self) -> u64 {
        self.0.len() as u64
    }

    /// The bytes Vector reads from all of them.
    pub fn total_bytes(&self) -> u64 {
        self.0.values().map(|file| file.end).sum()
    }

    /// The bytes Vector has read, by its checkpoints.
    pub fn bytes_read(&self, positions: &Positions) -> u64 {
        self.0
            .iter()
            .map(|(id, file)| position(positions, id).min(file.end))
            .sum()
    }

    /// The files Vector has read to their end, by its checkpoints.
    pub fn done(&self, positions: &Positions) -> u64 {
        self.0
            .iter()
            .filter(|(id, file)| position(positions, id) >= file.end)
            .count() as u64
    }

    /// The files Vector has not read to their end, by its checkpoints, in path order.
    pub fn unfinished(&self, positions: &Positions) -> Vec<Unfinished<'_>> {
        let mut unfinished: Vec<Unfinished> = self
            .0
            .iter()
            .map(|(id, file)| Unfinished {
                path: &file.path,
                position: position(positions, id),
                end: file.end,
            })
            .filter(|file| file.position < file.end)
            .collect();
        unfinished.sort_by(|a, b| a.path.cmp(b.path));
        unfinished
    }
}

fn position(positions: &Positions, id: &(u64, u64)) -> u64 {
    positions.get(id).copied().unwrap_or(0)
}
