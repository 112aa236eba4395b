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
use super::super::state::{Example, HeldRow};
use super::super::summary::MigrationSummary;
use super::super::{MigrateError, MigrateOptions};
use super::days::{DayBatches, Front, LateCount, Limits, Place};
use super::{
    Backlog, Batch, COMPONENT, Chunk, Commit, DryRun, EventOrigin, MappedChunk, Pending, Source,
    StopSwitch,
};
use crate::counts::{DayCounts, Metric, UNKNOWN_DAY, count_row};
use crate::dead_letter::DeadLetter;
use crate::outcome::MappingOutcome;

/// What the assembler counted (the dry run's totals).
pub(super) struct Assembled {
    counts: DayCounts,
    files: u64,
    /// The first row of each skip and refusal reason.
    examples: Vec<Example>,
    /// The late pass's requests a dry run would make for the rows it would hold.
    late: LateCount,
}

/// Counts rows, feeds identities to the store, holds late rows, packs the others into day
/// batches; `front` is where the main pass stood when the run began.
pub(super) fn assemble(
    from_mappers: Vec<Receiver<MappedChunk>>,
    mut store: Option<Store>,
    (batches, commit): (tokio::sync::mpsc::Sender<Batch>, Sender<Commit>),
    (options, mut front): (&MigrateOptions, Front),
    (counters, backlog, switch): (&LiveCounts, &Backlog, &StopSwitch),
) -> Result<Assembled, MigrateError> {
    let mut assembled = Assembled {
        counts: DayCounts::new(),
        files: 0,
        examples: Vec::new(),
        late: LateCount::default(),
    };
    let limits = limits(options);
    let mut open = DayBatches::new(limits);
    let mut ready = Vec::new();
    let mut turn = 0;
    let mut chunks = 0;
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
        let (chunk, mut sorted) = sort(mapped_chunk, &mut exemplified, &mut front);
        if chunk.end_of_file {
            assembled.files += 1;
        }
        counters
            .rows
            .fetch_add(chunk.lines.len() as u64, Ordering::Relaxed);
        for (key, value) in &sorted.pending.counts {
            *assembled.counts.entry(key.clone()).or_default() += value;
            if key.1 == Metric::Events {
                counters.events.fetch_add(*value, Ordering::Relaxed);
            }
        }
        assembled
            .examples
            .extend(sorted.pending.examples.iter().cloned());
        counters.held.fetch_add(
            sorted
                .pending
                .held
                .iter()
                .map(|held| held.events.len() as u64)
                .sum(),
            Ordering::Relaxed,
        );
        if options.dry_run {
            for held in std::mem::take(&mut sorted.pending.held) {
                let bytes = super::days::row_bytes(held.events.iter());
                assembled
                    .late
                    .add_row(&held.day, held.events.len(), bytes, limits);
            }
        }
        if let Some(store) = store.as_mut()
            && !sorted.identities.is_empty()
        {
            // A store that stopped recording ends the assembly: nothing more may be sent.
            store
                .ingest(&RecordBatch::from_records(sorted.identities))
                .map_err(MigrateError::Identities)?;
        }
        if !options.dry_run {
            if !wait_for_room(backlog, switch, &mut open, &batches) {
                // The run stops: this chunk is not registered, the next run reads it again.
                return Ok(assembled);
            }
            backlog.registered();
        }
        let registered = commit.send(Commit::Register {
            file: chunk.file,
            index: chunk.index,
            last_line: chunk.last_line,
            events: sorted.rows.iter().map(|row| row.events.len() as u64).sum(),
            pending: sorted.pending,
        });
        if registered.is_err() && !options.dry_run {
            // The committer stopped (its error ends the run): none of these may be sent.
            return Ok(assembled);
        }
        for row in sorted.rows {
            open.add_row(&row.day, chunks, row.events, &mut ready);
            if let Some(oldest) = &row.oldest_current {
                open.close_before(oldest, &mut ready);
            }
        }
        open.close_stale(chunks, &mut ready);
        chunks += 1;
        if !send(&mut ready, &batches) {
            return Ok(assembled);
        }
    }
    open.close_all(&mut ready);
    send(&mut ready, &batches);
    Ok(assembled)
}

/// Waits while too many chunks wait for their deliveries, sending every open batch first (their
/// events may be what those chunks wait for); false if the run stops meanwhile.
fn wait_for_room(
    backlog: &Backlog,
    switch: &StopSwitch,
    open: &mut DayBatches,
    batches: &tokio::sync::mpsc::Sender<Batch>,
) -> bool {
    if !backlog.full() {
        return true;
    }
    let mut ready = Vec::new();
    open.close_all(&mut ready);
    if !send(&mut ready, batches) {
        return false;
    }
    while backlog.full() {
        if switch.is_on() {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    true
}

/// The request limits of this run.
pub(super) fn limits(options: &MigrateOptions) -> Limits {
    Limits {
        events: options.batch_events,
        bytes: options.batch_bytes,
    }
}

/// Hands the ready batches to the senders, in order; false once they are gone.
pub(super) fn send(ready: &mut Vec<Batch>, batches: &tokio::sync::mpsc::Sender<Batch>) -> bool {
    ready
        .drain(..)
        .all(|batch| batches.blocking_send(batch).is_ok())
}

/// What a chunk's rows come to: what the committer writes with it (its held rows among
/// it), the identity records for the store, and the rows whose events go now.
struct Sorted {
    pending: Pending,
    identities: Vec<IdentityRecord>,
    rows: Vec<RowEvents>,
}

/// One row's events for the main pass.
struct RowEvents {
    day: Arc<str>,
    events: Vec<(String, EventOrigin)>,
    /// When the row moved the front: the oldest day still current.
    oldest_current: Option<String>,
}

/// Sorts a mapped chunk's rows: counts by day and outcome, the first example of each reason
/// (`exemplified` holds the reasons that have one), dead letters of refused rows, identity
/// records, rows held back for the late pass ([`Front`]), and the events to send now.
fn sort(
    MappedChunk { chunk, mapped }: MappedChunk,
    exemplified: &mut HashSet<(Metric, String)>,
    front: &mut Front,
) -> (Chunk, Sorted) {
    let mut sorted = Sorted {
        pending: Pending {
            end_of_file: chunk.end_of_file,
            ..Pending::default()
        },
        identities: Vec::new(),
        rows: Vec::new(),
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
        let MappingOutcome::Events(events) = mapped.outcome else {
            continue;
        };
        if events.is_empty() {
            // Nothing to send (a custom module may say so): nothing to hold either.
            continue;
        }
        let before = *front;
        if front.place(&day) == Place::Late {
            pending.held.push(HeldRow {
                day,
                line: *line,
                row: Arc::new(row.clone()),
                events,
            });
            continue;
        }
        let day: Arc<str> = day.into();
        let events = EventOrigin {
            source: Source::Chunk {
                file: chunk.file,
                chunk: chunk.index,
            },
            line: *line,
            day: day.clone(),
            name: chunk.name.clone(),
            row: Arc::new(row.clone()),
        }
        .tag(events);
        sorted.rows.push(RowEvents {
            day,
            events,
            oldest_current: (*front != before).then(|| front.oldest_current()).flatten(),
        });
    }
    pending.front = front.newest();
    (chunk, sorted)
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
        batches: batches + assembled.late.total(),
        counts: assembled.counts,
        examples: assembled.examples,
    };
    (summary, Some(dry_run))
}
