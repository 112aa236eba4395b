//! Progress a person can read: on a terminal an `indicatif` bar by bytes read (rows/s, events
//! sent, retries, ETA); otherwise a plain line every few seconds. Under a rate limit the ETA is
//! at least the events still to send at that rate (the rows read so far tell how many events
//! the rest of the export holds).

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// What the pipeline has done so far in this run.
#[derive(Debug, Default)]
pub struct LiveCounts {
    pub bytes_read: AtomicU64,
    pub rows: AtomicU64,
    /// Events the mapping produced.
    pub events: AtomicU64,
    pub events_sent: AtomicU64,
    pub dead_lettered: AtomicU64,
    /// Events of late rows held for the late pass (this run).
    pub held: AtomicU64,
    /// Shared with the delivery code, which counts every retried request.
    pub retries: Arc<AtomicU64>,
}

/// A bar of `length` drawn with `template`, when stderr is a terminal; `None` otherwise (the
/// caller then prints plain lines).
pub fn terminal_bar(length: u64, template: &str) -> Option<indicatif::ProgressBar> {
    std::io::stderr().is_terminal().then(|| {
        let bar = indicatif::ProgressBar::new(length);
        bar.set_style(
            indicatif::ProgressStyle::with_template(template)
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    })
}

/// Reports [`LiveCounts`] until dropped.
pub struct Progress {
    bar: Option<indicatif::ProgressBar>,
    done: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Progress {
    /// Starts reporting against `total_bytes` to read, sent at `rate` events per second at
    /// most (if limited); plain lines every `interval` when stderr is not a terminal.
    pub fn start(
        total_bytes: u64,
        rate: Option<u32>,
        counters: Arc<LiveCounts>,
        interval: Duration,
    ) -> Progress {
        let bar = terminal_bar(
            total_bytes,
            "{bar:30} {bytes}/{total_bytes}  {msg}  [{elapsed_precise}]",
        );
        let done = Arc::new(AtomicBool::new(false));
        let thread = {
            let (bar, done) = (bar.clone(), done.clone());
            std::thread::spawn(move || {
                let started = Instant::now();
                let tick = if bar.is_some() {
                    Duration::from_millis(200)
                } else {
                    interval
                };
                let mut last = Instant::now();
                while !done.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(50));
                    if last.elapsed() < tick {
                        continue;
                    }
                    last = Instant::now();
                    let mut line = describe(&counters, started.elapsed());
                    if let Some(eta) = eta(&counters, total_bytes, rate, started.elapsed()) {
                        line.push_str(&format!(", ETA {}", indicatif::HumanDuration(eta)));
                    }
                    match &bar {
                        Some(bar) => {
                            bar.set_position(counters.bytes_read.load(Ordering::Relaxed));
                            bar.set_message(line);
                        }
                        None => eprintln!(
                            "{} of {} MB read; {line}",
                            counters.bytes_read.load(Ordering::Relaxed) / 1_000_000,
                            total_bytes / 1_000_000
                        ),
                    }
                }
            })
        };
        Progress {
            bar,
            done,
            thread: Some(thread),
        }
    }

    /// Prints a line above the bar (or as is).
    pub fn println(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.println(line),
            None => eprintln!("{line}"),
        }
    }
}

fn describe(counters: &LiveCounts, elapsed: Duration) -> String {
    let rows = counters.rows.load(Ordering::Relaxed);
    let held = counters.held.load(Ordering::Relaxed);
    format!(
        "{rows} rows ({:.0}/s), {} events sent, {} dead-lettered, {} retries{}",
        rows as f64 / elapsed.as_secs_f64().max(1e-3),
        counters.events_sent.load(Ordering::Relaxed),
        counters.dead_lettered.load(Ordering::Relaxed),
        counters.retries.load(Ordering::Relaxed),
        match held {
            0 => String::new(),
            held => format!(", {held} late held for the end"),
        }
    )
}

/// How long the run still needs: the bytes left at the pace so far, and no less than the
/// events left at `rate` (their number estimated from the events per byte so far).
fn eta(
    counters: &LiveCounts,
    total_bytes: u64,
    rate: Option<u32>,
    elapsed: Duration,
) -> Option<Duration> {
    let read = counters.bytes_read.load(Ordering::Relaxed);
    if read == 0 || total_bytes == 0 {
        return None;
    }
    let done = (read as f64 / total_bytes as f64).min(1.0);
    let by_bytes = elapsed.as_secs_f64() * (1.0 - done) / done;
    let by_rate = rate.map_or(0.0, |rate| {
        let expected = counters.events.load(Ordering::Relaxed) as f64 / done;
        let sent = (counters.events_sent.load(Ordering::Relaxed)
            + counters.dead_lettered.load(Ordering::Relaxed)) as f64;
        (expected - sent).max(0.0) / f64::from(rate.max(1))
    });
    Some(Duration::from_secs_f64(by_bytes.max(by_rate)))
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.done.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn under_a_rate_the_eta_counts_the_events_still_to_send() {
        let counters = LiveCounts::default();
        counters.bytes_read.store(250, Ordering::Relaxed);
        counters.events.store(1_000, Ordering::Relaxed);
        counters.events_sent.store(500, Ordering::Relaxed);
        let elapsed = Duration::from_secs(10);
        // A quarter read in 10 s: 30 s more by bytes; 4 000 events, 3 500 to send at 100/s.
        assert_eq!(
            eta(&counters, 1_000, None, elapsed),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            eta(&counters, 1_000, Some(100), elapsed),
            Some(Duration::from_secs(35))
        );
        assert_eq!(eta(&LiveCounts::default(), 1_000, Some(100), elapsed), None);
    }
}
