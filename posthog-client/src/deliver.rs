//! A batch sent until PostHog has taken each event or refused it: 408, 429, 5xx and network
//! errors retried with capped exponential backoff (PostHog's `Retry-After` wins); a 413 split
//! in halves; a 400 bisected down to the refused event, which is handed back with PostHog's
//! answer; a 401 or 403 (the key) and a 404, 405 or redirect (the host) stop at once.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::watch;

use crate::answer::Delivery;
use crate::client::Client;

/// The longest `Retry-After` honoured as given.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(600);

/// An event PostHog refused for good, with its answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// Position in the batch.
    pub index: usize,
    pub reason: String,
}

/// Why a batch was not delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Undelivered {
    /// PostHog refused the key (401/403): the whole migration must stop.
    Credentials { status: u16 },
    /// The host is not PostHog's capture endpoint (404, 405, a redirect): the whole migration
    /// must stop.
    WrongHost { status: u16, advice: String },
    /// The migration is stopping (Ctrl-C, or another batch hit a credentials error).
    Stopped,
}

/// Delivers `events` until each one is taken or refused; the refused ones, by position.
///
/// `on_retry` hears each retried answer (the sidecar shows the last one in its status).
pub async fn deliver(
    client: &Client,
    events: &Arc<Vec<String>>,
    stop: &mut watch::Receiver<bool>,
    on_retry: &(dyn Fn(&str) + Sync),
) -> Result<Vec<Refused>, Undelivered> {
    let mut refused = Vec::new();
    // Ranges still to send; halves are pushed so the first half goes first.
    let mut work = vec![(0, events.len())];
    let mut backoff = client.initial_backoff;
    while let Some((start, end)) = work.pop() {
        if *stop.borrow() {
            return Err(Undelivered::Stopped);
        }
        // A request that hangs does not hold up a stop (Ctrl-C, a fatal answer elsewhere).
        let answer = tokio::select! {
            answer = client.send(events, start, end) => answer,
            () = stopping(stop) => return Err(Undelivered::Stopped),
        };
        match answer {
            Delivery::Accepted => backoff = client.initial_backoff,
            Delivery::Retry { after, reason } => {
                client.retries.fetch_add(1, Ordering::Relaxed);
                tracing::warn!("{reason}; retrying {} events", end - start);
                on_retry(&reason);
                // PostHog's Retry-After wins (within reason); else the capped backoff.
                let wait = after.map_or(backoff, |after| after.min(MAX_RETRY_AFTER));
                backoff = (backoff * 2).min(client.max_backoff);
                work.push((start, end));
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    () = stopping(stop) => return Err(Undelivered::Stopped),
                }
            }
            Delivery::Split | Delivery::Isolate { .. } if end - start > 1 => {
                let middle = start + (end - start) / 2;
                work.push((middle, end));
                work.push((start, middle));
            }
            Delivery::Split => refused.push(Refused {
                index: start,
                reason: "PostHog refused the event as too large (413)".to_owned(),
            }),
            Delivery::Isolate { reason } => refused.push(Refused {
                index: start,
                reason,
            }),
            Delivery::Credentials { status } => return Err(Undelivered::Credentials { status }),
            Delivery::WrongHost { status, advice } => {
                return Err(Undelivered::WrongHost { status, advice });
            }
        }
    }
    Ok(refused)
}

/// Resolves once the stop switch is on (never, if its sender is gone).
async fn stopping(stop: &mut watch::Receiver<bool>) {
    if stop.wait_for(|stop| *stop).await.is_err() {
        std::future::pending::<()>().await;
    }
}
