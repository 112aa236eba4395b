//! The `posthog-identity-sidecar` command line: `serve`, `status`, `flush`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use posthog_client::rate::{DEFAULT_IDENTITY_RATE, Rate};
use tokio::sync::watch;

use posthog_identity_sidecar::intake;
use posthog_identity_sidecar::persons::ProjectMode;
use posthog_identity_sidecar::sender::{self, SenderConfig, SenderSignals, Stopped};
use posthog_identity_sidecar::store::Store;

#[derive(Debug, Parser)]
#[command(
    name = "posthog-identity-sidecar",
    version,
    about = "Identity sidecar: each device → user link to PostHog exactly once"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Accept identity records from Vector and send aliases to PostHog.
    Serve(ServeArgs),
    /// Print the store's numbers (works whether or not the sidecar runs).
    Status {
        #[arg(long, value_name = "PATH")]
        db: PathBuf,
        /// Also list up to this many conflicting links.
        #[arg(long, default_value_t = 0)]
        conflicts: usize,
    },
    /// Every record is in (Vector has finished): release the aliases and the person updates,
    /// wait until a running sidecar has nothing pending, then exit 0 (end of a migration).
    Flush {
        /// The sidecar's address.
        #[arg(long, default_value = "http://127.0.0.1:8687")]
        url: String,
        /// A file holding the sidecar's bearer token (else SIDECAR_TOKEN; none: no token).
        #[arg(long, value_name = "FILE")]
        token_file: Option<PathBuf>,
        /// Give up after this many seconds (0: never).
        #[arg(long, default_value_t = 0)]
        timeout_secs: u64,
    },
}

#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// The SQLite database (created if missing).
    #[arg(long, value_name = "PATH")]
    db: PathBuf,
    /// Where Vector sends records. Loopback by default: never expose it.
    #[arg(long, default_value = "127.0.0.1:8687")]
    listen: SocketAddr,
    /// PostHog host: https://us.i.posthog.com, https://eu.i.posthog.com or your own.
    #[arg(long, default_value = "https://us.i.posthog.com")]
    posthog_host: String,
    /// A file holding the PostHog project API key (else POSTHOG_API_KEY).
    #[arg(long, value_name = "FILE")]
    api_key_file: Option<PathBuf>,
    /// A file holding a bearer token Vector must present (else SIDECAR_TOKEN; none: no check).
    #[arg(long, value_name = "FILE")]
    token_file: Option<PathBuf>,
    /// Events per request to PostHog.
    #[arg(long, default_value_t = 500)]
    batch_size: usize,
    /// Largest accepted request body from Vector, in bytes (after decompression).
    #[arg(long, default_value_t = 64 * 1024 * 1024)]
    max_body_bytes: usize,
    /// Longest wait between retries, in seconds (Retry-After is honoured beyond it).
    #[arg(long, default_value_t = 30)]
    max_backoff_secs: u64,
    /// Events per second to PostHog at most, or `unlimited`: by default this sidecar's share
    /// (a quarter) of the 2 000 events/s the shipped pipeline sends in total, Vector's sink
    /// taking the rest (PostHog's migration guide: a few thousand events/s at most, in total).
    #[arg(long, value_name = "EVENTS_PER_S", default_value_t = Rate(Some(DEFAULT_IDENTITY_RATE)))]
    rate: Rate,
    /// The project already receives live events: the final person updates fill in only what
    /// live data lacks (`$set_once`), and set the `$initial_*` keys history knows better.
    #[arg(long)]
    live_project: bool,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let result = match Cli::parse().command {
        Command::Serve(args) => serve(args),
        Command::Status { db, conflicts } => print_status(&db, conflicts),
        Command::Flush {
            url,
            token_file,
            timeout_secs,
        } => secret(token_file.as_ref(), "SIDECAR_TOKEN")
            .and_then(|token| flush(&url, token.as_deref(), timeout_secs)),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("posthog-identity-sidecar: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// A secret from a file or an environment variable, trimmed; never logged.
fn secret(file: Option<&PathBuf>, variable: &str) -> anyhow::Result<Option<String>> {
    let value = match file {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?,
        ),
        None => std::env::var(variable).ok(),
    };
    Ok(value
        .map(|value| value.trim().to_owned())
        .filter(|value| !value.is_empty()))
}

fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let Some(api_key) = secret(args.api_key_file.as_ref(), "POSTHOG_API_KEY")? else {
        bail!("no PostHog API key: set POSTHOG_API_KEY or pass --api-key-file");
    };
    let token = secret(args.token_file.as_ref(), "SIDECAR_TOKEN")?;
    let store = Store::open(&args.db)
        .with_context(|| format!("cannot open the database {}", args.db.display()))?;
    let signals = Arc::new(SenderSignals::default());
    let sender_config = SenderConfig {
        database: args.db.clone(),
        batch_url: format!("{}/batch/", args.posthog_host.trim_end_matches('/')),
        api_key,
        batch_size: args.batch_size.max(1),
        initial_backoff: Duration::from_millis(200),
        max_backoff: Duration::from_secs(args.max_backoff_secs.max(1)),
        idle_wait: Duration::from_millis(500),
        limiter: args.rate.limiter(),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        tracing::info!(
            "listening on {} for Vector's identity records; database {}",
            listener.local_addr()?,
            args.db.display()
        );
        let state = intake::IntakeState {
            store: Arc::new(Mutex::new(store)),
            signals: signals.clone(),
            token,
            max_body_bytes: args.max_body_bytes,
            mode: if args.live_project {
                ProjectMode::Live
            } else {
                ProjectMode::Empty
            },
        };
        let sender = tokio::spawn(sender::run(
            sender_config,
            signals.clone(),
            shutdown_rx.clone(),
        ));
        let mut server_shutdown = shutdown_rx.clone();
        let server =
            axum::serve(listener, intake::router(state)).with_graceful_shutdown(async move {
                let _ = server_shutdown.wait_for(|stop| *stop).await;
            });
        let signal_task = tokio::spawn(async move {
            wait_for_signal().await;
            tracing::info!("shutting down: no new requests; finishing the ones in flight");
            let _ = shutdown_tx.send(true);
        });
        server.await?;
        signal_task.abort();
        match sender.await? {
            Ok(Stopped::Credentials) => {
                tracing::error!("sending stopped on a credentials error; records are kept pending");
            }
            Ok(Stopped::WrongHost) => {
                tracing::error!("sending stopped: the host is not PostHog's capture endpoint; records are kept pending");
            }
            Ok(Stopped::RefusedEverything) => {
                tracing::error!("sending stopped: PostHog refuses every entry; records are kept pending");
            }
            Ok(Stopped::Shutdown) => {}
            Err(error) => return Err(error),
        }
        Ok(ExitCode::SUCCESS)
    })
}

