//! `amplitude-posthog report`: the reconciliation report of a migration, per day.

use std::path::PathBuf;
use std::process::ExitCode;

use amplitude_posthog::migrate::DEFAULT_STATE_DIR;
use amplitude_posthog::migrate::lock::StateLock;
use amplitude_posthog::report::Report;
use amplitude_posthog::vector;

#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// The migration's state directory (`migrate --state`).
    #[arg(long, value_name = "DIR", default_value = DEFAULT_STATE_DIR)]
    pub state: PathBuf,
    /// Where report.json and report.html go (default: the state directory).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// For a Vector pipeline run by hand: the export it reads (repeat for several); the
    /// report is made from it instead of a migrate state.
    #[arg(long = "export", value_name = "DIR")]
    pub exports: Vec<PathBuf>,
    /// With --export: the identity sidecar's database (aliases sent, conflicts).
    #[arg(long, value_name = "FILE", requires = "exports")]
    pub sidecar_db: Option<PathBuf>,
    /// With --export: Vector's dead-letter directory, checked against the refused rows.
    #[arg(long, value_name = "DIR", requires = "exports")]
    pub dead_letters: Option<PathBuf>,
}

pub fn run(args: ReportArgs) -> anyhow::Result<ExitCode> {
    let out = args.out.as_ref().unwrap_or(&args.state);
    let report = if args.exports.is_empty() {
        let _reading = StateLock::shared(&args.state)?;
        Report::from_state_dir(&args.state)?
    } else {
        let (mut report, _) = vector::report::report(
            &args.exports,
            args.sidecar_db.as_deref(),
            args.dead_letters.as_deref(),
        )?;
        report.state = out.display().to_string();
        report
    };
    let (json, html) = report.write(out)?;
    print!("{}", report.text());
    for problem in &report.files.problems {
        println!("problem: {}: {}", problem.file, problem.problem);
    }
    println!("written: {} and {}", json.display(), html.display());
    Ok(if report.files.problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
