//! `amplitude-posthog verify`: compare the migration's delivered events, day by day, with
//! what PostHog's query API counts.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};

use amplitude_posthog::migrate::DEFAULT_STATE_DIR;
use amplitude_posthog::migrate::lock::StateLock;
use amplitude_posthog::report::Report;
use amplitude_posthog::verify::{QueryApi, VERIFY_FILE, verify};

#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// The migration's state directory (`migrate --state`).
    #[arg(long, value_name = "DIR", default_value = DEFAULT_STATE_DIR)]
    pub state: PathBuf,
    /// PostHog's app host: https://us.posthog.com, https://eu.posthog.com, or yours (not the
    /// `i.posthog.com` capture host).
    #[arg(long, value_name = "URL")]
    pub posthog_app_host: String,
    /// The PostHog project's numeric id (Project settings).
    #[arg(long)]
    pub project_id: u64,
    /// A file holding a personal API key with the query:read scope (else the
    /// POSTHOG_PERSONAL_API_KEY environment variable).
    #[arg(long, value_name = "FILE")]
    pub personal_api_key_file: Option<PathBuf>,
    /// Where report.json and report.html go (default: the state directory).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// First wait before retrying a query, in milliseconds.
    #[arg(long, default_value_t = 1000, hide = true)]
    pub initial_backoff_ms: u64,
}

fn personal_key(args: &VerifyArgs) -> anyhow::Result<String> {
    super::secret::read_key(
        args.personal_api_key_file.as_deref(),
        "POSTHOG_PERSONAL_API_KEY",
        "personal API key",
        "--personal-api-key-file",
    )
}

pub fn run(args: VerifyArgs) -> anyhow::Result<ExitCode> {
    super::http_url(
        "--posthog-app-host",
        &args.posthog_app_host,
        "https://us.posthog.com",
    )?;
    let key = personal_key(&args)?;
    let _reading = StateLock::shared(&args.state)?;
    let report = Report::from_state_dir(&args.state)?;
    if report.totals.rows == 0 {
        bail!(
            "the state {} holds no migrated rows: nothing to verify (is it the state of your migration?)",
            args.state.display()
        );
    }
    let mut api = QueryApi::new(&args.posthog_app_host, args.project_id, &key);
    api.initial_backoff = std::time::Duration::from_millis(args.initial_backoff_ms);
    let finished_at =
        std::fs::metadata(args.state.join(amplitude_posthog::migrate::state::DATABASE))
            .and_then(|metadata| metadata.modified())
            .ok()
            .map(chrono::DateTime::<chrono::Utc>::from);
    let verification = verify(
        &api,
        &args.posthog_app_host,
        &report.delivered_by_day(),
        chrono::Utc::now(),
        finished_at,
    )?;
    let path = args.state.join(VERIFY_FILE);
    let mut json = serde_json::to_vec_pretty(&verification).expect("serialises");
    json.push(b'\n');
    amplitude_posthog::fs::write_atomically(&path, &json)
        .with_context(|| format!("cannot write {}", path.display()))?;
    let report = Report::from_state_dir(&args.state)?;
    let (_, html) = report.write(args.out.as_ref().unwrap_or(&args.state))?;
    println!(
        "asked PostHog in {} queries about {} days: it holds {} migrated events, the migration delivered {}",
        verification.queries,
        verification.days_checked,
        verification.posthog,
        verification.delivered
    );
    for difference in &verification.differences {
        println!(
            "{}: delivered {}, PostHog {} ({:+})",
            difference.day,
            difference.delivered,
            difference.posthog,
            difference.posthog as i64 - difference.delivered as i64
        );
        for explanation in &difference.explanations {
            println!("    - {explanation}");
        }
    }
    if verification.differences.is_empty() {
        println!("no differences: every day PostHog holds exactly what was delivered");
    }
    println!("report: {}", html.display());
    Ok(if verification.differences.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
