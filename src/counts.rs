//! The one vocabulary of counts, shared by `map`, `migrate`, the state, the report and the
//! Vector pipeline's report: what happened to rows and events ([`Metric`]), keyed by the UTC
//! day of the event ([`DayCounts`]), and added up for a day or a whole run ([`Tally`]).
//!
//! Every row ends mapped, skipped or rejected; every event produced ends delivered or
//! dead-lettered. [`Tally::adds_up`] says whether the counts say so.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::outcome::MappingOutcome;

/// What a count counts. Its name ([`Metric::as_str`]) is how the state stores it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Metric {
    /// Rows read (each once, whatever became of it).
    Rows,
    /// Rows mapped to one or more events.
    Mapped,
    /// Rows skipped, by reason.
    Skipped,
    /// Rows refused by the mapping, by reason (in the dead letters).
    Rejected,
    /// Events the mapping produced.
    Events,
    /// Events PostHog accepted.
    Delivered,
    /// Events PostHog refused for good (in the dead letters with its answer).
    DeadLettered,
    /// Events of rows uploaded late, held in the state for the late pass (see
    /// `migrate::pipeline::days`); none once a migration is complete.
    Held,
}

impl Metric {
    pub const ALL: [Metric; 8] = [
        Metric::Rows,
        Metric::Mapped,
        Metric::Skipped,
        Metric::Rejected,
        Metric::Events,
        Metric::Delivered,
        Metric::DeadLettered,
        Metric::Held,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Metric::Rows => "rows",
            Metric::Mapped => "mapped",
            Metric::Skipped => "skipped",
            Metric::Rejected => "rejected",
            Metric::Events => "events",
            Metric::Delivered => "delivered",
            Metric::DeadLettered => "dead_lettered",
            Metric::Held => "held",
        }
    }

    /// The metric a stored name stands for.
    pub fn parse(name: &str) -> Option<Metric> {
        Metric::ALL
            .into_iter()
            .find(|metric| metric.as_str() == name)
    }
}

/// (UTC day of the event, metric, reason) → count. The reason is empty for metrics that have
/// none; the day is [`UNKNOWN_DAY`] for rows refused before a time was read.
pub type DayCounts = BTreeMap<(String, Metric, String), u64>;

/// The day of rows whose time is unknown (they were refused before a time was read).
pub const UNKNOWN_DAY: &str = "unknown";

/// Counts of one day, or of a whole run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tally {
    /// Rows of the export (each once).
    pub rows: u64,
    pub mapped: u64,
    /// Skipped rows by reason.
    pub skipped: BTreeMap<String, u64>,
    /// Rows the mapping refused, by reason (they are in the dead letters).
    pub rejected: BTreeMap<String, u64>,
    /// Events the mapping produced.
    pub events: u64,
    /// Events PostHog accepted.
    pub delivered: u64,
    /// Events PostHog refused for good (in the dead letters with its answer).
    pub dead_lettered: u64,
    /// Events of late rows held for the late pass, not sent yet.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub held: u64,
    /// `$create_alias` events sent for (device → user) pairs first seen that day.
    pub aliases_sent: u64,
    /// Later users of an already linked device, first seen that day (never sent).
    pub alias_conflicts: u64,
}

impl Tally {
    /// Adds `count` to `metric` for `reason`.
    pub fn add(&mut self, metric: Metric, reason: &str, count: u64) {
        match metric {
            Metric::Rows => self.rows += count,
            Metric::Mapped => self.mapped += count,
            Metric::Events => self.events += count,
            Metric::Delivered => self.delivered += count,
            Metric::DeadLettered => self.dead_lettered += count,
            Metric::Held => self.held += count,
            Metric::Skipped => *self.skipped.entry(reason.to_owned()).or_default() += count,
            Metric::Rejected => *self.rejected.entry(reason.to_owned()).or_default() += count,
        }
    }

    /// Counts one row by its outcome: a row, and mapped (with its events), skipped or rejected.
    pub fn record(&mut self, outcome: &MappingOutcome) {
        for (metric, reason, count) in outcome_counts(outcome) {
            self.add(metric, reason, count);
        }
    }

    /// The totals of per-day counts.
    pub fn of(counts: &DayCounts) -> Tally {
        let mut totals = Tally::default();
        for ((_, metric, reason), count) in counts {
            totals.add(*metric, reason, *count);
        }
        totals
    }

