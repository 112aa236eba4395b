//! `migrate`: the whole migration in one process, with nothing but this binary.
//!
//! The export (directories of `*.json.gz` or `*.json` files, or Export API zips read in place)
//! is read file by file in chunks of consecutive rows; worker threads map each chunk with the
//! chosen form of the mapping; an assembler counts every row by day and outcome, hands the
//! identity records to the identity sidecar's store (the same SQLite file) and packs events
//! into batches; batches go to PostHog concurrently (`posthog_client::deliver`); a committer moves each
//! file's watermark over chunks whose every event is delivered or dead-lettered (see
//! [`tracker`]) and writes counts, dead letters and watermarks in one transaction (see
//! [`state`]). The sidecar's own sender delivers the aliases and group snapshots meanwhile.
//! Killed at any moment, the same command reads each file again just past its watermark.

pub mod lock;
mod pipeline;
pub mod progress;
pub mod state;
pub mod summary;
pub mod tracker;

use std::path::PathBuf;
use std::time::Duration;

use posthog_client::rate::{DEFAULT_RATE, Rate, RateLimiter};

use crate::engine::EngineKind;

pub use pipeline::{DryRun, RunReport, run};

/// Everything `migrate` needs to know.
#[derive(Debug, Clone)]
pub struct MigrateOptions {
    /// Export directories, files and zips.
    pub inputs: Vec<PathBuf>,
    /// PostHog's capture host, e.g. `https://us.i.posthog.com`.
    pub host: String,
    /// The project API key (`phc_…`); never printed.
    pub api_key: String,
    /// Where the state database and the dead letters live.
    pub state_dir: PathBuf,
    pub mapping: EngineKind,
    /// Mapping threads.
    pub threads: usize,
    /// Events per second at most, in total: events, aliases and group updates together.
    pub rate: Rate,
    /// Requests in flight at most.
    pub concurrency: usize,
    /// Events per request at most.
    pub batch_events: usize,
    /// Uncompressed bytes per request at most.
    pub batch_bytes: usize,
    /// Map and count everything, send nothing, write no state.
    pub dry_run: bool,
    /// First wait before retrying a request; doubles up to `max_backoff`.
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    /// `--engine vector`: how long Vector may sit with nothing moving and a file short of its
    /// end before the run stops with that file as a problem.
    pub vector_stall: Duration,
    /// `--live-project`: the project already receives live events, so migrated events carry
    /// no person properties and the final person updates only fill in (MAPPING.md §8).
    pub live_project: bool,
}

impl MigrateOptions {
    /// How the final person updates are written.
    pub fn project_mode(&self) -> posthog_identity_sidecar::persons::ProjectMode {
        if self.live_project {
            posthog_identity_sidecar::persons::ProjectMode::Live
        } else {
            posthog_identity_sidecar::persons::ProjectMode::Empty
        }
    }

    /// The defaults of the command line, for `inputs`, `host` and `api_key`.
    pub fn new(inputs: Vec<PathBuf>, host: &str, api_key: &str) -> MigrateOptions {
        MigrateOptions {
            inputs,
            host: host.to_owned(),
            api_key: api_key.to_owned(),
            state_dir: PathBuf::from(DEFAULT_STATE_DIR),
            mapping: EngineKind::Native,
            threads: std::thread::available_parallelism().map_or(2, usize::from),
            rate: Rate(Some(DEFAULT_RATE)),
            concurrency: 4,
            batch_events: 1000,
            batch_bytes: 5_000_000,
            dry_run: false,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(60),
            vector_stall: Duration::from_secs(60),
            live_project: false,
        }
    }
}

/// The identity sidecar's sender for this migration: its database, PostHog and the key, this
/// command's backoff, and the rate limit it counts against.
pub(crate) fn identity_sender_config(
    database: &std::path::Path,
    options: &MigrateOptions,
    limiter: Option<std::sync::Arc<RateLimiter>>,
) -> posthog_identity_sidecar::sender::SenderConfig {
    posthog_identity_sidecar::sender::SenderConfig {
        database: database.to_path_buf(),
        batch_url: format!("{}/batch/", options.host.trim_end_matches('/')),
        api_key: options.api_key.clone(),
        // Events per request at most, as for the events (`--batch-size`).
        batch_size: options.batch_events.max(1),
        initial_backoff: options.initial_backoff,
        max_backoff: options.max_backoff,
        idle_wait: Duration::from_millis(500),
        limiter,
    }
}

/// Resolves when this process is asked to stop: Ctrl-C (SIGINT) or SIGTERM.
pub(crate) async fn interrupted() {
    let mut terminate =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    let sigterm = async {
        match terminate.as_mut() {
            Some(signal) => {
                signal.recv().await;
            }
            None => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = sigterm => {}
    }
}

/// `--state` when none is given.
pub const DEFAULT_STATE_DIR: &str = ".amplitude-posthog";

/// The dead letters of the whole migration, rewritten from the state at the end of each run.
pub const DEAD_LETTERS_FILE: &str = "dead-letters.jsonl";

/// Why a run ended before everything was accounted for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stop {
    /// Ran to the end.
    Finished,
    /// Ctrl-C or SIGTERM: stopped cleanly, the same command continues.
    Interrupted,
    /// PostHog refused the key.
    Credentials { status: u16 },
    /// The host is not PostHog's capture endpoint (404, 405, a redirect); `advice` names the
    /// host to use.
    WrongHost { status: u16, advice: String },
    /// PostHog refused every event of `requests` whole requests in a row (see
    /// [`posthog_client::refusals`]):
    /// a misconfiguration, not bad rows.
    Refused { requests: usize, reason: String },
}

impl Stop {
    /// A stop for a bad setup (the key, the host, a project that refuses everything): what
    /// PostHog refused in this run says nothing about the rows.
    pub fn is_setup(&self) -> bool {
        matches!(
            self,
            Stop::Credentials { .. } | Stop::WrongHost { .. } | Stop::Refused { .. }
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error(transparent)]
    Input(#[from] crate::input::InputError),
    #[error(transparent)]
    State(#[from] state::StateError),
    #[error(transparent)]
    Lock(#[from] lock::LockError),
    #[error(transparent)]
    Engine(#[from] crate::engine::EngineError),
    #[error("cannot set up the HTTP client: {0}")]
    Client(#[source] reqwest::Error),
    /// The runtime the client runs on could not start.
    #[error("cannot set up the HTTP client: {0}")]
    Runtime(#[source] std::io::Error),
    #[error("the migration state's identity store failed: {0}")]
    Identities(#[source] rusqlite::Error),
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}
