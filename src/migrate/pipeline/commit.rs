//! The committer: registrations and deliveries applied to the tracker, and each chunk that is
//! done — every event accepted or dead-lettered — written with its counts, dead letters and the
//! file's watermark in one transaction. At the end, the summary of the state.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::Duration;

use posthog_identity_sidecar::store::Store;

use super::super::state::{ChunkCommit, Example, HeldRow, LateCommit, State};
use super::super::summary::MigrationSummary;
use super::super::tracker::{FileId, Tracker};
use super::super::{DEAD_LETTERS_FILE, MigrateError, Stop};
use super::{Backlog, COMPONENT, Commit, Pending, Source, StopSwitch, named};
use crate::counts::{DayCounts, Metric};
use crate::dead_letter::DeadLetter;

/// The committer's thread. A state that stops recording stops everything at once: nothing is
/// sent that could not be recorded, so a rerun re-sends at most what was in flight.
pub(super) fn spawn(
    state: State,
    messages: Receiver<Commit>,
    switch: StopSwitch,
    backlog: Arc<Backlog>,
) -> std::thread::JoinHandle<Result<State, MigrateError>> {
    named("migrate-commit", move || {
        let committed = committer(state, messages, &backlog);
        if committed.is_err() {
            switch.halt();
        }
        committed
    })
}

/// Applies registrations and deliveries; commits chunks as watermarks move, and held rows as
/// the late pass delivers them.
fn committer(
    mut state: State,
    messages: Receiver<Commit>,
    backlog: &Backlog,
) -> Result<State, MigrateError> {
    let mut tracker: Tracker<Pending> = Tracker::default();
    let mut open = true;
    while open {
        let mut late = LateCommit::default();
        match messages.recv_timeout(Duration::from_millis(100)) {
            Ok(message) => apply(&mut tracker, &mut late, &state, message)?,
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => open = false,
        }
        // Everything already waiting goes into the same transaction.
        while let Ok(message) = messages.try_recv() {
            apply(&mut tracker, &mut late, &state, message)?;
        }
        let done: Vec<ChunkCommit> = tracker
            .take_done()
            .into_iter()
            .map(|chunk| ChunkCommit {
                file: chunk.file,
                index: chunk.index,
                last_line: chunk.last_line,
                writes: Pending {
                    counts: delivered_counts(chunk.payload.counts, &chunk.payload.held),
                    ..chunk.payload
                },
            })
            .collect();
        state.commit(&done, &late)?;
        backlog.committed(done.len());
    }
    Ok(state)
}

/// Adds the events delivered per day: produced minus dead-lettered minus held for the late
/// pass.
fn delivered_counts(mut counts: DayCounts, held: &[HeldRow]) -> DayCounts {
    let mut by_day: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for ((day, name, _), value) in &counts {
        match *name {
            Metric::Events => by_day.entry(day.clone()).or_default().0 += value,
            Metric::DeadLettered => by_day.entry(day.clone()).or_default().1 += value,
            _ => {}
        }
    }
    for row in held {
        by_day.entry(row.day.clone()).or_default().1 += row.events.len() as u64;
    }
    for (day, (events, not_delivered)) in by_day {
        if events > not_delivered {
            counts.insert(
                (day, Metric::Delivered, String::new()),
                events - not_delivered,
            );
        }
    }
    counts
}

