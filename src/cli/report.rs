//! `amplitude-posthog report`: the reconciliation report of a migration, per day.

use std::path::PathBuf;
use std::process::ExitCode;

use amplitude_posthog::migrate::DEFAULT_STATE_DIR;
use amplitude_posthog::report::Report;

#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// The migration's state directory (`migrate --state`).
    #[arg(long, value_name = "DIR", default_value = DEFAULT_STATE_DIR)]
    pub state: PathBuf,
    /// Where report.json and report.html go (default: the state directory).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

pub fn run(args: ReportArgs) -> anyhow::Result<ExitCode> {
    let report = Report::from_state_dir(&args.state)?;
    let (json, html) = report.write(args.out.as_ref().unwrap_or(&args.state))?;
    print!("{}", report.text());
    println!("written: {} and {}", json.display(), html.display());
    Ok(ExitCode::SUCCESS)
}
