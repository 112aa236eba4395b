//! Counts of what a mapping run did with its rows: every row ends mapped, skipped or rejected.

use std::fmt;
use std::time::Duration;

use crate::counts::Tally;
use crate::outcome::MappingOutcome;

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct MapSummary {
    /// Rows by outcome, and events (nothing is delivered by `map`).
    pub totals: Tally,
    pub input_bytes: u64,
    pub failed_inputs: Vec<String>,
}

impl MapSummary {
    pub fn record(&mut self, line_len: usize, outcome: &MappingOutcome) {
        self.totals.record(outcome);
        self.input_bytes += line_len as u64 + 1;
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
        let totals = &s.totals;
        let seconds = self.elapsed.as_secs_f64().max(1e-9);
        writeln!(
            f,
            "rows {} = mapped {} + skipped {} + rejected {}; events {}",
            totals.rows,
            totals.mapped,
            totals.skipped_total(),
            totals.rejected_total(),
            totals.events
        )?;
        for (reason, count) in &totals.skipped {
            writeln!(f, "  skipped  {reason}: {count}")?;
        }
        for (reason, count) in &totals.rejected {
            writeln!(f, "  rejected {reason}: {count}")?;
        }
        for input in &s.failed_inputs {
            writeln!(f, "  failed input: {input}")?;
        }
        write!(
            f,
            "{:.2} s, {:.0} rows/s, {:.1} MB/s",
            seconds,
            totals.rows as f64 / seconds,
            s.input_bytes as f64 / seconds / 1e6
        )
    }
}
