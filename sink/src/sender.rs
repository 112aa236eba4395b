//! Drains the outbox to PostHog: batches of pending aliases and group snapshots, marked sent
//! only after a 200. Retries 408/429/5xx/network errors with capped exponential backoff
//! honouring `Retry-After`; splits on 413; bisects a 400 down to the refused event and marks
//! it failed; stops on 401/403 with everything kept pending.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use posthog_client::rate::RateLimiter;
use posthog_client::refusals::{IN_A_ROW, Refusals};
use posthog_client::{Client, Undelivered};
use tokio::sync::{Notify, watch};

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
    /// The rate limit its requests count against (shared with the events' sender when the
    /// sidecar runs inside `migrate`); `None`: unlimited.
    pub limiter: Option<Arc<RateLimiter>>,
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
    /// [`IN_A_ROW`] whole batches in a row: a misconfiguration, not bad
    /// entries. Sending stopped, nothing of those batches is marked.
    pub refused_everything: std::sync::Mutex<Option<String>>,
    /// Woken by the intake when new records were committed.
    pub new_records: Notify,
}

/// Releases the store (every record is in: the aliases and the person updates may go) and
/// wakes the sender, wherever the release comes from (`POST /flush`, the end of `migrate`).
pub fn release(
    store: &mut Store,
    signals: &SenderSignals,
    mode: crate::persons::ProjectMode,
) -> rusqlite::Result<crate::store::ReleaseResult> {
    let result = store.release(mode)?;
    signals.new_records.notify_one();
    Ok(result)
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
    let mut client = Client::sharing(&config.batch_url, &config.api_key, config.limiter.clone())?;
    client.initial_backoff = config.initial_backoff;
    client.max_backoff = config.max_backoff;
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
                if refused_in_a_row >= IN_A_ROW {
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
    client: &Client,
    store: &mut Store,
    batch: Vec<Outgoing>,
    shutdown: &mut watch::Receiver<bool>,
    signals: &SenderSignals,
) -> anyhow::Result<Outcome> {
    let events: Arc<Vec<String>> = Arc::new(
        batch
            .iter()
            .map(|entry| crate::posthog::event(entry).to_string())
            .collect(),
    );
    // The status shows the last answer being retried (a short-lived connection: retries are
    // seconds apart).
    let database = config.database.clone();
    let on_retry = move |reason: &str| {
        if let Ok(store) = Store::open(&database) {
            let _ = store.set_last_error(Some(reason));
        }
    };
    match posthog_client::deliver(client, &events, shutdown, &on_retry).await {
        Ok(refused) => {
            if Refusals::<()>::is_whole(batch.len(), refused.len()) {
                return Ok(Outcome::WhollyRefused(refused[0].reason.clone()));
            }
            let reasons: HashMap<usize, &str> = refused
                .iter()
                .map(|refused| (refused.index, refused.reason.as_str()))
                .collect();
            let mut sent = Vec::with_capacity(batch.len());
            for (index, entry) in batch.into_iter().enumerate() {
                match reasons.get(&index) {
                    Some(reason) => {
                        tracing::error!("{reason}; the event is marked failed");
                        store.mark(std::slice::from_ref(&entry), Some(reason))?;
                    }
                    None => sent.push(entry),
                }
            }
            store.mark(&sent, None)?;
            store.set_last_error(None)?;
            Ok(Outcome::Sent)
        }
        Err(Undelivered::Stopped) => Ok(Outcome::Stop(Stopped::Shutdown)),
        Err(Undelivered::Credentials { status }) => {
            let message = format!(
                "credentials error: PostHog answered {status}; check the project API key (POSTHOG_API_KEY or --api-key-file) \
                 and the host. Sending stopped, nothing is lost: restart the sidecar once the key is fixed."
            );
            tracing::error!("{message}");
            store.set_last_error(Some(&message))?;
            Ok(Outcome::Stop(Stopped::Credentials))
        }
        Err(Undelivered::WrongHost { status, advice }) => {
            let message = format!(
                "wrong host: {} answered {status}; {advice}. Sending stopped, nothing is lost: restart once the host is fixed.",
                config.batch_url
            );
            tracing::error!("{message}");
            store.set_last_error(Some(&message))?;
            *signals.wrong_host.lock().expect("signals") = Some((status, advice));
            Ok(Outcome::Stop(Stopped::WrongHost))
        }
    }
}
