//! The assembler: each mapped row counted by day and outcome, its identity records handed to
//! the identity store, its events packed into batches — after its chunk is registered with the
//! committer, so that every delivery finds its chunk.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use amplitude_posthog_transform::IdentityRecord;
use std::sync::mpsc::{Receiver, Sender};

use posthog_identity_sidecar::records::RecordBatch;
use posthog_identity_sidecar::store::Store;

use super::super::progress::LiveCounts;
use super::super::state::Example;
use super::super::summary::MigrationSummary;
use super::super::{MigrateError, MigrateOptions};
use super::{Batch, COMPONENT, Chunk, Commit, DryRun, EventOrigin, MappedChunk, Pending};
use crate::counts::{DayCounts, Metric, UNKNOWN_DAY, count_row};
use crate::dead_letter::DeadLetter;
use crate::outcome::MappingOutcome;

/// What the assembler counted (the dry run's totals).
pub(super) struct Assembled {
    counts: DayCounts,
    files: u64,
    /// The first row of each skip and refusal reason.
    examples: Vec<Example>,
}

/// Counts rows, feeds identities to the store, packs events into batches.
pub(super) fn assemble(
    from_mappers: Vec<Receiver<MappedChunk>>,
    mut store: Option<Store>,
    batches: tokio::sync::mpsc::Sender<Batch>,
    commit: Sender<Commit>,
    options: &MigrateOptions,
    counters: &LiveCounts,
) -> Result<Assembled, MigrateError> {
    let mut assembled = Assembled {
        counts: DayCounts::new(),
        files: 0,
        examples: Vec::new(),
    };
    let mut batch = Batch {
        events: Arc::new(Vec::new()),
        origins: Vec::new(),
        bytes: 0,
    };
    let mut turn = 0;
    // Reasons this run has an example row of already.
    let mut exemplified = HashSet::new();
    let mut finished = vec![false; from_mappers.len()];
    while !finished.iter().all(|done| *done) {
        let at = turn % from_mappers.len();
        turn += 1;
        if finished[at] {
            continue;
        }
        let Ok(mapped_chunk) = from_mappers[at].recv() else {
            finished[at] = true;
            continue;
        };
        let (chunk, sorted) = sort(mapped_chunk, &mut exemplified);
        if chunk.end_of_file {
            assembled.files += 1;
        }
        counters
            .rows
            .fetch_add(chunk.lines.len() as u64, Ordering::Relaxed);
        for (key, value) in &sorted.pending.counts {
            *assembled.counts.entry(key.clone()).or_default() += value;
        }
        assembled
            .examples
            .extend(sorted.pending.examples.iter().cloned());
        if let Some(store) = store.as_mut()
            && !sorted.identities.is_empty()
        {
            // A store that stopped recording ends the assembly: nothing more may be sent.
            store
                .ingest(&RecordBatch::from_records(sorted.identities))
                .map_err(MigrateError::Identities)?;
        }
        let registered = commit.send(Commit::Register {
            file: chunk.file,
            index: chunk.index,
            last_line: chunk.last_line,
            events: sorted.events.len() as u64,
            pending: sorted.pending,
        });
        if registered.is_err() && !options.dry_run {
            // The committer stopped (its error ends the run): none of these may be sent.
            return Ok(assembled);
        }
        if !pack(sorted.events, &mut batch, &batches, options) {
            return Ok(assembled);
        }
    }
    if !batch.origins.is_empty() {
        flush(&mut batch, &batches);
    }
    Ok(assembled)
}

/// What a chunk's rows come to: what the committer writes with it, the identity records for
/// the store, and the events with where they came from.
struct Sorted {
    pending: Pending,
    identities: Vec<IdentityRecord>,
    events: Vec<(String, EventOrigin)>,
}

