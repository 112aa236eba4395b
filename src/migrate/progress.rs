//! Progress a person can read: on a terminal an `indicatif` bar by bytes read (rows/s, events
//! sent, retries, ETA); otherwise a plain line every few seconds.

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// What the pipeline has done so far in this run.
#[derive(Debug, Default)]
pub struct LiveCounts {
    pub bytes_read: AtomicU64,
    pub rows: AtomicU64,
    pub events_sent: AtomicU64,
    pub dead_lettered: AtomicU64,
    /// Events of late rows held for the late pass (this run).
    pub held: AtomicU64,
    /// Shared with the delivery code, which counts every retried request.
    pub retries: Arc<AtomicU64>,
}

/// Reports [`LiveCounts`] until dropped.
pub struct Progress {
    bar: Option<indicatif::ProgressBar>,
    done: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Progress {
    /// Starts reporting against `total_bytes` to read; plain lines every `interval` when
    /// stderr is not a terminal.
    pub fn start(total_bytes: u64, counters: Arc<LiveCounts>, interval: Duration) -> Progress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new(total_bytes);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{bar:30} {bytes}/{total_bytes}  {msg}  [{elapsed_precise}, ETA {eta}]",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            bar
        });
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
                    let line = describe(&counters, started.elapsed());
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
    format!(
        "{rows} rows ({:.0}/s), {} events sent, {} dead-lettered, {} retries",
        rows as f64 / elapsed.as_secs_f64().max(1e-3),
        counters.events_sent.load(Ordering::Relaxed),
        counters.dead_lettered.load(Ordering::Relaxed),
        counters.retries.load(Ordering::Relaxed)
    )
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
