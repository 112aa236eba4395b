//! One UTC day per request, days in order: what PostHog's migration guide asks ("Best practices
//! for migrations": events in timestamp order, one day per batch).
//!
//! An export is ordered by *upload* time, so most rows arrive day after day, but a row
//! uploaded late (an offline client) belongs to an older day. The main pass follows a
//! [`Front`]: the newest event day seen so far. A row of that day or the day before goes into
//! the open batch of its day ([`DayBatches`], a few days open at most); a row older than that
//! is *late*: it is held in the state and sent after the main pass, day by day, oldest first
//! (the late pass), so it never drags an old day into a current request nor goes in between.
//! The requests of the main pass therefore never go back more than one day.
//!
//! A row's events always travel in one request (a batch is sent before a row that does not fit
//! in it), so a held row is done with the one delivery that carried it.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{Days, NaiveDate};

use super::{Batch, EventOrigin};

/// Open day batches at most (the front's day and the day before; a few more while the front
/// jumps).
const OPEN_DAYS: usize = 4;

/// Chunks an open batch may wait for more rows of its day: a file's watermark cannot pass a
/// chunk whose events wait in an open batch, and what lies past the watermark is sent again
/// after a crash, so an open batch goes once this many chunks came after its first row.
const STALE_AFTER_CHUNKS: u64 = 2;

/// The main pass's front: the newest event day seen so far — not later than the day after
/// `today`, so that one row with a clock far in the future (year 2099) cannot make the rest
/// of the export "late".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Front {
    newest: Option<NaiveDate>,
    /// The newest day the front may reach.
    limit: NaiveDate,
}

/// Where a row of some day goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Place {
    /// Into the open batch of its day, now.
    Now,
    /// Held for the late pass: more than a day older than the front.
    Late,
}

impl Front {
    /// The front a migration left in its state (`YYYY-MM-DD`), or none, on `today`.
    pub(super) fn resume(day: Option<&str>, today: NaiveDate) -> Front {
        let limit = today.checked_add_days(Days::new(1)).unwrap_or(today);
        Front {
            newest: day.and_then(parse_day).map(|day| day.min(limit)),
            limit,
        }
    }

    /// Places a row of `day` (a UTC date; anything else is never late), moving the front
    /// forward when the row is newer.
    pub(super) fn place(&mut self, day: &str) -> Place {
        let Some(date) = parse_day(day) else {
            return Place::Now;
        };
        match self.newest {
            Some(newest) if date < yesterday(newest) => Place::Late,
            Some(newest) if date <= newest => Place::Now,
            // A day in the future goes now, and the front stays where it is.
            _ if date > self.limit => Place::Now,
            _ => {
                self.newest = Some(date);
                Place::Now
            }
        }
    }

    /// The oldest day still current (`YYYY-MM-DD`): open batches of older days are closed.
    pub(super) fn oldest_current(&self) -> Option<String> {
        self.newest.map(|newest| yesterday(newest).to_string())
    }

    /// The newest day seen, as the state keeps it.
    pub(super) fn newest(&self) -> Option<String> {
        self.newest.map(|day| day.to_string())
    }
}

fn parse_day(day: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(day, "%Y-%m-%d").ok()
}

fn yesterday(day: NaiveDate) -> NaiveDate {
    day.checked_sub_days(Days::new(1)).unwrap_or(day)
}

/// The bytes a row's events take in a request body (each and its separator).
pub(super) fn row_bytes<'a>(events: impl Iterator<Item = &'a String>) -> usize {
    events.map(|event| event.len() + 1).sum()
}

/// How large a request may grow.
#[derive(Debug, Clone, Copy)]
pub(super) struct Limits {
    pub(super) events: usize,
    pub(super) bytes: usize,
}

impl Limits {
    /// Whether a row of `events` events and `bytes` bytes must wait for another request than
    /// a batch holding `(had_events, had_bytes)`: the one rule of when a request is full, for
    /// the batches sent and the dry run's count alike.
    fn overflows(
        &self,
        (had_events, had_bytes): (usize, usize),
        events: usize,
        bytes: usize,
    ) -> bool {
        had_events > 0 && (had_events + events > self.events || had_bytes + bytes > self.bytes)
    }
}

/// The open batches of the main pass, one per day, each with the chunk of its first row.
pub(super) struct DayBatches {
    open: BTreeMap<Arc<str>, (u64, Batch)>,
    limits: Limits,
}

impl DayBatches {
    pub(super) fn new(limits: Limits) -> DayBatches {
        DayBatches {
            open: BTreeMap::new(),
            limits,
        }
    }

