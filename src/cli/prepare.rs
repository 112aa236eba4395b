//! `amplitude-posthog prepare`: check export files before Vector reads them, add the newline a
//! last line lacks, and set aside the rows too long for Vector as dead letters.

use std::path::PathBuf;
use std::process::ExitCode;

use amplitude_posthog::input::MAX_LINE_BYTES;
use amplitude_posthog::vector::prepare::{Prepared, prepare};

#[derive(Debug, clap::Args)]
pub struct PrepareArgs {
    /// The export directories Vector reads (default: export).
    #[arg(value_name = "DIR")]
    pub dirs: Vec<PathBuf>,
    /// Where Vector's dead letters go (`sinks.dead_letters` in vector.toml): rows too long for
    /// Vector are written there, in `prepare.jsonl`.
    #[arg(long, value_name = "DIR", default_value = "dead-letters")]
    pub dead_letters: PathBuf,
    /// Report without changing or writing any file.
    #[arg(long)]
    pub dry_run: bool,
}

pub fn run(args: PrepareArgs) -> anyhow::Result<ExitCode> {
    let dirs = if args.dirs.is_empty() {
        vec![PathBuf::from("export")]
    } else {
        args.dirs
    };
    let report = prepare(&dirs, args.dry_run, &args.dead_letters)?;
    let would = |done: &'static str, to_do: &'static str| if report.dry_run { to_do } else { done };
    for file in &report.files {
        if let Some(facts) = file.facts()
            && facts.too_long > 0
        {
            eprintln!(
                "{} {} row(s) of {}: longer than the {MAX_LINE_BYTES} bytes Vector reads, which it discards without a trace (event_too_large)",
                would("set aside", "would set aside"),
                facts.too_long,
                file.path().display()
            );
        }
        match file {
            Prepared::Ready { .. } => {}
            Prepared::NewlineAdded { path, facts } => eprintln!(
                "{} {}: its last line (row {}) had no newline, which Vector never reads",
                would("added a newline to", "would add a newline to"),
                path.display(),
                facts.rows
            ),
            Prepared::Unreadable { path, error } => {
                eprintln!("cannot read {}: {error}", path.display())
            }
        }
    }
    eprintln!(
        "{} export file(s), {} row(s); {} newline(s) {}; {} row(s) too long for Vector {}; {} unreadable",
        report.files.len(),
        report.rows(),
        report.newlines_added(),
        would("added", "to add"),
        report.set_aside(),
        if report.set_aside() > 0 && !report.dry_run {
            format!(
                "set aside (dead letters: {})",
                report.dead_letters.display()
            )
        } else {
            would("set aside", "to set aside").to_owned()
        },
        report.unreadable()
    );
    if report.unreadable() > 0 {
        eprintln!(
            "fix or replace the unreadable file(s) before starting Vector: it stops reading a file at the damage"
        );
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}