fn apply(
    tracker: &mut Tracker<Pending>,
    late: &mut LateCommit,
    state: &State,
    message: Commit,
) -> Result<(), MigrateError> {
    match message {
        Commit::Open { file, first_chunk } => tracker.open_file(file, first_chunk),
        Commit::Register {
            file,
            index,
            last_line,
            events,
            pending,
        } => tracker.add_chunk(file, index, last_line, events, pending),
        Commit::Delivered { origins, refused } => {
            let refused: HashMap<usize, String> = refused.into_iter().collect();
            let mut per_chunk: BTreeMap<(FileId, u64), u64> = BTreeMap::new();
            // Events of each held row so far in this delivery (a row travels in one request).
            let mut held_seen: HashMap<i64, u64> = HashMap::new();
            for (position, origin) in origins.iter().enumerate() {
                let reason = refused.get(&position);
                let letter = reason.map(|reason| {
                    DeadLetter {
                        file: &origin.name,
                        line: origin.line,
                        row: &origin.row,
                        reason,
                        component: COMPONENT,
                        cut: None,
                    }
                    .to_json()
                });
                let example = || {
                    Example::new(
                        Metric::DeadLettered.as_str(),
                        "",
                        &origin.name,
                        origin.line,
                        &origin.row,
                    )
                };
                let metric = match reason {
                    Some(_) => Metric::DeadLettered,
                    None => Metric::Delivered,
                };
                match origin.source {
                    Source::Chunk { file, chunk } => {
                        *per_chunk.entry((file, chunk)).or_default() += 1;
                        if let Some(letter) = letter
                            && let Some(pending) = tracker.payload_mut(file, chunk)
                        {
                            pending.dead_letters.push((origin.line, letter));
                            pending.examples.push(example());
                            *pending
                                .counts
                                .entry((origin.day.to_string(), metric, String::new()))
                                .or_default() += 1;
                        }
                    }
                    Source::Held { id, file } => {
                        let seq = held_seen.entry(id).or_default();
                        if *seq == 0 {
                            late.done.push(id);
                        }
                        if let Some(letter) = letter {
                            late.dead_letters.push((file, origin.line, *seq, letter));
                            late.examples.push(example());
                        }
                        *seq += 1;
                        *late
                            .counts
                            .entry((origin.day.to_string(), metric, String::new()))
                            .or_default() += 1;
                    }
                }
            }
            for ((file, chunk), count) in per_chunk {
                tracker.complete(file, chunk, count);
            }
        }
        Commit::Problem { file, problem } => state.set_problem(file, Some(&problem))?,
    }
    Ok(())
}

/// Rewrites `<state>/dead-letters.jsonl` from the state, atomically, one record at a time:
/// the refused rows and events, then the identity updates PostHog refused.
fn write_dead_letters(state: &State, dir: &Path) -> Result<(), MigrateError> {
    let path = dir.join(DEAD_LETTERS_FILE);
    let store = Store::open(state.path()).map_err(MigrateError::Identities)?;
    crate::fs::write_atomically_with(&path, |writer| {
        state.for_each_dead_letter(|record| {
            writer.write_all(record.as_bytes())?;
            writer.write_all(b"\n")
        })?;
        crate::dead_letter::write_identity_letters(&store, writer)
    })
    .map_err(|source| MigrateError::Write { path, source })
}

/// The summary of the migration the state holds, after a run that ended with `stop`; the
/// identity updates refused in a run stopped for its setup go back to the outbox.
pub(super) fn summarize(
    state: &State,
    state_dir: &Path,
    stop: &Stop,
    unregistered: Vec<(String, String)>,
) -> Result<MigrationSummary, MigrateError> {
    let identities = MigrateError::Identities;
    let store = Store::open(state.path()).map_err(identities)?;
    if stop.is_setup() {
        store.requeue_failed().map_err(identities)?;
    }
    let mut summary = MigrationSummary::from_counts(&state.day_counts()?);
    summary.identities = store.counts().map_err(identities)?;
    summary.problems = state.problems()?;
    summary.problems.extend(unregistered);
    let (files, done) = state.file_totals()?;
    summary.files = files;
    summary.files_done = done;
    write_dead_letters(state, state_dir)?;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivered_is_produced_minus_dead_lettered_per_day() {
        let mut counts = DayCounts::new();
        counts.insert(("2024-07-06".into(), Metric::Events, String::new()), 5);
        counts.insert(
            ("2024-07-06".into(), Metric::DeadLettered, String::new()),
            1,
        );
        counts.insert(("2024-07-07".into(), Metric::Events, String::new()), 2);
        let counts = delivered_counts(counts, &[]);
        assert_eq!(
            counts[&("2024-07-06".into(), Metric::Delivered, String::new())],
            4
        );
        assert_eq!(
            counts[&("2024-07-07".into(), Metric::Delivered, String::new())],
            2
        );
    }
}
