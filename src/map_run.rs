//! The `map` operation: input lines through an engine, PostHog events or per-row results out,
//! refused rows to a dead-letter file, and a summary in which every row is accounted for.

use std::io::{self, Write};

use crate::dead_letter::DeadLetter;
use crate::engine::{Engine, RowMapper};
use crate::input::{InputError, InputSource, LineReader};
use crate::outcome::MappingOutcome;
use crate::summary::MapSummary;

/// What `map` writes to its output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// One PostHog event per line (compact, key-sorted JSON).
    Events,
    /// Exactly one result object per input line: `{"events":[…]}`, `{"skipped":"…"}` or
    /// `{"rejected":"…"}`, so two implementations can be diffed line by line.
    Results,
}

/// Rows mapped together; each thread takes a contiguous share so output order is kept.
const BLOCK_ROWS: usize = 4096;

struct Row {
    line_number: u64,
    bytes: Vec<u8>,
    /// The whole length of a row too long to hold (`bytes` is its start).
    oversized: Option<u64>,
}

/// Maps every input in order. An input that cannot be opened or read is reported in the
/// summary's `failed_inputs` and the run goes on with the next one; bad rows never stop it.
pub fn run_map(
    inputs: &[InputSource],
    engine: &Engine,
    threads: usize,
    format: OutputFormat,
    out: &mut dyn Write,
    mut rejects: Option<&mut dyn Write>,
    on_input_error: &mut dyn FnMut(&InputError),
) -> io::Result<MapSummary> {
    let threads = threads.max(1);
    let mut mappers: Vec<Box<dyn RowMapper>> = (0..threads).map(|_| engine.mapper()).collect();
    let mut summary = MapSummary::default();
    let mut block: Vec<Row> = Vec::with_capacity(BLOCK_ROWS);
    let mut outcomes: Vec<MappingOutcome> = Vec::with_capacity(BLOCK_ROWS);

    for source in inputs {
        let mut reader = match LineReader::open(source.clone()) {
            Ok(reader) => reader,
            Err(error) => {
                on_input_error(&error);
                summary.failed_inputs.push(error.to_string());
                continue;
            }
        };
        let file_name = source.display_name();
        loop {
            let read_error = fill_block(&mut reader, &mut block);
            map_block(&mut mappers, &block, &mut outcomes);
            for (row, outcome) in block.iter().zip(&outcomes) {
                summary.record(
                    row.oversized
                        .map_or(row.bytes.len(), |length| length as usize),
                    outcome,
                );
                write_outcome(out, format, outcome)?;
                if let (MappingOutcome::Rejected(reason), Some(sink)) =
                    (outcome, rejects.as_deref_mut())
                {
                    write_dead_letter(sink, &file_name, row, reason.as_str())?;
                }
            }
            if let Some(error) = read_error {
                on_input_error(&error);
                summary.failed_inputs.push(error.to_string());
                break;
            }
            if block.len() < BLOCK_ROWS {
                break;
            }
        }
    }
    out.flush()?;
    if let Some(sink) = rejects {
        sink.flush()?;
    }
    Ok(summary)
}

/// Reads up to `BLOCK_ROWS` lines, reusing the buffers of the previous block.
fn fill_block(reader: &mut LineReader, block: &mut Vec<Row>) -> Option<InputError> {
    let mut filled = 0;
    while filled < BLOCK_ROWS {
        if block.len() == filled {
            block.push(Row {
                line_number: 0,
                bytes: Vec::new(),
                oversized: None,
            });
        }
        match reader.next_line(&mut block[filled].bytes) {
            Ok(Some(line)) => {
                block[filled].line_number = line.number;
                block[filled].oversized = line.oversized;
                filled += 1;
            }
            Ok(None) => break,
            Err(error) => {
                block.truncate(filled);
                return Some(error);
            }
        }
    }
    block.truncate(filled);
    None
}

/// A row's outcome (one too long to hold is refused without being mapped).
fn map_row(mapper: &mut dyn RowMapper, row: &Row) -> MappingOutcome {
    mapper.map_read(&row.bytes, row.oversized)
}

fn map_block(
    mappers: &mut [Box<dyn RowMapper>],
    block: &[Row],
    outcomes: &mut Vec<MappingOutcome>,
) {
    outcomes.clear();
    if mappers.len() == 1 || block.len() < 64 {
        outcomes.extend(block.iter().map(|row| map_row(mappers[0].as_mut(), row)));
        return;
    }
    let share = block.len().div_ceil(mappers.len());
    let results: Vec<Vec<MappingOutcome>> = std::thread::scope(|scope| {
        let handles: Vec<_> = mappers
            .iter_mut()
            .zip(block.chunks(share))
            .map(|(mapper, rows)| {
                scope.spawn(move || {
                    rows.iter()
                        .map(|row| map_row(mapper.as_mut(), row))
                        .collect()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|handle| {
                handle
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    });
    outcomes.extend(results.into_iter().flatten());
}

fn write_outcome(
    out: &mut dyn Write,
    format: OutputFormat,
    outcome: &MappingOutcome,
) -> io::Result<()> {
    match format {
        OutputFormat::Results => {
            out.write_all(outcome.to_result_json().as_bytes())?;
            out.write_all(b"\n")
        }
        OutputFormat::Events => {
            if let MappingOutcome::Events(events) = outcome {
                for event in events {
                    out.write_all(event.as_bytes())?;
                    out.write_all(b"\n")?;
                }
            }
            Ok(())
        }
    }
}

/// One dead letter in the project's one shape ([`crate::dead_letter`]).
fn write_dead_letter(sink: &mut dyn Write, file: &str, row: &Row, reason: &str) -> io::Result<()> {
    let letter = DeadLetter {
        file,
        line: row.line_number,
        row: &row.bytes,
        reason,
        component: "map",
        cut: row.oversized,
    };
    sink.write_all(letter.to_json().as_bytes())?;
    sink.write_all(b"\n")
}
