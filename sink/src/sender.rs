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
    /// Set (to the status and the advice) when the host is not PostHog's capture endpoint
    /// (404, 405, a redirect): sending stopped, everything stays pending.
    pub wrong_host: std::sync::Mutex<Option<(u16, String)>>,
    /// Set (to PostHog's answer) when PostHog refused every entry of
    /// [`crate::refusals::IN_A_ROW`] whole batches in a row: a misconfiguration, not bad
    /// entries. Sending stopped, nothing of those batches is marked.
    pub refused_everything: std::sync::Mutex<Option<String>>,
    /// Woken by the intake when new records were committed.
    pub new_records: Notify,
}

/// Why the sender stopped.
#[derive(Debug, PartialEq, Eq)]
pub enum Stopped {
    Shutdown,
    Credentials,
    WrongHost,
    RefusedEverything,
}

/// How a batch went: sent (with its refused entries marked), or wholly refused (nothing
/// marked; PostHog's answer), or the sender must stop.
enum Outcome {
    Sent,
    WhollyRefused(String),
    Stop(Stopped),
}

/// Runs until shutdown (or a credentials error).
pub async fn run(
    config: SenderConfig,
    signals: Arc<SenderSignals>,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<Stopped> {
    let mut store = Store::open(&config.database)?;
    let client = crate::posthog::client()?;
    let mut refused_in_a_row = 0;
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
        match deliver(&config, &client, &mut store, batch, &mut shutdown, &signals).await? {
            Outcome::Stop(Stopped::Credentials) => {
                signals.credentials_error.store(true, Ordering::SeqCst);
                return Ok(Stopped::Credentials);
            }
            Outcome::Stop(stopped) => return Ok(stopped),
            Outcome::Sent => refused_in_a_row = 0,
            // Left pending, so the same entries come again: a setup that refuses everything
            // refuses them again, and the sender stops; bad entries are isolated as before
            // once a batch with a good one comes.
            Outcome::WhollyRefused(reason) => {
                refused_in_a_row += 1;
                if refused_in_a_row >= crate::refusals::IN_A_ROW {
                    let message = format!(
                        "PostHog refused every entry of {refused_in_a_row} whole batches in a row ({reason}): \
                         that is the setup (the project, the host, a proxy), not bad entries. Sending stopped, nothing is lost."
                    );
                    tracing::error!("{message}");
                    store.set_last_error(Some(&message))?;
                    *signals.refused_everything.lock().expect("signals") = Some(reason);
                    return Ok(Stopped::RefusedEverything);
                }
            }
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
    signals: &SenderSignals,
) -> anyhow::Result<Outcome> {
    let entries = batch.len();
    // Refused entries with PostHog's answer, marked once the whole batch is answered.
    let mut refused: Vec<(Vec<Outgoing>, String)> = Vec::new();
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
                    _ = shutdown.changed() => return Ok(Outcome::Stop(Stopped::Shutdown)),
                }
            }
            Delivery::Split | Delivery::Isolate { .. } if batch.len() > 1 => {
                let mut first = batch;
                let second = first.split_off(first.len() / 2);
                work.push(second);
                work.push(first);
            }
            Delivery::Split => refused.push((
                batch,
                "PostHog refused the event as too large (413)".to_owned(),
            )),
            Delivery::Isolate { reason } => refused.push((batch, reason)),
            Delivery::Credentials { status } => {
                let message = format!(
                    "credentials error: PostHog answered {status}; check the project API key (POSTHOG_API_KEY or --api-key-file) \
                     and the host. Sending stopped, nothing is lost: restart the sidecar once the key is fixed."
                );
                tracing::error!("{message}");
                store.set_last_error(Some(&message))?;
                return Ok(Outcome::Stop(Stopped::Credentials));
            }
            Delivery::WrongHost { status, advice } => {
                let message = format!(
                    "wrong host: {} answered {status}; {advice}. Sending stopped, nothing is lost: restart once the host is fixed.",
                    config.batch_url
                );
                tracing::error!("{message}");
                store.set_last_error(Some(&message))?;
                *signals.wrong_host.lock().expect("signals") = Some((status, advice));
                return Ok(Outcome::Stop(Stopped::WrongHost));
            }
        }
    }
    if crate::refusals::Refusals::<()>::is_whole(entries, refused.len()) {
        return Ok(Outcome::WhollyRefused(refused.swap_remove(0).1));
    }
    for (entries, reason) in &refused {
        tracing::error!("{reason}; the event is marked failed");
        store.mark(entries, Some(reason))?;
    }
    Ok(Outcome::Sent)
}
