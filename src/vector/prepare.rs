//! `prepare`: check export files before Vector reads them. Every `*.json.gz` file (what
//! `vector.toml`'s `include` reads) under the export directories is decompressed to its end:
//! a file that cannot be (truncated, not gzip) is reported, since Vector would stop at the
//! damage; a file whose last line lacks its newline gets a `\n` member appended, since Vector
//! never reads such a line; and every row longer than Vector reads
//! ([`crate::input::MAX_LINE_BYTES`], `max_line_bytes` in `vector.toml`) is set aside as a
//! dead letter `event_too_large` with its file and line, since Vector discards it without a
//! trace (docs/ARCHITECTURE.md, "Read in Vector's source"). The export files keep every
//! byte (a missing newline is added after them). Files written by `export`, `unpack` and
//! `generate` always end with a newline; files copied in by hand (Amplitude's S3 export, a
//! colleague's disk) may not.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::dead_letter::DeadLetter;
use crate::export_file::{self, FileFacts, TooLongRow};
use crate::fs::WalkError;

/// The file names Vector's file source reads (`include = ["export/**/*.json.gz"]`).
pub const EXPORT_SUFFIX: &str = ".json.gz";

/// The file, in the dead-letter directory, of the rows `prepare` set aside.
pub const DEAD_LETTERS_FILE: &str = "prepare.jsonl";

/// Which part of this project wrote a set-aside row's dead letter.
const COMPONENT: &str = "prepare";

/// What `prepare` found for one export file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Prepared {
    /// Decompresses to its end and ends with a newline.
    Ready { path: PathBuf, facts: FileFacts },
    /// Its last line lacked a newline: one was appended (or would be, in a dry run). `facts`
    /// are those of the file as it was.
    NewlineAdded { path: PathBuf, facts: FileFacts },
    /// Cannot be read to its end: Vector would lose what follows the damage.
    Unreadable { path: PathBuf, error: String },
}

impl Prepared {
    /// The facts of the file as Vector will read it (its final newline added), if readable.
    pub fn facts(&self) -> Option<FileFacts> {
        match self {
            Prepared::Ready { facts, .. } => Some(*facts),
            Prepared::NewlineAdded { facts, .. } => Some(facts.with_final_newline()),
            Prepared::Unreadable { .. } => None,
        }
    }

    pub fn path(&self) -> &Path {
        match self {
            Prepared::Ready { path, .. }
            | Prepared::NewlineAdded { path, .. }
            | Prepared::Unreadable { path, .. } => path,
        }
    }
}

/// Everything `prepare` found.
#[derive(Debug, Clone, Default)]
pub struct PrepareReport {
    pub files: Vec<Prepared>,
    pub dry_run: bool,
    /// Where the set-aside rows' dead letters are (or would be, in a dry run).
    pub dead_letters: PathBuf,
}

impl PrepareReport {
    /// Rows in the files that can be read, each last line included.
    pub fn rows(&self) -> u64 {
        self.files
            .iter()
            .filter_map(Prepared::facts)
            .map(|facts| facts.rows)
            .sum()
    }

