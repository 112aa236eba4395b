//! Counts of what a mapping run did with its rows: every row ends mapped, skipped or rejected.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use crate::outcome::MappingOutcome;

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct MapSummary {
    pub rows: u64,
    pub mapped_rows: u64,
    pub events: u64,
    pub skipped: BTreeMap<String, u64>,
    pub rejected: BTreeMap<String, u64>,
    pub input_bytes: u64,
    pub failed_inputs: Vec<String>,
}

impl MapSummary {
    pub fn record(&mut self, line_len: usize, outcome: &MappingOutcome) {
        self.rows += 1;
        self.input_bytes += line_len as u64 + 1;
        match outcome {
            MappingOutcome::Events(events) => {
                self.mapped_rows += 1;
                self.events += events.len() as u64;
            }
            MappingOutcome::Skipped(reason) => {
                *self.skipped.entry(reason.as_str().to_owned()).or_default() += 1
            }
            MappingOutcome::Rejected(reason) => {
                *self.rejected.entry(reason.as_str().to_owned()).or_default() += 1
            }
        }
    }

    pub fn skipped_total(&self) -> u64 {
        self.skipped.values().sum()
    }

    pub fn rejected_total(&self) -> u64 {
        self.rejected.values().sum()
    }

    pub fn report(&self, elapsed: Duration) -> SummaryReport<'_> {
        SummaryReport {
            summary: self,
            elapsed,
        }
    }
}

/// The human-readable summary printed to stderr at the end of a run.
pub struct SummaryReport<'a> {
    summary: &'a MapSummary,
    elapsed: Duration,
}

impl fmt::Display for SummaryReport<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.summary;
        let seconds = self.elapsed.as_secs_f64().max(1e-9);
        writeln!(
            f,
            "rows {} = mapped {} + skipped {} + rejected {}; events {}",
            s.rows,
            s.mapped_rows,
            s.skipped_total(),
            s.rejected_total(),
            s.events
        )?;
        for (reason, count) in &s.skipped {
            writeln!(f, "  skipped  {reason}: {count}")?;
        }
        for (reason, count) in &s.rejected {
            writeln!(f, "  rejected {reason}: {count}")?;
        }
        for input in &s.failed_inputs {
            writeln!(f, "  failed input: {input}")?;
        }
        write!(
            f,
            "{:.2} s, {:.0} rows/s, {:.1} MB/s",
            seconds,
            s.rows as f64 / seconds,
            s.input_bytes as f64 / seconds / 1e6
        )
    }
}
