//! `amplitude-posthog prepare`: check export files before Vector reads them, and add the
//! newline a last line lacks.

use std::path::PathBuf;
use std::process::ExitCode;

use amplitude_posthog::vector::prepare::{Prepared, prepare};

#[derive(Debug, clap::Args)]
pub struct PrepareArgs {
    /// The export directories Vector reads (default: export).
    #[arg(value_name = "DIR")]
    pub dirs: Vec<PathBuf>,
    /// Report without changing any file.
    #[arg(long)]
    pub dry_run: bool,
}

pub fn run(args: PrepareArgs) -> anyhow::Result<ExitCode> {
    let dirs = if args.dirs.is_empty() {
        vec![PathBuf::from("export")]
    } else {
        args.dirs
    };
    let report = prepare(&dirs, args.dry_run)?;
    for file in &report.files {
        match file {
            Prepared::Ready { .. } => {}
            Prepared::NewlineAdded { path, facts } => eprintln!(
                "{} {}: its last line (row {}) had no newline, which Vector never reads",
                if report.dry_run {
                    "would add a newline to"
                } else {
                    "added a newline to"
                },
                path.display(),
                facts.rows
            ),
            Prepared::Unreadable { path, error } => {
                eprintln!("cannot read {}: {error}", path.display())
            }
        }
    }
    eprintln!(
        "{} export file(s), {} row(s); {} newline(s) {}; {} unreadable",
        report.files.len(),
        report.rows(),
        report.newlines_added(),
        if report.dry_run { "to add" } else { "added" },
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
