//! `amplitude-posthog migrate`: the whole migration as one command.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;

use amplitude_posthog::engine::EngineKind;
use amplitude_posthog::migrate::{DEFAULT_STATE_DIR, MigrateOptions, Stop, run};
use posthog_client::rate::{DEFAULT_RATE, Rate};

#[derive(Debug, clap::Args)]
pub struct MigrateArgs {
    /// Export directories, `*.json.gz` / `*.json` files, or Export API zips (read in place).
    #[arg(value_name = "EXPORT", required = true)]
    pub inputs: Vec<PathBuf>,
    /// PostHog's capture host: https://us.i.posthog.com, https://eu.i.posthog.com, or yours.
    #[arg(long, value_name = "URL")]
    pub posthog_host: String,
    /// A file holding the project API key (else the POSTHOG_API_KEY environment variable).
    #[arg(long, value_name = "FILE")]
    pub api_key_file: Option<PathBuf>,
    /// Where the migration keeps its state and dead letters.
    #[arg(long, value_name = "DIR", default_value = DEFAULT_STATE_DIR)]
    pub state: PathBuf,
    /// Run the migration in this process (`embedded`), or supervise a Vector (`vector`).
    #[arg(long, value_enum, default_value = "embedded")]
    pub engine: MigrateEngine,
    /// The form of the mapping (all give the same bytes).
    #[arg(long, value_enum, default_value = "native")]
    pub mapping: EngineKind,
    /// Events per second at most, in total (events, aliases, group updates), or `unlimited`
    /// (a self-hosted PostHog). PostHog's migration guide: a few thousand a second at most.
    #[arg(long, value_name = "EVENTS_PER_S", default_value_t = Rate(Some(DEFAULT_RATE)))]
    pub rate: Rate,
    /// Requests to PostHog in flight at most.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub concurrency: u16,
    /// Events per request at most.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub batch_size: u32,
    /// Uncompressed bytes per request at most (PostHog takes up to 20 MB).
    #[arg(long, default_value_t = 5_000_000, value_parser = clap::value_parser!(u64).range(1_000_000..=20_000_000))]
    pub batch_bytes: u64,
    /// Mapping threads (default: one per core).
    #[arg(long)]
    pub threads: Option<usize>,
    /// The project already receives live events (PostHog's SDK installed before this
    /// backfill): migrated events carry no person properties, and each person's final update
    /// only fills in what live data lacks (README: "A project with live data").
    #[arg(long)]
    pub live_project: bool,
    /// Map and count everything, send nothing, write nothing (but --report).
    #[arg(long)]
    pub dry_run: bool,
    /// Also write the per-day report (report.json, report.html) into DIR; with --dry-run, the
    /// report of what would be sent.
    #[arg(long, value_name = "DIR")]
    pub report: Option<PathBuf>,
    /// First wait before a retry, in milliseconds (doubles up to --max-backoff-ms).
    #[arg(long, default_value_t = 500, hide = true)]
    pub initial_backoff_ms: u64,
    /// Longest wait between retries, in milliseconds.
    #[arg(long, default_value_t = 60_000, hide = true)]
    pub max_backoff_ms: u64,
    /// --engine vector: seconds Vector may sit with nothing moving and a file short of its end
    /// before the run stops, naming the file.
    #[arg(long, default_value_t = 60, hide = true)]
    pub vector_stall_secs: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum MigrateEngine {
    Embedded,
    Vector,
}

/// The project key from the file or the environment; never printed.
fn api_key(args: &MigrateArgs) -> anyhow::Result<String> {
    super::secret::read_key(
        args.api_key_file.as_deref(),
        "POSTHOG_API_KEY",
        "PostHog project API key",
        "--api-key-file",
    )
}

pub fn run_command(args: MigrateArgs) -> anyhow::Result<ExitCode> {
    let vector = match args.engine {
        MigrateEngine::Vector if !args.dry_run => Some(amplitude_posthog::vector::find_vector().ok_or_else(|| {
            anyhow::anyhow!(
                "--engine vector needs Vector 0.58 or later: set VECTOR_BIN or put `vector` on PATH (or use the default --engine embedded)"
            )
        })?),
        _ => None,
    };
    let url = super::http_url(
        "--posthog-host",
        &args.posthog_host,
        "https://us.i.posthog.com",
    )?;
    // The host as printed: never a user name or password the URL may carry.
    let shown_host = {
        let mut shown = url.clone();
        let _ = shown.set_password(None);
        let _ = shown.set_username("");
        shown.as_str().trim_end_matches('/').to_owned()
    };
    let key = if args.dry_run {
        api_key(&args).unwrap_or_default()
    } else {
        api_key(&args)?
    };
    let mut options = MigrateOptions::new(args.inputs.clone(), &args.posthog_host, &key);
    options.state_dir = args.state.clone();
    options.mapping = args.mapping;
    options.rate = args.rate;
    options.live_project = args.live_project;
    options.concurrency = usize::from(args.concurrency);
    options.batch_events = args.batch_size as usize;
    options.batch_bytes = args.batch_bytes as usize;
    if let Some(threads) = args.threads {
        options.threads = threads.max(1);
    }
    options.dry_run = args.dry_run;
    options.initial_backoff = Duration::from_millis(args.initial_backoff_ms);
    options.max_backoff = Duration::from_millis(args.max_backoff_ms.max(args.initial_backoff_ms));
    options.vector_stall = Duration::from_secs(args.vector_stall_secs);

    let report = match &vector {
        Some(vector) => amplitude_posthog::vector::run(&options, vector)?,
        // A dry run maps and counts in this process whatever the engine: nothing is sent.
        None => run(&options)?,
    };
    let summary = &report.summary;
    eprintln!("{summary}");
    if let Some(dry_run) = &report.dry_run {
        let duration = match options.rate.0 {
            Some(rate) => format!(
                " at {}, about {}",
                options.rate.describe(),
                indicatif::HumanDuration(Duration::from_secs(
                    summary.totals.events.div_ceil(u64::from(rate))
                ))
            ),
            None => String::new(),
        };
        eprintln!(
            "dry run: would send {} events in {} requests to {}/batch/{duration}; nothing was sent{}",
            summary.totals.events,
            dry_run.batches,
            shown_host,
            if args.report.is_some() {
                ""
            } else {
                " or written"
            }
        );
        if let Some(dir) = &args.report {
            let report = amplitude_posthog::report::Report::from_dry_run(dry_run, summary);
            let (_, html) = write_report(&report, dir)?;
            eprintln!("report: {}", html.display());
        }
        return Ok(if summary.problems.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        });
    }
    eprintln!(
        "rate: {} in total (events, aliases and group updates; --rate to change)",
        options.rate.describe()
    );
    if vector.is_none() {
        // The embedded engine's state has the per-day counts: the report of every run.
        let report = amplitude_posthog::report::Report::from_state_dir(&options.state_dir)?;
        report.write(&options.state_dir)?;
    }
    eprintln!(
        "report: {}",
        options
            .state_dir
            .join(amplitude_posthog::report::HTML_FILE)
            .display()
    );
    if let Some(dir) = &args.report {
        let report = amplitude_posthog::report::Report::from_state_dir(&options.state_dir)?;
        let (_, html) = write_report(&report, dir)?;
        eprintln!("report: {}", html.display());
    }
    let dead_letters = match vector {
        Some(_) => options.state_dir.join("vector/dead-letters/"),
        None => options
            .state_dir
            .join(amplitude_posthog::migrate::DEAD_LETTERS_FILE),
    };
    eprintln!(
        "{}",
        how_it_ended(
            &report.stop,
            summary.complete(),
            vector.is_some(),
            &shown_host,
            &dead_letters
        )
    );
    Ok(ExitCode::from(summary.exit_code(&report.stop)))
}