async fn wait_for_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .expect("SIGTERM handler");
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}

fn print_status(db: &std::path::Path, conflicts: usize) -> anyhow::Result<ExitCode> {
    let store = Store::open(db).with_context(|| format!("cannot open {}", db.display()))?;
    let counts = store.counts()?;
    println!("{}", serde_json::to_string_pretty(&counts)?);
    for (device, user, first_seen) in store.conflicts(conflicts)? {
        println!(
            "conflict: device {device} already linked; later user {user} (first seen {first_seen})"
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn flush(url: &str, token: Option<&str>, timeout_secs: u64) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let client = reqwest::Client::new();
        let started = std::time::Instant::now();
        // Records that arrive after a release wait for the next one: released again until
        // the store stays released (Vector may still be delivering its last batches).
        let release = || async {
            let mut request = client.post(format!("{}/flush", url.trim_end_matches('/')));
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            let answer = request
                .send()
                .await
                .with_context(|| format!("cannot reach the sidecar at {url}"))?;
            if !answer.status().is_success() {
                bail!(
                    "the sidecar refused the flush: {} {}",
                    answer.status(),
                    answer.text().await.unwrap_or_default()
                );
            }
            anyhow::Ok(())
        };
        let bar = indicatif::ProgressBar::new(0);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} sent, {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        loop {
            let body = client
                .get(format!("{}/status", url.trim_end_matches('/')))
                .send()
                .await
                .with_context(|| format!("cannot reach the sidecar at {url}"))?
                .text()
                .await?;
            let status: serde_json::Value =
                serde_json::from_str(&body).context("the sidecar's /status is not JSON")?;
            if status["released"] != true {
                release().await?;
                tokio::time::sleep(Duration::from_millis(250)).await;
                continue;
            }
            let number = |key: &str| status[key].as_u64().unwrap_or(0);
            let pending = number("pending") + number("groups_pending") + number("persons_pending");
            let done = number("sent")
                + number("failed")
                + number("groups_sent")
                + number("groups_failed")
                + number("persons_sent")
                + number("persons_failed");
            bar.set_length(done + pending);
            bar.set_position(done);
            bar.set_message(format!(
                "{pending} pending, {} failed, {} conflicts",
                number("failed") + number("groups_failed") + number("persons_failed"),
                number("conflicts")
            ));
            if status["credentials_error"] == true {
                bar.abandon();
                bail!(
                    "the sidecar stopped on a credentials error: {}",
                    status["last_error"].as_str().unwrap_or("check the API key")
                );
            }
            if status["wrong_host"]
                .as_u64()
                .is_some_and(|status| status > 0)
            {
                bar.abandon();
                bail!(
                    "the sidecar stopped: {}",
                    status["last_error"]
                        .as_str()
                        .unwrap_or("check the PostHog host")
                );
            }
            if pending == 0 {
                bar.finish();
                return Ok(ExitCode::SUCCESS);
            }
            if timeout_secs > 0 && started.elapsed() > Duration::from_secs(timeout_secs) {
                bar.abandon();
                bail!("{pending} still pending after {timeout_secs} s");
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    })
}
