//! Drains the outbox to PostHog: batches of pending aliases and group snapshots, marked sent
//! only after a 200. Retries 408/429/5xx/network errors with capped exponential backoff
//! honouring `Retry-After`; splits on 413; bisects a 400 down to the refused event and marks
//! it failed; stops on 401/403 with everything kept pending.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::{Notify, watch};

use crate::posthog::{Delivery, send};
use crate::store::{Outgoing, Store};

#[derive(Debug, Clone)]
pub struct SenderConfig {
    pub database: PathBuf,
    /// `{host}/batch/`
    pub batch_url: String,
    pub api_key: String,
    pub batch_size: usize,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    /// How long to wait for new records when the outbox is empty.
    pub idle_wait: Duration,
}

/// Shared between the sender and the HTTP server.
#[derive(Default)]
pub struct SenderSignals {
    /// Set when PostHog refused the key: sending stopped, everything stays pending.
    pub credentials_error: AtomicBool,
    /// Woken by the intake when new records were committed.
    pub new_records: Notify,
}

/// Why the sender stopped.
#[derive(Debug, PartialEq, Eq)]
pub enum Stopped {
    Shutdown,
    Credentials,
}

/// Runs until shutdown (or a credentials error).
pub async fn run(
    config: SenderConfig,
    signals: Arc<SenderSignals>,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<Stopped> {
    let mut store = Store::open(&config.database)?;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()?;
    loop {
        if *shutdown.borrow() {
            return Ok(Stopped::Shutdown);
        }
        let batch = store.pending(config.batch_size)?;
        if batch.is_empty() {
            tokio::select! {
                _ = signals.new_records.notified() => {}
                _ = tokio::time::sleep(config.idle_wait) => {}
                _ = shutdown.changed() => {}
            }
            continue;
        }
        match deliver(&config, &client, &mut store, batch, &mut shutdown).await? {
            Some(Stopped::Credentials) => {
                signals.credentials_error.store(true, Ordering::SeqCst);
                return Ok(Stopped::Credentials);
            }
            Some(Stopped::Shutdown) => return Ok(Stopped::Shutdown),
            None => {}
        }
    }
}

/// Delivers one batch, splitting or bisecting as PostHog's answers require. `Some` when the
/// sender must stop.
async fn deliver(
    config: &SenderConfig,
    client: &reqwest::Client,
    store: &mut Store,
    batch: Vec<Outgoing>,
    shutdown: &mut watch::Receiver<bool>,
) -> anyhow::Result<Option<Stopped>> {
    // Work list of batches still to send; halves go to the front so order is kept.
    let mut work = vec![batch];
    let mut backoff = config.initial_backoff;
    while let Some(batch) = work.pop() {
        match send(client, &config.batch_url, &config.api_key, &batch).await {
            Delivery::Accepted => {
                store.mark(&batch, None)?;
                store.set_last_error(None)?;
                backoff = config.initial_backoff;
            }
            Delivery::Retry { after, reason } => {
                tracing::warn!("{reason}; retrying {} events", batch.len());
                store.set_last_error(Some(&reason))?;
                // PostHog's Retry-After wins; otherwise the capped exponential backoff.
                let wait = after.unwrap_or(backoff);
                backoff = (backoff * 2).min(config.max_backoff);
                work.push(batch);
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = shutdown.changed() => return Ok(Some(Stopped::Shutdown)),
                }
            }
            Delivery::Split | Delivery::Isolate { .. } if batch.len() > 1 => {
                let mut first = batch;
                let second = first.split_off(first.len() / 2);
                work.push(second);
                work.push(first);
            }
            Delivery::Split => {
                tracing::error!("PostHog refused one event as too large; marked failed");
                store.mark(&batch, Some("PostHog refused the event as too large (413)"))?;
            }
            Delivery::Isolate { reason } => {
                tracing::error!("{reason}; the event is marked failed");
                store.mark(&batch, Some(&reason))?;
            }
            Delivery::Credentials { status } => {
                let message = format!(
                    "credentials error: PostHog answered {status}; check the project API key (POSTHOG_API_KEY or --api-key-file) \
                     and the host. Sending stopped, nothing is lost: restart the sidecar once the key is fixed."
                );
                tracing::error!("{message}");
                store.set_last_error(Some(&message))?;
                return Ok(Some(Stopped::Credentials));
            }
        }
    }
    Ok(None)
}
