//! The report of a migration carried by Vector (`migrate --engine vector`, or a pipeline run by
//! hand): Vector keeps no per-row record, so the report is made from what the pipeline's
//! sources say — the export's per-day counts from the native mapping (the shipped program's
//! output byte for byte), Vector's dead letters checked against the refusals, and the identity
//! sidecar's database. Delivered counts are the events produced (Vector's shipped sinks retry
//! every answer but success, so once Vector has finished they are delivered); `verify`
//! checks them against PostHog itself.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::counts::{DayCounts, Metric};
use crate::map_count::Seen;
use crate::migrate::MigrateError;
use crate::migrate::progress::{LiveCounts, Progress};
use crate::migrate::summary::MigrationSummary;
use crate::report::{Files, PRODUCED, Problem, Report};

/// Rows, outcomes and events of the export, by day, counted in this process with the native
/// mapping (nothing sent), with progress on stderr; the summary has the files read to their
/// end (all done) and the inputs that cannot be read.
pub fn count_export(inputs: &[PathBuf]) -> Result<(MigrationSummary, DayCounts), MigrateError> {
    let threads = std::thread::available_parallelism().map_or(2, usize::from);
    let counters = Arc::new(LiveCounts::default());
    let mut progress: Option<Progress> = None;
    let counted = crate::map_count::count_export(inputs, threads, &mut |seen| match seen {
        Seen::Planned { bytes } => {
            progress = Some(Progress::start(
                bytes,
                None,
                counters.clone(),
                Duration::from_secs(10),
            ));
        }
        Seen::Problem(problem) => match &progress {
            Some(progress) => progress.println(problem),
            None => eprintln!("{problem}"),
        },
        Seen::Read { rows, bytes } => {
            counters.rows.fetch_add(rows, Ordering::Relaxed);
            counters.bytes_read.fetch_add(bytes, Ordering::Relaxed);
        }
    });
    drop(progress);
    let counted = counted?;
    let summary = MigrationSummary {
        files: counted.files,
        files_done: counted.files,
        problems: counted
            .problems
            .into_iter()
            .map(|problem| (String::new(), problem))
            .collect(),
        ..MigrationSummary::from_counts(&counted.counts)
    };
    Ok((summary, counted.counts))
}

/// Adds `delivered` = `events` for every day.
pub fn delivered_as_produced(counts: &mut DayCounts) {
    let produced: Vec<(String, u64)> = counts
        .iter()
        .filter(|((_, metric, _), _)| *metric == Metric::Events)
        .map(|((day, _, _), count)| (day.clone(), *count))
        .collect();
    for (day, count) in produced {
        counts.insert((day, Metric::Delivered, String::new()), count);
    }
}

/// Records in Vector's dead-letter files by reason (`metadata.dropped.message`), repeats
/// included (a file read again after `resume` writes its refused rows again).
pub fn dead_letter_reasons(dir: &Path) -> BTreeMap<String, u64> {
    let mut reasons = BTreeMap::new();
    for file in crate::fs::walk_files(dir).unwrap_or_default() {
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        for line in text.lines() {
            let reason = serde_json::from_str::<serde_json::Value>(line)
                .ok()
                .and_then(|record| {
                    record["metadata"]["dropped"]["message"]
                        .as_str()
                        .map(str::to_owned)
                })
                .unwrap_or_else(|| "unreadable record".to_owned());
            *reasons.entry(reason).or_default() += 1;
        }
    }
    reasons
}

/// Refusal reasons with fewer dead letters than refused rows: rows Vector lost.
pub fn missing_dead_letters(
    rejected: &BTreeMap<String, u64>,
    letters: &BTreeMap<String, u64>,
    dir: &Path,
) -> Vec<Problem> {
    rejected
        .iter()
        .filter_map(|(reason, refused)| {
            let found = letters.get(reason).copied().unwrap_or(0);
            (found < *refused).then(|| Problem {
                file: dir.display().to_string(),
                problem: format!(
                    "{found} dead letters with reason {reason}, but the mapping refuses {refused} rows"
                ),
            })
        })
        .collect()
}

/// The report of a Vector pipeline over `inputs`, with the sidecar's database and Vector's
/// dead-letter directory when there are; and the export's summary (rows, outcomes, events,
/// files; nothing delivered) that the report was made from.
pub fn report(
    inputs: &[PathBuf],
    sidecar_db: Option<&Path>,
    dead_letters: Option<&Path>,
) -> Result<(Report, MigrationSummary), MigrateError> {
    let (mut summary, mut counts) = count_export(inputs)?;
    delivered_as_produced(&mut counts);
    let identities = match sidecar_db {
        Some(path) => posthog_identity_sidecar::store::Store::open(path)
            .and_then(|store| Ok((store.daily_counts()?, store.counts()?)))
            .map(Some)
            .map_err(MigrateError::Identities)?,
        None => None,
    };
    let mut report = Report::from_parts(
        &counts,
        identities
            .as_ref()
            .map(|(days, _)| days)
            .unwrap_or(&BTreeMap::new()),
        Vec::new(),
    );
    report.delivered_basis = PRODUCED.to_owned();
    if let Some((_, outbox)) = &identities {
        report.set_identities(outbox);
    }
    let mut problems: Vec<Problem> = summary
        .problems
        .iter()
        .map(|(file, problem)| Problem {
            file: file.clone(),
            problem: problem.clone(),
        })
        .collect();
    if let Some(dir) = dead_letters {
        problems.extend(missing_dead_letters(
            &summary.totals.rejected,
            &dead_letter_reasons(dir),
            dir,
        ));
    }
    summary.problems = problems
        .iter()
        .map(|problem| (problem.file.clone(), problem.problem.clone()))
        .collect();
    report.files = Files {
        total: summary.files,
        done: summary.files_done,
        problems,
    };
    Ok((report, summary))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fewer_dead_letters_than_refusals_is_a_problem_and_repeats_are_not() {
        let rejected = BTreeMap::from([
            ("invalid_json".to_owned(), 3),
            ("no_identity".to_owned(), 1),
        ]);
        let letters = BTreeMap::from([
            ("invalid_json".to_owned(), 5),
            ("no_identity".to_owned(), 0),
        ]);
        let problems = missing_dead_letters(&rejected, &letters, Path::new("dl"));
        assert_eq!(problems.len(), 1);
        assert_eq!(
            problems[0].problem,
            "0 dead letters with reason no_identity, but the mapping refuses 1 rows"
        );
    }

    #[test]
    fn delivered_equals_produced_on_every_day() {
        let mut counts = DayCounts::from([
            (("2024-01-01".into(), Metric::Events, String::new()), 4),
            (("2024-01-02".into(), Metric::Events, String::new()), 2),
        ]);
        delivered_as_produced(&mut counts);
        assert_eq!(
            counts[&("2024-01-02".into(), Metric::Delivered, String::new())],
            2
        );
    }
}
