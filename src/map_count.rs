//! The export counted with the native mapping: every row of every export file by the UTC day
//! of its time and its outcome, nothing sent and nothing written. What the report of a
//! Vector-carried migration is made from (Vector keeps no per-row record); the counts are
//! those `migrate --dry-run` makes of the same export.

use std::collections::HashMap;
use std::path::PathBuf;

use crate::counts::{DayCounts, count_row};
use crate::engine::{NativeMapper, RowMapper};
use crate::input::{InputError, InputSource, LineReader};
use crate::zip_member::ZipMember;

/// Rows read before they are mapped together, shared among the threads: so many at most, and
/// no more once they hold so many bytes.
const BLOCK_ROWS: usize = 4096;
const BLOCK_BYTES: usize = 16 << 20;

/// What [`count_export`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExportCount {
    /// (day, metric, reason) counts of every row read.
    pub counts: DayCounts,
    /// Export files read to their end.
    pub files: u64,
    /// Inputs that cannot be read at all (left out), as told to the user.
    pub problems: Vec<String>,
}

/// What [`count_export`] tells as it goes, for a person watching.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen<'a> {
    /// The export files to read and their bytes (as stored), before reading starts.
    Planned { bytes: u64 },
    /// An input that cannot be read: it is left out.
    Problem(&'a str),
    /// Rows read since the last time, and the bytes (as stored) of the file just read to its
    /// end, if any.
    Read { rows: u64, bytes: u64 },
}

/// Counts every row of the export files `inputs` name (directories, files, zips: as
/// [`crate::input::discover`] finds them), mapping them on `threads` threads. An entry that
/// cannot be listed, a file that cannot be opened and a zip member that is not there are
/// problems and are left out; a file that fails once it is read (UTF-16, a damaged gzip) keeps
/// the rows read before, is not counted as read to its end and is a problem too, as
/// `migrate --dry-run` counts it. A row too long to hold is refused as `event_too_large` without being mapped.
pub fn count_export(
    inputs: &[PathBuf],
    threads: usize,
    seen: &mut dyn FnMut(Seen),
) -> Result<ExportCount, InputError> {
    let (sources, unreadable) = crate::input::discover_reporting(inputs)?;
    let mut problems: Vec<String> = unreadable.iter().map(ToString::to_string).collect();
    let mut zips: HashMap<PathBuf, Vec<ZipMember>> = HashMap::new();
    let mut planned = Vec::new();
    for source in sources {
        match stored_size(&source, &mut zips) {
            Ok(size) => planned.push((source, size)),
            Err(error) => problems.push(format!("cannot read {}: {error}", source.display_name())),
        }
    }
    seen(Seen::Planned {
        bytes: planned.iter().map(|(_, size)| size).sum(),
    });
    for problem in &problems {
        seen(Seen::Problem(problem));
    }
    let mut count = ExportCount {
        problems,
        ..ExportCount::default()
    };
    let mut block = Vec::with_capacity(BLOCK_ROWS);
    for (source, size) in planned {
        let mut reader = match LineReader::open(source) {
            Ok(reader) => reader,
            Err(error) => {
                let problem = error.to_string();
                seen(Seen::Problem(&problem));
                count.problems.push(problem);
                continue;
            }
        };
        loop {
            let read = fill_block(&mut reader, &mut block);
            if let Block::Failed(problem) = &read {
                // The reader's error names the file and the line.
                seen(Seen::Problem(problem));
                count.problems.push(problem.clone());
            }
            for (key, value) in count_block(&block, threads.max(1)) {
                *count.counts.entry(key).or_default() += value;
            }
            if read == Block::End {
                count.files += 1;
            }
            seen(Seen::Read {
                rows: block.len() as u64,
                bytes: if read == Block::End { size } else { 0 },
            });
            if read != Block::More {
                break;
            }
        }
    }
    Ok(count)
}

/// The size of an export file as stored (a zip member: once unzipped), or why it cannot be
/// read. Standard input is not an export file.
fn stored_size(
    source: &InputSource,
    zips: &mut HashMap<PathBuf, Vec<ZipMember>>,
) -> std::io::Result<u64> {
    match source {
        InputSource::File(path) => std::fs::File::open(path)?.metadata().map(|meta| meta.len()),
        InputSource::ZipMember { zip, member } => {
            if !zips.contains_key(zip) {
                zips.insert(zip.clone(), crate::zip_member::list(zip)?);
            }
            zips[zip]
                .iter()
                .find(|candidate| &candidate.name == member)
                .map(|found| found.size)
                .ok_or_else(|| std::io::Error::other(format!("no member {member}")))
        }
        InputSource::Stdin => Err(std::io::Error::other(
            "standard input cannot be migrated resumably; give files or directories",
        )),
    }
}

/// One row read: its bytes, and its whole length if it was too long to hold (`bytes` is then
/// only its start).
struct Row {
    bytes: Vec<u8>,
    oversized: Option<u64>,
}

/// How a block of rows ended.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Block {
    /// It is full: the file may have more.
    More,
    /// The file ended.
    End,
    /// The file failed, for this reason (the rows read before are in the block).
    Failed(String),
}

/// Reads the next rows into `block`: up to `BLOCK_ROWS` of them, and no more once they hold
/// `BLOCK_BYTES` (memory stays flat whatever the rows' sizes).
fn fill_block(reader: &mut LineReader, block: &mut Vec<Row>) -> Block {
    block.clear();
    let mut bytes = 0;
    let mut buffer = Vec::new();
    while block.len() < BLOCK_ROWS && bytes < BLOCK_BYTES {
        match reader.next_line(&mut buffer) {
            Ok(Some(line)) => {
                bytes += buffer.len();
                block.push(Row {
                    bytes: std::mem::take(&mut buffer),
                    oversized: line.oversized,
                });
            }
            Ok(None) => return Block::End,
            Err(error) => return Block::Failed(error.to_string()),
        }
    }
    Block::More
}

/// The counts of a block's rows, mapped on up to `threads` threads.
fn count_block(block: &[Row], threads: usize) -> DayCounts {
    if threads == 1 || block.len() < 64 {
        return count_rows(block);
    }
    let share = block.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let handles: Vec<_> = block
            .chunks(share)
            .map(|rows| scope.spawn(move || count_rows(rows)))
            .collect();
        let mut counts = DayCounts::new();
        for handle in handles {
            let part = handle
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            for (key, value) in part {
                *counts.entry(key).or_default() += value;
            }
        }
        counts
    })
}

/// The counts of rows mapped one after the other.
fn count_rows(rows: &[Row]) -> DayCounts {
    let mut counts = DayCounts::new();
    for row in rows {
        let mapped = NativeMapper.map_read_with_identities(&row.bytes, row.oversized);
        count_row(&mut counts, mapped.day.as_deref(), &mapped.outcome);
    }
    counts
}
