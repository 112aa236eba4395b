//! `amplitude-posthog generate`: a realistic export for tests, demos and benchmarks.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, bail};
use chrono::NaiveDate;

use amplitude_posthog::generator::{ExportLayout, Generator, GeneratorConfig, write_export};

#[derive(Debug, clap::Args)]
pub struct GenerateArgs {
    /// Number of rows.
    #[arg(long, default_value_t = 10_000)]
    pub rows: u64,
    /// Seed: the same seed always gives the same bytes.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Directory receiving `<project>/<project>_<date>_<H>#<N>.json.gz` files.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Also (or only) write an Export API style zip.
    #[arg(long, value_name = "FILE")]
    pub zip: Option<PathBuf>,
    /// Share of deliberately broken rows (0 to 1).
    #[arg(long, default_value_t = 0.002)]
    pub broken_share: f64,
    /// First upload day (UTC), YYYY-MM-DD.
    #[arg(long, default_value = "2024-01-01")]
    pub start: NaiveDate,
    /// Days the upload times spread over.
    #[arg(long, default_value_t = 30)]
    pub days: u32,
    /// Amplitude project id.
    #[arg(long, default_value_t = 187_520)]
    pub project: u64,
}

pub fn run(args: GenerateArgs) -> anyhow::Result<ExitCode> {
    if args.out.is_none() && args.zip.is_none() {
        bail!("nothing to write: give --out DIR, --zip FILE or both");
    }
    if !(0.0..=1.0).contains(&args.broken_share) {
        bail!(
            "--broken-share must be between 0 and 1, got {}",
            args.broken_share
        );
    }
    let config = GeneratorConfig {
        rows: args.rows,
        seed: args.seed,
        broken_share: args.broken_share,
        start: args.start,
        days: args.days.max(1),
        project_id: args.project,
    };
    let layout = ExportLayout {
        out_dir: args.out.clone(),
        zip: args.zip.clone(),
        project_id: args.project,
        seed: args.seed,
    };
    let started = Instant::now();
    let files = write_export(&layout, Generator::new(config)).context("cannot write the export")?;
    let bytes: u64 = files.iter().map(|file| file.bytes).sum();
    eprintln!(
        "generated {} rows in {} files ({:.1} MB gzip) in {:.2} s",
        args.rows,
        files.len(),
        bytes as f64 / 1e6,
        started.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}
