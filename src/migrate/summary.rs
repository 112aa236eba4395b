//! What a migration did, from the state's per-day counts: every row is mapped, skipped or
//! rejected, every event produced is delivered or dead-lettered, and the counts add up.

use std::fmt;

use posthog_identity_sidecar::store::OutboxCounts;

use super::Stop;
use crate::counts::{DayCounts, Tally};

/// The totals of a migration: its rows and events, its files, and the identity sidecar's
/// outbox.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MigrationSummary {
    /// Rows and events (the per-day aliases of [`Tally`] are not used here: see `identities`).
    pub totals: Tally,
    /// Input files in the migration, and how many are read to their end and done.
    pub files: u64,
    pub files_done: u64,
    /// (file, problem): changed, truncated or unreadable inputs.
    pub problems: Vec<(String, String)>,
    /// The identity sidecar's outbox: (device, user) pairs = aliases sent + refused by PostHog
    /// + pending + conflicts; group updates sent, refused, pending.
    pub identities: OutboxCounts,
}

impl MigrationSummary {
    /// The totals of per-day counts.
    pub fn from_counts(counts: &DayCounts) -> MigrationSummary {
        MigrationSummary {
            totals: Tally::of(counts),
            ..MigrationSummary::default()
        }
    }

    /// Whether everything is delivered or accounted for: every file done, no problem, no
    /// alias, group or person update left to send (nor a release still owed).
    pub fn complete(&self) -> bool {
        self.totals.adds_up()
            && self.problems.is_empty()
            && self.files_done == self.files
            && self.identities.waiting() == 0
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
        let (totals, identities) = (&self.totals, &self.identities);
        writeln!(
            f,
            "rows {} = mapped {} + skipped {} + rejected {}",
            totals.rows,
            totals.mapped,
            totals.skipped_total(),
            totals.rejected_total()
        )?;
        write!(
            f,
            "events {} = delivered {} + dead-lettered {}",
            totals.events, totals.delivered, totals.dead_lettered
        )?;
        match totals.held {
            0 => writeln!(f)?,
            held => writeln!(f, " + held for the late pass {held}")?,
        }
        for (reason, count) in &totals.skipped {
            writeln!(f, "  skipped  {reason}: {count}")?;
        }
        for (reason, count) in &totals.rejected {
            writeln!(f, "  rejected {reason}: {count}")?;
        }
        writeln!(
            f,
            "aliases {} = sent {} + refused {} + pending {} + conflicts {}; group updates sent {}, refused {}, pending {}",
            identities.pairs,
            identities.sent,
            identities.failed,
            identities.pending,
            identities.conflicts,
            identities.groups_sent,
            identities.groups_failed,
            identities.groups_pending
        )?;
        if identities.persons > 0 {
            writeln!(
                f,
                "person updates (each person's values by event time) sent {}, refused {}, pending {}{}",
                identities.persons_sent,
                identities.persons_failed,
                identities.persons_pending,
                if identities.released {
                    ""
                } else {
                    "; not worked out yet (every event must be delivered first)"
                }
            )?;
        }
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
    use crate::counts::Metric;

    #[test]
    fn totals_add_up_across_days_and_reasons() {
        let mut counts = DayCounts::new();
        let mut add = |day: &str, metric: Metric, reason: &str, count: u64| {
            counts.insert((day.to_owned(), metric, reason.to_owned()), count);
        };
        add("2024-07-06", Metric::Rows, "", 10);
        add("2024-07-06", Metric::Mapped, "", 7);
        add("2024-07-06", Metric::Skipped, "session_marker", 2);
        add("unknown", Metric::Rows, "", 1);
        add("unknown", Metric::Rejected, "invalid_json", 1);
        add("2024-07-06", Metric::Rejected, "bad_timestamp", 1);
        add("2024-07-06", Metric::Events, "", 8);
        add("2024-07-06", Metric::Delivered, "", 7);
        add("2024-07-06", Metric::DeadLettered, "", 1);
        let summary = MigrationSummary {
            files: 1,
            files_done: 1,
            ..MigrationSummary::from_counts(&counts)
        };
        assert_eq!(
            (summary.totals.rows, summary.totals.rejected_total()),
            (11, 2)
        );
        assert!(summary.totals.adds_up() && summary.complete());
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