/// Sorts a mapped chunk's rows: counts by day and outcome, the first example of each reason
/// (`exemplified` holds the reasons that have one), dead letters of refused rows, identity
/// records, events.
fn sort(
    MappedChunk { chunk, mapped }: MappedChunk,
    exemplified: &mut HashSet<(Metric, String)>,
) -> (Chunk, Sorted) {
    let mut sorted = Sorted {
        pending: Pending {
            end_of_file: chunk.end_of_file,
            ..Pending::default()
        },
        identities: Vec::new(),
        events: Vec::new(),
    };
    let pending = &mut sorted.pending;
    for ((line, row), mapped) in chunk.lines.iter().zip(mapped) {
        count_row(&mut pending.counts, mapped.day.as_deref(), &mapped.outcome);
        let day = mapped.day.clone().unwrap_or_else(|| UNKNOWN_DAY.to_owned());
        let not_mapped = match &mapped.outcome {
            MappingOutcome::Events(_) => None,
            MappingOutcome::Skipped(reason) => Some((Metric::Skipped, reason.as_str())),
            MappingOutcome::Rejected(reason) => Some((Metric::Rejected, reason.as_str())),
        };
        if let Some((metric, reason)) = not_mapped {
            if exemplified.insert((metric, reason.to_owned())) {
                pending.examples.push(Example::new(
                    metric.as_str(),
                    reason,
                    &chunk.name,
                    *line,
                    row,
                ));
            }
            if metric == Metric::Rejected {
                let letter = DeadLetter {
                    file: &chunk.name,
                    line: *line,
                    row,
                    reason,
                    component: COMPONENT,
                    cut: chunk.cut(*line),
                };
                pending.dead_letters.push((*line, letter.to_json()));
            }
        }
        sorted.identities.extend(mapped.identities);
        if let MappingOutcome::Events(events) = mapped.outcome {
            let day: Arc<str> = day.into();
            let row = Arc::new(row.clone());
            for event in events {
                let origin = EventOrigin {
                    file: chunk.file,
                    chunk: chunk.index,
                    line: *line,
                    day: day.clone(),
                    name: chunk.name.clone(),
                    row: row.clone(),
                };
                sorted.events.push((event, origin));
            }
        }
    }
    (chunk, sorted)
}

/// Packs events into the batch being filled, handing each full one to the senders; false
/// once they are gone.
fn pack(
    events: Vec<(String, EventOrigin)>,
    batch: &mut Batch,
    batches: &tokio::sync::mpsc::Sender<Batch>,
    options: &MigrateOptions,
) -> bool {
    for (event, origin) in events {
        let size = event.len() + 1;
        if !batch.origins.is_empty()
            && (batch.origins.len() >= options.batch_events
                || batch.bytes + size > options.batch_bytes)
            && !flush(batch, batches)
        {
            return false;
        }
        Arc::get_mut(&mut batch.events)
            .expect("the batch being filled is not shared")
            .push(event);
        batch.origins.push(origin);
        batch.bytes += size;
    }
    true
}

/// Hands the full batch to the senders and starts a new one; false once they are gone.
fn flush(batch: &mut Batch, batches: &tokio::sync::mpsc::Sender<Batch>) -> bool {
    let full = std::mem::replace(
        batch,
        Batch {
            events: Arc::new(Vec::new()),
            origins: Vec::new(),
            bytes: 0,
        },
    );
    batches.blocking_send(full).is_ok()
}

/// A dry run's summary and findings, from what the assembler counted.
pub(super) fn dry_run_summary(
    assembled: Assembled,
    batches: u64,
    unregistered: Vec<(String, String)>,
) -> (MigrationSummary, Option<DryRun>) {
    let mut summary = MigrationSummary::from_counts(&assembled.counts);
    summary.files = assembled.files;
    summary.files_done = assembled.files;
    summary.problems = unregistered;
    let dry_run = DryRun {
        batches,
        counts: assembled.counts,
        examples: assembled.examples,
    };
    (summary, Some(dry_run))
}