    /// Rows too long for Vector, set aside as dead letters (or to be, in a dry run).
    pub fn set_aside(&self) -> u64 {
        self.files
            .iter()
            .filter_map(Prepared::facts)
            .map(|facts| facts.too_long)
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

/// Why `prepare` could not do its work (a file it cannot read is not one: it is reported).
#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    #[error(transparent)]
    Walk(#[from] WalkError),
    #[error("cannot write the dead letters {}: {source}", path.display())]
    DeadLetters { path: PathBuf, source: io::Error },
}

/// Checks every export file under `dirs`, appending missing final newlines and writing the
/// dead letters of rows too long for Vector into `dead_letters` (a directory) unless
/// `dry_run`.
pub fn prepare(
    dirs: &[PathBuf],
    dry_run: bool,
    dead_letters: &Path,
) -> Result<PrepareReport, PrepareError> {
    let mut paths = Vec::new();
    for dir in dirs {
        for path in crate::fs::walk_files(dir)? {
            if is_export_file(&path) {
                paths.push(path);
            }
        }
    }
    prepare_files(&paths, Expect::Gzip, dry_run, dead_letters)
}

/// What an export file must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expect {
    /// Gzip (`*.json.gz`: the shipped `include`).
    Gzip,
    /// Gzip or plain, told by its first bytes as Vector tells them.
    Either,
}

/// [`prepare`] on the export files `paths`. The dead-letter file ends with the set-aside rows
/// of these files and keeps the records of any other file, so preparing one directory after
/// another loses nothing and preparing again repeats nothing; a dry run writes nothing.
pub(crate) fn prepare_files(
    paths: &[PathBuf],
    expect: Expect,
    dry_run: bool,
    dead_letters: &Path,
) -> Result<PrepareReport, PrepareError> {
    let target = dead_letters.join(DEAD_LETTERS_FILE);
    let mut letters = SetAside::new(target.clone(), dry_run);
    let files = paths
        .iter()
        .map(|path| prepare_file(path.clone(), expect, dry_run, &mut letters))
        .collect();
    let scanned: BTreeSet<String> = paths.iter().map(|path| name(path)).collect();
    letters
        .finish(&scanned)
        .map_err(|source| PrepareError::DeadLetters {
            path: target.clone(),
            source,
        })?;
    Ok(PrepareReport {
        files,
        dry_run,
        dead_letters: target,
    })
}

fn is_export_file(path: &Path) -> bool {
    path.file_name()
        .is_some_and(|name| name.to_string_lossy().ends_with(EXPORT_SUFFIX))
}

/// A file as a dead letter names it: its path as given.
fn name(path: &Path) -> String {
    path.display().to_string()
}

fn prepare_file(path: PathBuf, expect: Expect, dry_run: bool, letters: &mut SetAside) -> Prepared {
    let unreadable = |path: PathBuf, error: String| Prepared::Unreadable { path, error };
    let gzip = match crate::fs::is_gzip_file(&path) {
        Ok(gzip) => gzip,
        Err(error) => return unreadable(path, error.to_string()),
    };
    if !gzip && expect == Expect::Gzip {
        return unreadable(path, "not gzip".to_owned());
    }
    let file = name(&path);
    let mut set_aside = |row: TooLongRow| letters.write(&file, row);
    let facts = match export_file::scan_as_vector_reads(&path, Some(&mut set_aside)) {
        Ok(facts) => facts,
        Err(error) if gzip => return unreadable(path, format!("cannot decompress it: {error}")),
        Err(error) => return unreadable(path, error.to_string()),
    };
    if facts.ends_with_newline {
        return Prepared::Ready { path, facts };
    }
    if !dry_run && let Err(error) = export_file::append_final_newline(&path) {
        return unreadable(path, format!("cannot append the missing newline: {error}"));
    }
    Prepared::NewlineAdded { path, facts }
}

/// The dead-letter file of set-aside rows, written to `<name>.partial` as rows are found
/// (each keeps at most 64 KiB: memory stays flat) and renamed into place at the end.
struct SetAside {
    target: PathBuf,
    dry_run: bool,
    writer: Option<BufWriter<File>>,
    /// The first failure to write; later rows are not written.
    failed: Option<io::Error>,
}

impl SetAside {
    fn new(target: PathBuf, dry_run: bool) -> SetAside {
        SetAside {
            target,
            dry_run,
            writer: None,
            failed: None,
        }
    }

    fn partial(&self) -> PathBuf {
        let mut name = self.target.as_os_str().to_os_string();
        name.push(".partial");
        PathBuf::from(name)
    }

    fn writer(&mut self) -> io::Result<&mut BufWriter<File>> {
        if self.writer.is_none() {
            if let Some(parent) = self.target.parent() {
                std::fs::create_dir_all(parent)?;
            }
            self.writer = Some(BufWriter::new(File::create(self.partial())?));
        }
        Ok(self.writer.as_mut().expect("just opened"))
    }

    /// Writes the dead letter of a row too long for Vector, in the one shape: its start, and
    /// `truncated` with its whole length, as the embedded engine writes it.
    fn write(&mut self, file: &str, row: TooLongRow) {
        if self.dry_run || self.failed.is_some() {
            return;
        }
        let letter = DeadLetter {
            file,
            line: row.line,
            row: row.start,
            reason: "event_too_large",
            component: COMPONENT,
            cut: Some(row.row_bytes),
        };
        let written = self.writer().and_then(|writer| {
            writer.write_all(letter.to_json().as_bytes())?;
            writer.write_all(b"\n")
        });
        if let Err(error) = written {
            self.failed = Some(error);
        }
    }

