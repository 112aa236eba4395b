//! A seeded, deterministic generator of realistic Amplitude exports.
//!
//! It models what docs/POSTHOG_AND_AMPLITUDE.md describes: web, iOS, Android, HTTP-API and
//! Segment-sourced rows; autocapture; anonymous-then-identified devices, users on several
//! devices, shared devices; groups; `$identify` / `$groupidentify`; session markers; revenue;
//! `EMPTY` attribution values; operator keys; unicode; nested properties; every timestamp
//! variant; type quirks; refused ids; and a configurable share of broken rows. Each row
//! carries the outcome the mapping must give it, so tests can tell an intended reject from a
//! bug. The same seed always gives the same bytes.

mod broken;
mod device_fields;
mod events;
mod layout;
mod population;
mod row;
mod rows;
mod step;
mod text;
mod times;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

pub use layout::{ExportLayout, WrittenFile, write_export};

use crate::outcome::{RejectReason, SkipReason};
use population::{Population, Session};

/// What the mapping is expected to do with a generated row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Intent {
    Map,
    Skip(SkipReason),
    Reject(RejectReason),
}

/// One generated export line.
#[derive(Debug, Clone)]
pub struct GeneratedRow {
    /// The JSON line, without its newline.
    pub line: Vec<u8>,
    /// Amplitude files rows by `server_upload_time` hour.
    pub upload_time: DateTime<Utc>,
    pub intent: Intent,
}

#[derive(Debug, Clone)]
pub struct GeneratorConfig {
    pub rows: u64,
    pub seed: u64,
    /// Share of deliberately broken rows (invalid JSON, no identity, no timestamp, oversized…).
    pub broken_share: f64,
    /// First upload day (UTC).
    pub start: NaiveDate,
    /// Days the rows' upload times spread over.
    pub days: u32,
    /// Amplitude project id (`app`), also the directory and file-name prefix.
    pub project_id: u64,
}

impl Default for GeneratorConfig {
    fn default() -> Self {
        GeneratorConfig {
            rows: 10_000,
            seed: 1,
            broken_share: 0.002,
            start: NaiveDate::from_ymd_opt(2024, 1, 1).expect("valid date"),
            days: 30,
            project_id: 187_520,
        }
    }
}

/// Generates rows in `server_upload_time` order, as Amplitude files them.
pub struct Generator {
    config: GeneratorConfig,
    rng: ChaCha8Rng,
    population: Population,
    sessions: Vec<Session>,
    produced: u64,
    start: DateTime<Utc>,
    span_ms: i64,
}

/// Concurrent sessions the simulation interleaves.
const ACTIVE_SESSIONS: usize = 48;

impl Generator {
    pub fn new(config: GeneratorConfig) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
        let population = Population::new(&mut rng, config.rows);
        let start = config
            .start
            .and_hms_opt(0, 0, 0)
            .expect("midnight")
            .and_utc();
        let span_ms = i64::from(config.days.max(1)) * 86_400_000 - 1;
        let mut generator = Generator {
            config,
            rng,
            population,
            sessions: Vec::with_capacity(ACTIVE_SESSIONS),
            produced: 0,
            start,
            span_ms,
        };
        let now = generator.start;
        for _ in 0..ACTIVE_SESSIONS {
            let session = generator.population.start_session(&mut generator.rng, now);
            generator.sessions.push(session);
        }
        generator
    }

    pub fn config(&self) -> &GeneratorConfig {
        &self.config
    }

    fn upload_time(&mut self) -> DateTime<Utc> {
        // Upload times advance evenly over the configured days, with jitter that never
        // reorders rows across hours more than Amplitude itself would.
        let base =
            (self.span_ms as f64 * self.produced as f64 / self.config.rows.max(1) as f64) as i64;
        self.start + Duration::milliseconds(base)
    }
}

impl Iterator for Generator {
    type Item = GeneratedRow;

    fn next(&mut self) -> Option<GeneratedRow> {
        if self.produced >= self.config.rows {
            return None;
        }
        let upload_time = self.upload_time();
        self.produced += 1;
        let broken = self
            .rng
            .random_bool(self.config.broken_share.clamp(0.0, 1.0));
        let index = self.rng.random_range(0..self.sessions.len());
        let mut generated = rows::next_row(
            &mut self.rng,
            &mut self.population,
            &mut self.sessions[index],
            upload_time,
            self.config.project_id,
        );
        if self.sessions[index].finished() {
            self.sessions[index] = self.population.start_session(&mut self.rng, upload_time);
        }
        if broken {
            generated = broken::break_row(&mut self.rng, generated);
        }
        Some(generated)
    }
}