/// The last line: how the run ended and what to do next.
fn how_it_ended(
    stop: &Stop,
    complete: bool,
    through_vector: bool,
    shown_host: &str,
    dead_letters: &std::path::Path,
) -> String {
    let again = "run the same command again to continue";
    match stop {
        Stop::Credentials { status } => format!(
            "stopped: PostHog answered {status} to the project API key: check --api-key-file or POSTHOG_API_KEY and --posthog-host. \
             Nothing PostHog refused is marked delivered; {again} once the key is right."
        ),
        Stop::WrongHost { status, advice } => format!(
            "stopped: {shown_host}/batch/ answered {status}, so it is not PostHog's capture endpoint; {advice}. \
             Nothing was marked delivered or dead-lettered; {again} with the right --posthog-host."
        ),
        Stop::Refused { requests, reason } => format!(
            "stopped: PostHog refused every event of {requests} whole request(s) of unrelated events ({reason}): \
             that is the setup (the project, the host, a proxy), not bad rows. Nothing of those requests was marked \
             delivered or dead-lettered; {again} once it is fixed."
        ),
        Stop::Interrupted if through_vector => {
            format!("interrupted: Vector is stopped, its checkpoints and buffers kept; {again}.")
        }
        Stop::Interrupted => {
            format!("interrupted: every row before each file's watermark is done; {again}.")
        }
        Stop::Finished if complete => format!(
            "done: every row is delivered or accounted for (dead letters: {})",
            dead_letters.display()
        ),
        Stop::Finished => {
            format!("not complete: see the problems above; {again} once they are fixed.")
        }
    }
}

/// Writes `report` into `dir` (made if missing); the paths of `report.json` and `report.html`.
fn write_report(
    report: &amplitude_posthog::report::Report,
    dir: &std::path::Path,
) -> anyhow::Result<(PathBuf, PathBuf)> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(report.write(dir)?)
}