    /// Adds one row's events (all of `day`), from the assembler's `chunk`-th chunk, to its
    /// day's batch; the batches that are ready to go are pushed onto `ready`, in the order
    /// they must go.
    pub(super) fn add_row(
        &mut self,
        day: &Arc<str>,
        chunk: u64,
        events: Vec<(String, EventOrigin)>,
        ready: &mut Vec<Batch>,
    ) {
        if events.is_empty() {
            return;
        }
        let bytes = row_bytes(events.iter().map(|(event, _)| event));
        if let Some((_, batch)) = self.open.get(day)
            && self.limits.overflows(batch.fill(), events.len(), bytes)
        {
            ready.push(self.open.remove(day).expect("open").1);
        }
        if !self.open.contains_key(day) && self.open.len() >= OPEN_DAYS {
            // The oldest open day goes first: the main pass moves forward.
            ready.push(self.open.pop_first().expect("open days").1.1);
        }
        let (_, batch) = self
            .open
            .entry(day.clone())
            .or_insert_with(|| (chunk, Batch::empty()));
        batch.push_row(events, bytes);
    }

    /// Sends the batches of days before `day` (no row of them will come in the main pass).
    pub(super) fn close_before(&mut self, day: &str, ready: &mut Vec<Batch>) {
        while let Some(entry) = self.open.first_entry() {
            if &**entry.key() >= day {
                break;
            }
            ready.push(entry.remove().1);
        }
    }

    /// Sends the batches that have waited [`STALE_AFTER_CHUNKS`] chunks by the `chunk`-th,
    /// oldest day first.
    pub(super) fn close_stale(&mut self, chunk: u64, ready: &mut Vec<Batch>) {
        let stale: Vec<Arc<str>> = self
            .open
            .iter()
            .filter(|(_, (first, _))| first + STALE_AFTER_CHUNKS <= chunk)
            .map(|(day, _)| day.clone())
            .collect();
        for day in stale {
            ready.push(self.open.remove(&day).expect("open").1);
        }
    }

    /// Every open batch, oldest day first.
    pub(super) fn close_all(&mut self, ready: &mut Vec<Batch>) {
        while let Some((_, (_, batch))) = self.open.pop_first() {
            ready.push(batch);
        }
    }
}

/// The batches of the late pass: rows come day by day, oldest first; one day per request.
pub(super) struct LateBatches {
    batch: Batch,
    limits: Limits,
}

impl LateBatches {
    pub(super) fn new(limits: Limits) -> LateBatches {
        LateBatches {
            batch: Batch::empty(),
            limits,
        }
    }

    /// Adds one held row's events; a batch that is ready goes onto `ready`.
    pub(super) fn add_row(
        &mut self,
        day: &Arc<str>,
        events: Vec<(String, EventOrigin)>,
        ready: &mut Vec<Batch>,
    ) {
        let bytes = row_bytes(events.iter().map(|(event, _)| event));
        let other_day = self
            .batch
            .origins
            .first()
            .is_some_and(|open| open.day != *day);
        if other_day
            || self
                .limits
                .overflows(self.batch.fill(), events.len(), bytes)
        {
            self.close(ready);
        }
        self.batch.push_row(events, bytes);
    }

    /// The batch being filled, if any.
    pub(super) fn close(&mut self, ready: &mut Vec<Batch>) {
        if !self.batch.origins.is_empty() {
            ready.push(std::mem::replace(&mut self.batch, Batch::empty()));
        }
    }
}

/// The requests a dry run would make for the rows it would hold: one open batch per day
/// (sizes only), as [`LateBatches`] would send them.
#[derive(Default)]
pub(super) struct LateCount {
    /// day → (events, bytes) of the batch being filled.
    open: BTreeMap<String, (usize, usize)>,
    batches: u64,
}

impl LateCount {
    pub(super) fn add_row(&mut self, day: &str, events: usize, bytes: usize, limits: Limits) {
        let open = self.open.entry(day.to_owned()).or_default();
        if limits.overflows(*open, events, bytes) {
            self.batches += 1;
            *open = (0, 0);
        }
        open.0 += events;
        open.1 += bytes;
    }

