//! What a migration did, from the state's per-day counts: every row is mapped, skipped or
//! rejected, every event produced is delivered or dead-lettered, and the counts add up.

use std::collections::BTreeMap;
use std::fmt;

use super::Stop;

/// Metric names in the state's per-day counts.
pub mod metric {
    /// Rows read (each once, whatever became of it).
    pub const ROWS: &str = "rows";
    /// Rows mapped to one or more events.
    pub const MAPPED: &str = "mapped";
    /// Rows skipped, by reason.
    pub const SKIPPED: &str = "skipped";
    /// Rows refused by the mapping, by reason (in the dead letters).
    pub const REJECTED: &str = "rejected";
    /// Events the mapping produced.
    pub const EVENTS: &str = "events";
    /// Events PostHog accepted.
    pub const DELIVERED: &str = "delivered";
    /// Events PostHog refused for good (in the dead letters with its answer).
    pub const DEAD_LETTERED: &str = "dead_lettered";
}

/// The totals of a migration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MigrationSummary {
    pub rows: u64,
    pub mapped: u64,
    pub skipped: BTreeMap<String, u64>,
    pub rejected: BTreeMap<String, u64>,
    pub events: u64,
    pub delivered: u64,
    pub dead_lettered: u64,
    /// Input files in the migration, and how many are read to their end and done.
    pub files: u64,
    pub files_done: u64,
    /// (file, problem): changed, truncated or unreadable inputs.
    pub problems: Vec<(String, String)>,
    /// The identity sidecar's numbers: (device, user) pairs = aliases sent + refused by
    /// PostHog + pending + conflicts; group updates sent, refused, pending.
    pub alias_pairs: u64,
    pub aliases_sent: u64,
    pub aliases_refused: u64,
    pub aliases_pending: u64,
    pub alias_conflicts: u64,
    pub groups_sent: u64,
    pub groups_refused: u64,
    pub groups_pending: u64,
}

impl MigrationSummary {
    /// Takes the identity sidecar's numbers from its store's counts.
    pub fn set_identities(&mut self, counts: &posthog_alias_sink::store::Counts) {
        self.alias_pairs = counts.pairs;
        self.aliases_sent = counts.sent;
        self.aliases_refused = counts.failed;
        self.aliases_pending = counts.pending;
        self.alias_conflicts = counts.conflicts;
        self.groups_sent = counts.groups_sent;
        self.groups_refused = counts.groups_failed;
        self.groups_pending = counts.groups_pending;
    }

    /// Totals of (day, metric, reason) counts.
    pub fn from_counts(counts: &BTreeMap<(String, String, String), u64>) -> MigrationSummary {
        let mut totals = crate::report::Counts::default();
        for ((_, name, reason), count) in counts {
            totals.add(name, reason, *count);
        }
        MigrationSummary {
            rows: totals.rows,
            mapped: totals.mapped,
            skipped: totals.skipped,
            rejected: totals.rejected,
            events: totals.events,
            delivered: totals.delivered,
            dead_lettered: totals.dead_lettered,
            ..MigrationSummary::default()
        }
    }

    pub fn skipped_total(&self) -> u64 {
        self.skipped.values().sum()
    }

    pub fn rejected_total(&self) -> u64 {
        self.rejected.values().sum()
    }

    /// rows = mapped + skipped + rejected, and events = delivered + dead-lettered.
    pub fn adds_up(&self) -> bool {
        self.rows == self.mapped + self.skipped_total() + self.rejected_total()
            && self.events == self.delivered + self.dead_lettered
    }

    /// Whether everything is delivered or accounted for: every file done, no problem, no
    /// alias or group left to send.
    pub fn complete(&self) -> bool {
        self.adds_up()
            && self.problems.is_empty()
            && self.files_done == self.files
            && self.aliases_pending == 0
            && self.groups_pending == 0
    }

    /// The process exit code for a run that ended this way.
    pub fn exit_code(&self, stop: &Stop) -> u8 {
        match stop {
            Stop::Credentials { .. } | Stop::WrongHost { .. } | Stop::Refused { .. } => 3,
            Stop::Interrupted => 130,
            Stop::Finished if self.complete() => 0,
            Stop::Finished => 1,
        }
    }
}

impl fmt::Display for MigrationSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "rows {} = mapped {} + skipped {} + rejected {}",
            self.rows,
            self.mapped,
            self.skipped_total(),
            self.rejected_total()
        )?;
        writeln!(
            f,
            "events {} = delivered {} + dead-lettered {}",
            self.events, self.delivered, self.dead_lettered
        )?;
        for (reason, count) in &self.skipped {
            writeln!(f, "  skipped  {reason}: {count}")?;
        }
        for (reason, count) in &self.rejected {
            writeln!(f, "  rejected {reason}: {count}")?;
        }
        writeln!(
            f,
            "aliases {} = sent {} + refused {} + pending {} + conflicts {}; group updates sent {}, refused {}, pending {}",
            self.alias_pairs,
            self.aliases_sent,
            self.aliases_refused,
            self.aliases_pending,
            self.alias_conflicts,
            self.groups_sent,
            self.groups_refused,
            self.groups_pending
        )?;
        write!(f, "files {} of {} done", self.files_done, self.files)?;
        for (file, problem) in &self.problems {
            if file.is_empty() || problem.contains(file.as_str()) {
                write!(f, "\n  problem: {problem}")?;
            } else {
                write!(f, "\n  problem: {file}: {problem}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_add_up_across_days_and_reasons() {
        let mut counts = BTreeMap::new();
        let mut add = |day: &str, name: &str, reason: &str, count: u64| {
            counts.insert((day.to_owned(), name.to_owned(), reason.to_owned()), count);
        };
        add("2024-07-06", metric::ROWS, "", 10);
        add("2024-07-06", metric::MAPPED, "", 7);
        add("2024-07-06", metric::SKIPPED, "session_marker", 2);
        add("unknown", metric::ROWS, "", 1);
        add("unknown", metric::REJECTED, "invalid_json", 1);
        add("2024-07-06", metric::REJECTED, "bad_timestamp", 1);
        add("2024-07-06", metric::EVENTS, "", 8);
        add("2024-07-06", metric::DELIVERED, "", 7);
        add("2024-07-06", metric::DEAD_LETTERED, "", 1);
        let summary = MigrationSummary {
            files: 1,
            files_done: 1,
            ..MigrationSummary::from_counts(&counts)
        };
        assert_eq!((summary.rows, summary.rejected_total()), (11, 2));
        assert!(summary.adds_up() && summary.complete());
        assert_eq!(summary.exit_code(&Stop::Finished), 0);
        assert_eq!(summary.exit_code(&Stop::Interrupted), 130);
        assert_eq!(summary.exit_code(&Stop::Credentials { status: 401 }), 3);
        let unfinished = MigrationSummary {
            files_done: 0,
            ..summary
        };
        assert_eq!(unfinished.exit_code(&Stop::Finished), 1);
    }
}
