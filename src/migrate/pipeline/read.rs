//! Every planned file read in chunks of consecutive rows, handed to the mappers in turn.

use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Sender, SyncSender};

use super::super::progress::LiveCounts;
use super::plan::Plan;
use super::{CHUNK_BYTES, CHUNK_ROWS, Chunk, Commit, StopSwitch};
use crate::input::{InputSource, Line, LineReader};

/// Counts bytes read from the raw file, for progress.
struct Counting<R> {
    inner: R,
    counters: Arc<LiveCounts>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        let read = self.inner.read(buffer)?;
        self.counters
            .bytes_read
            .fetch_add(read as u64, Ordering::Relaxed);
        Ok(read)
    }
}

fn open_counted(
    source: &InputSource,
    counters: &Arc<LiveCounts>,
) -> Result<LineReader, crate::input::InputError> {
    let raw: Box<dyn Read + Send> =
        match source {
            InputSource::File(path) => Box::new(std::fs::File::open(path).map_err(|error| {
                crate::input::InputError::Open {
                    path: source.display_name(),
                    error,
                }
            })?),
            InputSource::ZipMember { zip, member } => crate::zip_member::open(zip, member)
                .map_err(|error| crate::input::InputError::Open {
                    path: source.display_name(),
                    error,
                })?,
            InputSource::Stdin => Box::new(std::io::stdin()),
        };
    LineReader::from_read(
        source.clone(),
        Box::new(Counting {
            inner: raw,
            counters: counters.clone(),
        }),
    )
}

/// Reads every planned file in chunks, handing them to the mappers in turn; the files that
/// could not be read to their end, as `(file, problem)` (the committer records them in the
/// state too; a dry run has only this list).
pub(super) fn read_files(
    plans: Vec<Plan>,
    mappers: Vec<SyncSender<Chunk>>,
    commit: Sender<Commit>,
    switch: StopSwitch,
    counters: Arc<LiveCounts>,
) -> Vec<(String, String)> {
    let mut problems = Vec::new();
    let mut turn = 0;
    let mut hand = |chunk: Chunk| -> bool {
        let sent = mappers[turn % mappers.len()].send(chunk).is_ok();
        turn += 1;
        sent
    };
    for plan in plans {
        if switch.is_on() {
            break;
        }
        let _ = commit.send(Commit::Open {
            file: plan.file,
            first_chunk: plan.first_chunk,
        });
        let mut reader = match open_counted(&plan.source, &counters) {
            Ok(reader) => reader,
            Err(error) => {
                report(&mut problems, &commit, &plan, error.to_string());
                continue;
            }
        };
        let mut filling = Filling::new(&plan);
        let mut buffer = Vec::new();
        loop {
            if switch.is_on() {
                return problems;
            }
            match reader.next_line(&mut buffer) {
                Ok(Some(line)) if line.number <= plan.skip_lines => {}
                Ok(Some(line)) => {
                    filling.push(line, std::mem::take(&mut buffer));
                    if filling.is_full() && !hand(filling.take(&plan, false)) {
                        return problems;
                    }
                }
                Ok(None) => {
                    if !hand(filling.take(&plan, true)) {
                        return problems;
                    }
                    break;
                }
                Err(error) => {
                    // What was read is migrated; the file is reported, not finished.
                    if !filling.lines.is_empty() && !hand(filling.take(&plan, false)) {
                        return problems;
                    }
                    report(&mut problems, &commit, &plan, error.to_string());
                    break;
                }
            }
        }
    }
    problems
}

/// Reports a file that cannot be read to its end: to the committer (the state), and in
/// `problems`.
fn report(
    problems: &mut Vec<(String, String)>,
    commit: &Sender<Commit>,
    plan: &Plan,
    problem: String,
) {
    // The problem names the file already (as the state's problems do).
    problems.push((String::new(), problem.clone()));
    let _ = commit.send(Commit::Problem {
        file: plan.file,
        problem,
    });
}

/// The chunk being filled from one file.
struct Filling {
    index: u64,
    lines: Vec<(u64, Vec<u8>)>,
    oversized: Vec<(u64, u64)>,
    bytes: usize,
    last_line: u64,
}

impl Filling {
    fn new(plan: &Plan) -> Filling {
        Filling {
            index: plan.first_chunk,
            lines: Vec::new(),
            oversized: Vec::new(),
            bytes: 0,
            last_line: plan.skip_lines,
        }
    }

    fn push(&mut self, line: Line, bytes: Vec<u8>) {
        self.bytes += bytes.len();
        self.last_line = line.number;
        if let Some(length) = line.oversized {
            self.oversized.push((line.number, length));
        }
        self.lines.push((line.number, bytes));
    }

    fn is_full(&self) -> bool {
        self.lines.len() >= CHUNK_ROWS || self.bytes >= CHUNK_BYTES
    }

    /// The chunk filled so far (empty for a file's done part that ends it), and a new one.
    fn take(&mut self, plan: &Plan, end_of_file: bool) -> Chunk {
        let chunk = Chunk {
            file: plan.file,
            index: self.index,
            name: plan.name.clone(),
            lines: std::mem::take(&mut self.lines),
            oversized: std::mem::take(&mut self.oversized),
            last_line: self.last_line,
            end_of_file,
        };
        self.index += 1;
        self.bytes = 0;
        chunk
    }
}