    /// Per-day counts, one [`Tally`] a day, in day order.
    pub fn by_day(counts: &DayCounts) -> BTreeMap<String, Tally> {
        let mut days: BTreeMap<String, Tally> = BTreeMap::new();
        for ((day, metric, reason), count) in counts {
            days.entry(day.clone())
                .or_default()
                .add(*metric, reason, *count);
        }
        days
    }

    /// Adds another tally (another day's) to this one.
    pub fn absorb(&mut self, other: &Tally) {
        self.rows += other.rows;
        self.mapped += other.mapped;
        self.events += other.events;
        self.delivered += other.delivered;
        self.dead_lettered += other.dead_lettered;
        self.held += other.held;
        self.aliases_sent += other.aliases_sent;
        self.alias_conflicts += other.alias_conflicts;
        for (reason, count) in &other.skipped {
            *self.skipped.entry(reason.clone()).or_default() += count;
        }
        for (reason, count) in &other.rejected {
            *self.rejected.entry(reason.clone()).or_default() += count;
        }
    }

    pub fn skipped_total(&self) -> u64 {
        self.skipped.values().sum()
    }

    pub fn rejected_total(&self) -> u64 {
        self.rejected.values().sum()
    }

    /// rows = mapped + skipped + rejected.
    pub fn rows_add_up(&self) -> bool {
        self.rows == self.mapped + self.skipped_total() + self.rejected_total()
    }

    /// rows = mapped + skipped + rejected, and events = delivered + dead-lettered: none still
    /// held for the late pass (while a migration is under way, events = delivered +
    /// dead-lettered + held, and it does not add up yet).
    pub fn adds_up(&self) -> bool {
        self.rows_add_up() && self.held == 0 && self.events == self.delivered + self.dead_lettered
    }
}

fn is_zero(count: &u64) -> bool {
    *count == 0
}

/// Adds one row to per-day counts: its outcome's counts on its day (`None`: [`UNKNOWN_DAY`]).
pub fn count_row(counts: &mut DayCounts, day: Option<&str>, outcome: &MappingOutcome) {
    let day = day.unwrap_or(UNKNOWN_DAY);
    for (metric, reason, value) in outcome_counts(outcome) {
        *counts
            .entry((day.to_owned(), metric, reason.to_owned()))
            .or_default() += value;
    }
}

/// What one row counts for, by its outcome: `(metric, reason, count)`.
pub fn outcome_counts(outcome: &MappingOutcome) -> Vec<(Metric, &str, u64)> {
    match outcome {
        MappingOutcome::Events(events) => vec![
            (Metric::Rows, "", 1),
            (Metric::Mapped, "", 1),
            (Metric::Events, "", events.len() as u64),
        ],
        MappingOutcome::Skipped(reason) => {
            vec![(Metric::Rows, "", 1), (Metric::Skipped, reason.as_str(), 1)]
        }
        MappingOutcome::Rejected(reason) => {
            vec![
                (Metric::Rows, "", 1),
                (Metric::Rejected, reason.as_str(), 1),
            ]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_metric_keeps_its_stored_name() {
        for metric in Metric::ALL {
            assert_eq!(Metric::parse(metric.as_str()), Some(metric));
        }
        assert_eq!(Metric::DeadLettered.as_str(), "dead_lettered");
        assert_eq!(Metric::parse("aliases"), None);
    }

    #[test]
    fn days_and_totals_add_up() {
        let mut counts = DayCounts::new();
        let mut add = |day: &str, metric: Metric, reason: &str, count: u64| {
            counts.insert((day.to_owned(), metric, reason.to_owned()), count);
        };
        add("2024-07-06", Metric::Rows, "", 10);
        add("2024-07-06", Metric::Mapped, "", 7);
        add("2024-07-06", Metric::Skipped, "session_marker", 2);
        add("2024-07-06", Metric::Rejected, "bad_timestamp", 1);
        add("2024-07-06", Metric::Events, "", 8);
        add("2024-07-06", Metric::Delivered, "", 7);
        add("2024-07-06", Metric::DeadLettered, "", 1);
        add(UNKNOWN_DAY, Metric::Rows, "", 1);
        add(UNKNOWN_DAY, Metric::Rejected, "invalid_json", 1);
        let totals = Tally::of(&counts);
        assert_eq!((totals.rows, totals.rejected_total()), (11, 2));
        assert!(totals.adds_up());
        let days = Tally::by_day(&counts);
        assert_eq!(days.len(), 2);
        assert!(days.values().all(Tally::adds_up));
        let mut again = Tally::default();
        days.values().for_each(|day| again.absorb(day));
        assert_eq!(again, totals);
    }
}
