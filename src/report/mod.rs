//! The reconciliation report of a migration: per UTC day of the events, what came in (rows,
//! skipped and refused by reason) and what went out (events produced, delivered,
//! dead-lettered, aliases sent, conflicts), from `migrate`'s state. Written as `report.json`
//! (the schema is documented in `docs/ARCHITECTURE.md`, "The report") and as one
//! self-contained `report.html` ([`html`]).

pub mod html;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use crate::counts::Tally;
use crate::counts::{DayCounts, UNKNOWN_DAY};
use crate::migrate::state::{Example, State, StateError};

/// The `schema` field of `report.json`; changes when a field changes meaning or goes away.
pub const SCHEMA: &str = "amplitude-posthog/report/1";
pub const JSON_FILE: &str = "report.json";
pub const HTML_FILE: &str = "report.html";

/// One UTC day of event time (`unknown` for rows refused before a time was read).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Day {
    pub day: String,
    #[serde(flatten)]
    pub counts: Tally,
}

/// Input files and their problems.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Files {
    pub total: u64,
    pub done: u64,
    pub problems: Vec<Problem>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    pub file: String,
    pub problem: String,
}

/// The whole report, as `report.json` holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub schema: String,
    /// When the report was made (RFC 3339, UTC).
    pub generated_at: String,
    /// The state it was made from.
    pub state: String,
    pub totals: Tally,
    /// Aliases and group snapshots still to send.
    pub aliases_pending: u64,
    pub groups_pending: u64,
    /// Aliases PostHog refused for good (in the dead letters with its answer).
    #[serde(default)]
    pub aliases_refused: u64,
    /// Final person updates (each person's values by event time) PostHog accepted, refused
    /// for good, and worked out but still to send.
    #[serde(default)]
    pub person_updates_sent: u64,
    #[serde(default)]
    pub person_updates_refused: u64,
    #[serde(default)]
    pub person_updates_pending: u64,
    /// Distinct ids with person values whose update is not worked out yet: the identity
    /// store waits for the end of the migration (a release).
    #[serde(default)]
    pub persons_unreleased: u64,
    /// Group updates (each group's latest snapshot) PostHog accepted, and refused for good.
    #[serde(default)]
    pub groups_sent: u64,
    #[serde(default)]
    pub groups_refused: u64,
    pub files: Files,
    /// Every day with a count, in order.
    pub days: Vec<Day>,
    /// One example row per skip reason, refusal reason, and for events PostHog refused.
    pub examples: Vec<Example>,
    /// The last `verify` against PostHog's own counts, if any (`verify.json` in the state).
    pub verify: Option<crate::verify::Verification>,
    /// Where `delivered` comes from: `state` (each event's acceptance by PostHog, recorded by
    /// `migrate`) or `produced` (a Vector pipeline: the events the mapping produced, delivered
    /// once Vector has finished; see [`crate::vector::report`]).
    #[serde(default = "state_basis")]
    pub delivered_basis: String,
}

fn state_basis() -> String {
    "state".to_owned()
}

/// `delivered_basis` of a dry run's report: nothing was sent, so nothing is delivered; the
/// events produced are what a real run would send.
pub const DRY_RUN: &str = "dry_run";