    /// Every request, the last one of each day included.
    pub(super) fn total(&self) -> u64 {
        self.batches + self.open.values().filter(|open| open.0 > 0).count() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::migrate::pipeline::Source;

    fn row(day: &str, line: u64, events: usize) -> (Arc<str>, Vec<(String, EventOrigin)>) {
        let day: Arc<str> = day.into();
        let events = EventOrigin {
            source: Source::Chunk { file: 1, chunk: 0 },
            line,
            day: day.clone(),
            name: "f".into(),
            row: Arc::new(Vec::new()),
        }
        .tag(
            (0..events)
                .map(|index| format!("{{\"e\":{line}{index}}}"))
                .collect(),
        );
        (day, events)
    }

    fn days(batches: &[Batch]) -> Vec<String> {
        batches
            .iter()
            .map(|batch| {
                let days: std::collections::BTreeSet<&str> =
                    batch.origins.iter().map(|origin| &*origin.day).collect();
                assert_eq!(days.len(), 1, "one day per request");
                days.into_iter().next().unwrap().to_owned()
            })
            .collect()
    }

    #[test]
    fn a_row_more_than_a_day_older_than_the_front_is_late() {
        let today = NaiveDate::from_ymd_opt(2026, 12, 6).unwrap();
        let mut front = Front::resume(None, today);
        assert_eq!(front.place("2024-01-10"), Place::Now);
        assert_eq!(front.place("2024-01-09"), Place::Now);
        assert_eq!(front.place("2024-01-08"), Place::Late);
        assert_eq!(front.place("2024-01-12"), Place::Now);
        assert_eq!(front.place("2024-01-10"), Place::Late);
        assert_eq!(front.place("unknown"), Place::Now);
        assert_eq!(front.oldest_current().as_deref(), Some("2024-01-11"));
        assert_eq!(
            Front::resume(front.newest().as_deref(), today).place("2024-01-10"),
            Place::Late
        );
        // Month and year boundaries are days like any other.
        let mut front = Front::resume(Some("2024-03-01"), today);
        assert_eq!(front.place("2024-02-29"), Place::Now);
        assert_eq!(front.place("2024-02-28"), Place::Late);
        // A clock far in the future neither waits nor moves the front.
        assert_eq!(front.place("2099-01-01"), Place::Now);
        assert_eq!(front.place("2024-03-01"), Place::Now);
        assert_eq!(front.newest().as_deref(), Some("2024-03-01"));
    }

    #[test]
    fn each_request_holds_one_day_and_a_row_is_never_split() {
        let limits = Limits {
            events: 3,
            bytes: 1 << 20,
        };
        let mut open = DayBatches::new(limits);
        let mut ready = Vec::new();
        for (day, line, events) in [
            ("2024-01-01", 1, 2),
            ("2024-01-02", 2, 1),
            ("2024-01-01", 3, 2),
            ("2024-01-02", 4, 1),
            ("2024-01-02", 5, 1),
            ("2024-01-02", 6, 1),
        ] {
            let (day, events) = row(day, line, events);
            open.add_row(&day, 0, events, &mut ready);
        }
        // Day 1's first batch (2 events) could not take the second row of 2 events.
        assert_eq!(days(&ready), ["2024-01-01", "2024-01-02"]);
        assert_eq!(ready[0].origins.len(), 2);
        assert_eq!(ready[1].origins.len(), 3);
        open.close_before("2024-01-02", &mut ready);
        assert_eq!(days(&ready).len(), 3);
        open.close_all(&mut ready);
        assert_eq!(
            days(&ready),
            ["2024-01-01", "2024-01-02", "2024-01-01", "2024-01-02"]
        );
        let events: usize = ready.iter().map(|batch| batch.events.len()).sum();
        assert_eq!(events, 8);
    }

    #[test]
    fn at_most_a_few_days_are_open_and_the_oldest_goes_first() {
        let limits = Limits {
            events: 100,
            bytes: 1 << 20,
        };
        let mut open = DayBatches::new(limits);
        let mut ready = Vec::new();
        for day in 1..=OPEN_DAYS + 2 {
            let (day, events) = row(&format!("2024-01-{day:02}"), day as u64, 1);
            open.add_row(&day, 0, events, &mut ready);
        }
        assert_eq!(days(&ready), ["2024-01-01", "2024-01-02"]);
    }

    #[test]
    fn an_open_batch_waits_two_chunks_at_most() {
        let limits = Limits {
            events: 100,
            bytes: 1 << 20,
        };
        let mut open = DayBatches::new(limits);
        let mut ready = Vec::new();
        for (day, chunk) in [("2024-01-01", 0), ("2024-01-02", 1), ("2024-01-02", 2)] {
            let (day, events) = row(day, chunk, 1);
            open.add_row(&day, chunk, events, &mut ready);
            open.close_stale(chunk, &mut ready);
        }
        assert_eq!(days(&ready), ["2024-01-01"]);
        open.close_stale(3, &mut ready);
        assert_eq!(days(&ready), ["2024-01-01", "2024-01-02"]);
    }

    #[test]
    fn the_late_pass_sends_one_day_per_request_in_the_order_given() {
        let limits = Limits {
            events: 2,
            bytes: 1 << 20,
        };
        let mut late = LateBatches::new(limits);
        let mut count = LateCount::default();
        let mut ready = Vec::new();
        for (day, line) in [
            ("2024-01-01", 1),
            ("2024-01-01", 2),
            ("2024-01-01", 3),
            ("2024-01-03", 4),
        ] {
            let (day, events) = row(day, line, 1);
            count.add_row(&day, 1, events[0].0.len() + 1, limits);
            late.add_row(&day, events, &mut ready);
        }
        late.close(&mut ready);
        assert_eq!(days(&ready), ["2024-01-01", "2024-01-01", "2024-01-03"]);
        assert_eq!(count.total(), 3);
    }
}