    /// Adds the previous file's records of files not `scanned`, and puts the new file in
    /// place (or removes the old one when nothing is left in it).
    fn finish(mut self, scanned: &BTreeSet<String>) -> io::Result<()> {
        if self.dry_run {
            return Ok(());
        }
        if let Some(error) = self.failed.take() {
            return Err(error);
        }
        match File::open(&self.target) {
            Ok(previous) => {
                for record in BufReader::new(previous).split(b'\n') {
                    let record = record?;
                    let file = serde_json::from_slice::<serde_json::Value>(&record)
                        .ok()
                        .and_then(|value| value["file"].as_str().map(str::to_owned));
                    if file.is_some_and(|file| !scanned.contains(&file)) {
                        let writer = self.writer()?;
                        writer.write_all(&record)?;
                        writer.write_all(b"\n")?;
                    }
                }
            }
            Err(error) if error.kind() == io::ErrorKind::NotFound => {}
            Err(error) => return Err(error),
        }
        match self.writer.take() {
            Some(writer) => {
                let file = writer
                    .into_inner()
                    .map_err(io::IntoInnerError::into_error)?;
                file.sync_all()?;
                std::fs::rename(self.partial(), &self.target)?;
            }
            None => match std::fs::remove_file(&self.target) {
                Err(error) if error.kind() != io::ErrorKind::NotFound => return Err(error),
                _ => return Ok(()),
            },
        }
        match self.target.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => crate::fs::sync_directory(parent),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::{MAX_LINE_BYTES, OVERSIZED_KEPT_BYTES};

    fn row(bytes: usize) -> Vec<u8> {
        let mut row = br#"{"event_type":"x","user_id":"u","event_time":"2024-07-06 12:00:00","event_properties":{"blob":""#.to_vec();
        row.resize(bytes - 3, b'a');
        row.extend_from_slice(br#""}}"#);
        row
    }

    fn letters(dir: &Path) -> Vec<serde_json::Value> {
        std::fs::read_to_string(dir.join(DEAD_LETTERS_FILE))
            .expect("dead letters")
            .lines()
            .map(|line| serde_json::from_str(line).expect("JSON"))
            .collect()
    }

    #[test]
    fn a_row_too_long_for_vector_is_a_dead_letter_with_its_file_and_line_once() {
        let dir = tempfile::tempdir().expect("tmp");
        let export = dir.path().join("a.json");
        let long = row(MAX_LINE_BYTES + 1);
        std::fs::write(&export, [&b"{}"[..], &long, b"{}"].join(&b'\n')).expect("write");
        let before = std::fs::read(&export).expect("read");
        let dead = dir.path().join("dead-letters");

        let dry = prepare_files(std::slice::from_ref(&export), Expect::Either, true, &dead)
            .expect("runs");
        assert_eq!((dry.set_aside(), dry.newlines_added()), (1, 1));
        assert!(!dead.exists(), "a dry run writes nothing");

        let report = prepare_files(std::slice::from_ref(&export), Expect::Either, false, &dead)
            .expect("runs");
        assert_eq!((report.rows(), report.set_aside()), (3, 1));
        let facts = report.files[0].facts().expect("readable");
        assert_eq!(facts.checkpoint_end, facts.decompressed_bytes);
        let after = std::fs::read(&export).expect("read");
        assert_eq!(after, [&before[..], b"\n"].concat(), "every byte kept");
        let letters_once = letters(&dead);
        assert_eq!(letters_once.len(), 1);
        let letter = &letters_once[0];
        assert_eq!(letter["file"], export.display().to_string());
        assert_eq!(letter["line"], 2);
        assert_eq!(letter["metadata"]["dropped"]["message"], "event_too_large");
        assert_eq!(letter["metadata"]["dropped"]["component_id"], "prepare");
        assert_eq!(
            letter["truncated"],
            serde_json::json!({"row_bytes": MAX_LINE_BYTES + 1, "kept_bytes": OVERSIZED_KEPT_BYTES})
        );
        assert_eq!(
            letter["message"].as_str().expect("text").as_bytes(),
            &long[..OVERSIZED_KEPT_BYTES]
        );

        // Again: the same one record, not two.
        prepare_files(std::slice::from_ref(&export), Expect::Either, false, &dead).expect("runs");
        assert_eq!(letters(&dead), letters_once);
    }

    #[test]
    fn records_of_files_not_prepared_now_are_kept_and_a_fixed_file_loses_its_own() {
        let dir = tempfile::tempdir().expect("tmp");
        let dead = dir.path().join("dead-letters");
        let (first, second) = (dir.path().join("a.json"), dir.path().join("b.json"));
        for path in [&first, &second] {
            std::fs::write(path, [row(MAX_LINE_BYTES + 1), Vec::new()].join(&b'\n'))
                .expect("write");
        }
        prepare_files(std::slice::from_ref(&first), Expect::Either, false, &dead).expect("runs");
        prepare_files(std::slice::from_ref(&second), Expect::Either, false, &dead).expect("runs");
        let files = |dead: &Path| -> BTreeSet<String> {
            letters(dead)
                .iter()
                .map(|letter| letter["file"].as_str().expect("file").to_owned())
                .collect()
        };
        assert_eq!(files(&dead), BTreeSet::from([name(&first), name(&second)]));

        // The row of the first file was cut down to size by hand: its record goes.
        std::fs::write(&first, b"{}\n").expect("write");
        prepare_files(std::slice::from_ref(&first), Expect::Either, false, &dead).expect("runs");
        assert_eq!(files(&dead), BTreeSet::from([name(&second)]));
        std::fs::write(&second, b"{}\n").expect("write");
        prepare_files(&[first, second], Expect::Either, false, &dead).expect("runs");
        assert!(!dead.join(DEAD_LETTERS_FILE).exists());
    }
}