/// `delivered_basis` of a Vector pipeline's report: the events the mapping produced, delivered
/// once Vector has finished (see [`crate::vector::report`]).
pub const PRODUCED: &str = "produced";

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("no migration state in {0}: run `amplitude-posthog migrate` first (or give --state)")]
    NoState(PathBuf),
    #[error(transparent)]
    State(#[from] StateError),
    #[error("cannot read the identity store {path}: {source}")]
    Identities {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl Report {
    /// The report of the migration whose state is in `state_dir`.
    pub fn from_state_dir(state_dir: &Path) -> Result<Report, ReportError> {
        let database = state_dir.join(crate::migrate::state::DATABASE);
        if !database.is_file() {
            // `migrate --engine vector` keeps no per-day state: its report is the one it wrote.
            return Report::from_json(state_dir);
        }
        let state = State::open(state_dir)?;
        let identities = |source| ReportError::Identities {
            path: database.clone(),
            source,
        };
        let store = posthog_identity_sidecar::store::Store::open(&database).map_err(identities)?;
        let outbox = store.counts().map_err(identities)?;
        let mut report = Report::from_parts(
            &state.day_counts()?,
            &store.daily_counts().map_err(identities)?,
            state.examples()?,
        );
        report.state = state_dir.display().to_string();
        report.set_identities(&outbox);
        report.verify = std::fs::read(state_dir.join(crate::verify::VERIFY_FILE))
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok());
        let (total, done) = state.file_totals()?;
        report.files = Files {
            total,
            done,
            problems: state
                .problems()?
                .into_iter()
                .map(|(file, problem)| Problem { file, problem })
                .collect(),
        };
        Ok(report)
    }

    /// The report of `migrate --dry-run`: its counts and examples, nothing delivered.
    pub fn from_dry_run(
        dry_run: &crate::migrate::DryRun,
        summary: &crate::migrate::summary::MigrationSummary,
    ) -> Report {
        let mut report =
            Report::from_parts(&dry_run.counts, &BTreeMap::new(), dry_run.examples.clone());
        report.state = "none (a dry run: nothing was sent or recorded)".to_owned();
        report.files = Files {
            total: summary.files,
            done: summary.files_done,
            problems: summary
                .problems
                .iter()
                .map(|(file, problem)| Problem {
                    file: file.clone(),
                    problem: problem.clone(),
                })
                .collect(),
        };
        report.delivered_basis = DRY_RUN.to_owned();
        report
    }

    /// The identity store's totals: what is pending, refused, and the groups sent.
    pub fn set_identities(&mut self, outbox: &posthog_identity_sidecar::store::OutboxCounts) {
        self.aliases_pending = outbox.pending;
        self.aliases_refused = outbox.failed;
        self.groups_pending = outbox.groups_pending;
        self.groups_sent = outbox.groups_sent;
        self.groups_refused = outbox.groups_failed;
        self.person_updates_sent = outbox.persons_sent;
        self.person_updates_refused = outbox.persons_failed;
        self.person_updates_pending = outbox.persons_pending;
        self.persons_unreleased = if outbox.released { 0 } else { outbox.persons };
    }

    /// Whether this report stands for a dry run (nothing sent).
    pub fn is_dry_run(&self) -> bool {
        self.delivered_basis == DRY_RUN
    }

    /// The `report.json` a run of `migrate --engine vector` wrote, with the last `verify`.
    fn from_json(state_dir: &Path) -> Result<Report, ReportError> {
        let bytes = std::fs::read(state_dir.join(JSON_FILE))
            .map_err(|_| ReportError::NoState(state_dir.to_path_buf()))?;
        let mut report: Report = serde_json::from_slice(&bytes)
            .map_err(|_| ReportError::NoState(state_dir.to_path_buf()))?;
        if report.schema != SCHEMA {
            return Err(ReportError::NoState(state_dir.to_path_buf()));
        }
        report.verify = std::fs::read(state_dir.join(crate::verify::VERIFY_FILE))
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok());
        report.generated_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        Ok(report)
    }

    /// The report of the state's (day, metric, reason) counts and the identity store's
    /// per-day (aliases sent, conflicts).
    pub fn from_parts(
        counts: &DayCounts,
        identities: &BTreeMap<String, (u64, u64)>,
        examples: Vec<Example>,
    ) -> Report {
        let mut days = Tally::by_day(counts);
        for (day, (sent, conflicts)) in identities {
            let counts = days.entry(day.clone()).or_default();
            counts.aliases_sent += sent;
            counts.alias_conflicts += conflicts;
        }
        let mut totals = Tally::default();
        for counts in days.values() {
            totals.absorb(counts);
        }
        Report {
            schema: SCHEMA.to_owned(),
            generated_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            state: String::new(),
            totals,
            aliases_pending: 0,
            groups_pending: 0,
            person_updates_sent: 0,
            person_updates_refused: 0,
            person_updates_pending: 0,
            persons_unreleased: 0,
            aliases_refused: 0,
            groups_sent: 0,
            groups_refused: 0,
            files: Files::default(),
            days: days
                .into_iter()
                .map(|(day, counts)| Day { day, counts })
                .collect(),
            examples,
            verify: None,
            delivered_basis: state_basis(),
        }
    }

    /// Writes `report.json` and `report.html` into `dir`; their paths.
    pub fn write(&self, dir: &Path) -> Result<(PathBuf, PathBuf), ReportError> {
        let json_path = dir.join(JSON_FILE);
        let html_path = dir.join(HTML_FILE);
        let mut json = serde_json::to_vec_pretty(self).expect("a report serialises");
        json.push(b'\n');
        for (path, bytes) in [
            (&json_path, json),
            (&html_path, html::render(self).into_bytes()),
        ] {
            crate::fs::write_atomically(path, &bytes).map_err(|source| ReportError::Write {
                path: path.clone(),
                source,
            })?;
        }
        Ok((json_path, html_path))
    }

    /// Events delivered per dated day (the days `verify` asks PostHog about).
    pub fn delivered_by_day(&self) -> BTreeMap<String, u64> {
        self.days
            .iter()
            .filter(|day| day.day != UNKNOWN_DAY && day.counts.delivered > 0)
            .map(|day| (day.day.clone(), day.counts.delivered))
            .collect()
    }

    /// Days whose counts do not add up (a migration still running has them; for a dry run,
    /// which delivers nothing, only the rows must add up).
    pub fn unbalanced_days(&self) -> Vec<&Day> {
        self.days
            .iter()
            .filter(|day| {
                if self.is_dry_run() {
                    !day.counts.rows_add_up()
                } else {
                    !day.counts.adds_up()
                }
            })
            .collect()
    }

    /// A few lines for a terminal.
    pub fn text(&self) -> String {
        let totals = &self.totals;
        let dated: Vec<&Day> = self
            .days
            .iter()
            .filter(|day| day.day != UNKNOWN_DAY)
            .collect();
        let mut text = format!(
            "{} days of events, {} to {}\n\
             rows {} = mapped {} + skipped {} + rejected {}\n\
             events {} = delivered {} + dead-lettered {}\n\
             aliases sent {} (refused {}, pending {}), conflicts {}; group updates sent {} (refused {}, pending {})\n",
            dated.len(),
            dated.first().map_or("-", |day| day.day.as_str()),
            dated.last().map_or("-", |day| day.day.as_str()),
            totals.rows,
            totals.mapped,
            totals.skipped_total(),
            totals.rejected_total(),
            totals.events,
            totals.delivered,
            totals.dead_lettered,
            totals.aliases_sent,
            self.aliases_refused,
            self.aliases_pending,
            totals.alias_conflicts,
            self.groups_sent,
            self.groups_refused,
            self.groups_pending,
        );
        if self.person_updates_sent + self.person_updates_refused + self.person_updates_pending > 0
        {
            text.push_str(&format!(
                "person updates sent {} (refused {}, pending {})\n",
                self.person_updates_sent, self.person_updates_refused, self.person_updates_pending
            ));
        }
        if self.persons_unreleased > 0 {
            text.push_str(&format!(
                "person updates not worked out yet (every event must be delivered first): {} distinct ids\n",
                self.persons_unreleased
            ));
        }
        if totals.held > 0 {
            text.push_str(&format!(
                "events held for the late pass (uploaded late, sent after the rest): {}\n",
                totals.held
            ));
        }
        let unbalanced = self.unbalanced_days();
        if self.is_dry_run() {
            text.push_str(&format!(
                "dry run: nothing was sent; a real run would send the {} events produced\n",
                totals.events
            ));
        }
        if unbalanced.is_empty() && self.is_dry_run() {
            text.push_str("every day adds up: each row mapped, skipped or refused\n");
        } else if unbalanced.is_empty() {
            text.push_str("every day adds up: each row mapped, skipped or refused; each event delivered or dead-lettered\n");
        } else {
            text.push_str(&format!(
                "{} day(s) not yet accounted for (the migration has not finished): {}\n",
                unbalanced.len(),
                unbalanced
                    .iter()
                    .take(10)
                    .map(|day| day.day.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(day: &str, name: &str, reason: &str) -> (String, crate::counts::Metric, String) {
        (
            day.into(),
            crate::counts::Metric::parse(name).expect("a metric"),
            reason.into(),
        )
    }

    #[test]
    fn days_and_totals_come_from_the_states_counts_and_the_identity_store() {
        let counts = BTreeMap::from([
            (key("2024-01-01", "rows", ""), 10),
            (key("2024-01-01", "mapped", ""), 7),
            (key("2024-01-01", "skipped", "session_marker"), 2),
            (key("2024-01-01", "rejected", "bad_timestamp"), 1),
            (key("2024-01-01", "events", ""), 8),
            (key("2024-01-01", "delivered", ""), 7),
            (key("2024-01-01", "dead_lettered", ""), 1),
            (key("unknown", "rows", ""), 1),
            (key("unknown", "rejected", "invalid_json"), 1),
        ]);
        let identities = BTreeMap::from([("2024-01-01".to_owned(), (3, 1))]);
        let report = Report::from_parts(&counts, &identities, Vec::new());
        assert_eq!(report.days.len(), 2);
        let first = &report.days[0].counts;
        assert_eq!(
            (first.rows, first.delivered, first.aliases_sent),
            (10, 7, 3)
        );
        assert!(first.adds_up());
        assert_eq!(report.totals.rows, 11);
        assert_eq!(
            report.totals.rejected,
            BTreeMap::from([("bad_timestamp".into(), 1), ("invalid_json".into(), 1)])
        );
        assert!(report.unbalanced_days().is_empty());
        let json = serde_json::to_value(&report).expect("json");
        assert_eq!(json["schema"], SCHEMA);
        assert_eq!(json["days"][0]["day"], "2024-01-01");
        assert_eq!(json["days"][0]["alias_conflicts"], 1);
    }
}
