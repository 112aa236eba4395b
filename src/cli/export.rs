//! `amplitude-posthog export` and `unpack`: getting the data out of Amplitude.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use amplitude_posthog::export::client::{EU_EXPORT_URL, US_EXPORT_URL};
use amplitude_posthog::export::plan::{ExportWindow, parse_hour, plan};
use amplitude_posthog::export::unpack::unpack_zip;
use amplitude_posthog::export::{ExportOptions, ExportProgress, run_export};

#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// First hour to export (UTC, by upload time), YYYY-MM-DDTHH.
    #[arg(long)]
    pub start: String,
    /// Last hour to export, included, YYYY-MM-DDTHH.
    #[arg(long)]
    pub end: String,
    /// The export directory (Vector's `export/`).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// The project is hosted in Amplitude's EU region.
    #[arg(long)]
    pub eu: bool,
    /// Hours per request.
    #[arg(long, default_value = "24h", value_parser = ["1h", "6h", "24h"])]
    pub window: String,
    /// Requests at a time (Amplitude asks for 1–2).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=2))]
    pub concurrency: u8,
    /// Print the plan and exit.
    #[arg(long)]
    pub dry_run: bool,
    /// The Export API endpoint (for tests and proxies); defaults to the region's.
    #[arg(long, hide = true)]
    pub api_url: Option<String>,
    /// Longest wait between retries, in milliseconds.
    #[arg(long, default_value_t = 60_000, hide = true)]
    pub max_backoff_ms: u64,
}

/// A progress bar on a terminal, plain lines otherwise.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    bytes: AtomicU64,
    started: Instant,
}

impl Progress {
    fn new(windows: u64) -> Progress {
        let bar = amplitude_posthog::migrate::progress::terminal_bar(
            windows,
            "{bar:30} {pos}/{len} windows  {msg}  [{elapsed_precise}, ETA {eta}]",
        );
        Progress {
            bar,
            bytes: AtomicU64::new(0),
            started: Instant::now(),
        }
    }

    fn line(&self, text: &str) {
        match &self.bar {
            Some(bar) => bar.println(text),
            None => eprintln!("{text}"),
        }
    }
}

impl ExportProgress for Progress {
    fn window_started(&self, window: &ExportWindow) {
        if self.bar.is_none() {
            eprintln!("downloading {window}");
        }
    }

    fn bytes(&self, count: u64) {
        let total = self.bytes.fetch_add(count, Ordering::Relaxed) + count;
        if let Some(bar) = &self.bar {
            let rate = total as f64 / self.started.elapsed().as_secs_f64().max(0.001) / 1e6;
            bar.set_message(format!("{:.1} MB, {rate:.1} MB/s", total as f64 / 1e6));
        }
    }

    fn window_finished(&self, window: &ExportWindow, outcome: &str) {
        if let Some(bar) = &self.bar {
            bar.inc(1);
        }
        self.line(&format!("{window}: {outcome}"));
    }

    fn message(&self, text: &str) {
        self.line(text);
    }
}

fn key(variable: &str) -> anyhow::Result<String> {
    match std::env::var(variable) {
        Ok(value) if !value.trim().is_empty() => Ok(value.trim().to_owned()),
        _ => bail!(
            "{variable} is not set: export the project's API key and secret key (Amplitude → Settings → Projects)"
        ),
    }
}

pub fn run(args: ExportArgs) -> anyhow::Result<ExitCode> {
    let first = parse_hour(&args.start).map_err(anyhow::Error::msg)?;
    let last = parse_hour(&args.end).map_err(anyhow::Error::msg)?;
    let hours = args
        .window
        .trim_end_matches('h')
        .parse::<i64>()
        .context("window")?;
    let windows = plan(first, last, hours, chrono::Utc::now()).map_err(anyhow::Error::msg)?;
    if args.dry_run {
        for window in &windows {
            println!(
                "{}  start={} end={}",
                window,
                window.query().0,
                window.query().1
            );
        }
        eprintln!(
            "{} window(s); nothing downloaded (--dry-run)",
            windows.len()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let options = ExportOptions {
        windows: windows.clone(),
        out_dir: args.out.clone(),
        concurrency: usize::from(args.concurrency),
        api_url: args.api_url.unwrap_or_else(|| {
            if args.eu {
                EU_EXPORT_URL
            } else {
                US_EXPORT_URL
            }
            .to_owned()
        }),
        api_key: key("AMPLITUDE_API_KEY")?,
        secret_key: key("AMPLITUDE_SECRET_KEY")?,
        initial_backoff: Duration::from_millis(args.max_backoff_ms.min(1_000)),
        max_backoff: Duration::from_millis(args.max_backoff_ms),
        max_attempts: 12,
    };
    let progress = Progress::new(windows.len() as u64);
    let summary = run_export(&options, &progress)?;
    if let Some(bar) = &progress.bar {
        bar.finish_and_clear();
    }
    eprintln!(
        "exported {} window(s) ({} files, {} rows, {:.1} MB); {} empty; {} already done; {} too large; {} failed; {:.1} s",
        summary.downloaded.len(),
        summary.files,
        summary.rows,
        summary.bytes as f64 / 1e6,
        summary.empty.len(),
        summary.already_done.len(),
        summary.too_large.len(),
        summary.failed.len(),
        progress.started.elapsed().as_secs_f64()
    );
    for window in &summary.too_large {
        eprintln!(
            "too large even as one hour: {window} — export it with Amplitude's S3 export (README)"
        );
    }
    for (window, reason) in &summary.failed {
        eprintln!("failed: {window}: {reason} — run the same command again to retry");
    }
    Ok(
        if summary.failed.is_empty() && summary.too_large.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        },
    )
}

#[derive(Debug, clap::Args)]
pub struct UnpackArgs {
    /// A zip downloaded from Amplitude (organisation settings, or an Export API response).
    pub zip: PathBuf,
    /// The export directory (Vector's `export/`).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

pub fn unpack(args: UnpackArgs) -> anyhow::Result<ExitCode> {
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let extraction = unpack_zip(&args.zip, &args.out)?;
    for refused in &extraction.refused {
        eprintln!(
            "refused member {refused:?}: its name would escape {}",
            args.out.display()
        );
    }
    let rows: u64 = extraction.files.iter().map(|file| file.rows).sum();
    eprintln!(
        "unpacked {} file(s), {rows} rows, into {}; ignored {} member(s) that are not .json.gz; refused {}",
        extraction.files.len(),
        args.out.display(),
        extraction.ignored.len(),
        extraction.refused.len()
    );
    Ok(if extraction.refused.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
