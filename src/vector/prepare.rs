//! `prepare`: check export files before Vector reads them. Every `*.json.gz` file (what
//! `vector.toml`'s `include` reads) under the export directories is decompressed to its end:
//! a file that cannot be (truncated, not gzip) is reported, since Vector would stop at the
//! damage; a file whose last line lacks its newline gets a `\n` member appended, since Vector
//! never reads such a line. Files written by `export`, `unpack` and `generate` are always
//! ready; files copied in by hand (Amplitude's S3 export, a colleague's disk) may not be.

use std::path::{Path, PathBuf};

use crate::export_file::{self, GzipFacts};
use crate::fs::WalkError;

/// The file names Vector's file source reads (`include = ["export/**/*.json.gz"]`).
pub const EXPORT_SUFFIX: &str = ".json.gz";

/// What `prepare` found for one export file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Prepared {
    /// Decompresses to its end and ends with a newline.
    Ready { path: PathBuf, facts: GzipFacts },
    /// Its last line lacked a newline: one was appended (or would be, in a dry run).
    NewlineAdded { path: PathBuf, facts: GzipFacts },
    /// Cannot be read to its end: Vector would lose what follows the damage.
    Unreadable { path: PathBuf, error: String },
}

/// Everything `prepare` found.
#[derive(Debug, Clone, Default)]
pub struct PrepareReport {
    pub files: Vec<Prepared>,
    pub dry_run: bool,
}

impl PrepareReport {
    /// Rows in the files that can be read, each last line included.
    pub fn rows(&self) -> u64 {
        self.files
            .iter()
            .map(|file| match file {
                Prepared::Ready { facts, .. } | Prepared::NewlineAdded { facts, .. } => facts.rows,
                Prepared::Unreadable { .. } => 0,
            })
            .sum()
    }

    pub fn unreadable(&self) -> usize {
        self.files
            .iter()
            .filter(|file| matches!(file, Prepared::Unreadable { .. }))
            .count()
    }

    pub fn newlines_added(&self) -> usize {
        self.files
            .iter()
            .filter(|file| matches!(file, Prepared::NewlineAdded { .. }))
            .count()
    }
}

/// Checks every export file under `dirs`, appending missing final newlines unless `dry_run`.
pub fn prepare(dirs: &[PathBuf], dry_run: bool) -> Result<PrepareReport, WalkError> {
    let mut report = PrepareReport {
        dry_run,
        ..PrepareReport::default()
    };
    for dir in dirs {
        for path in crate::fs::walk_files(dir)? {
            if is_export_file(&path) {
                report.files.push(prepare_file(path, dry_run));
            }
        }
    }
    Ok(report)
}

fn is_export_file(path: &Path) -> bool {
    path.file_name()
        .is_some_and(|name| name.to_string_lossy().ends_with(EXPORT_SUFFIX))
}

fn prepare_file(path: PathBuf, dry_run: bool) -> Prepared {
    let unreadable = |path: PathBuf, error: String| Prepared::Unreadable { path, error };
    match crate::fs::is_gzip_file(&path) {
        Ok(true) => {}
        Ok(false) => return unreadable(path, "not gzip".to_owned()),
        Err(error) => return unreadable(path, error.to_string()),
    }
    let facts = match export_file::scan_path(&path) {
        Ok(facts) => facts,
        Err(error) => return unreadable(path, format!("cannot decompress it: {error}")),
    };
    if facts.ends_with_newline {
        return Prepared::Ready { path, facts };
    }
    if !dry_run && let Err(error) = export_file::append_newline_member(&path) {
        return unreadable(path, format!("cannot append the missing newline: {error}"));
    }
    Prepared::NewlineAdded { path, facts }
}
