//! Sending a batch of mapped events to PostHog's `/batch/` until PostHog has taken each one
//! or refused it: gzip bodies with `historical_migration: true`; 408, 429, 5xx and network
//! errors retried with capped exponential backoff (PostHog's `Retry-After` wins); a 413 split
//! in halves; a 400 bisected down to the refused event, which is handed back with PostHog's
//! answer; a 401 or 403 (the key) and a 404, 405 or redirect (the host) stop at once. What each answer means is decided in one place, the
//! identity sidecar's [`Delivery::from_status`], shared by every client of this project.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use flate2::Compression;
use flate2::write::GzEncoder;
use posthog_alias_sink::posthog::Delivery;
use tokio::sync::{Mutex, watch};

/// How to reach PostHog.
#[derive(Clone)]
pub struct Poster {
    client: reqwest::Client,
    url: String,
    /// The project API key as a JSON string literal (it is only ever put in request bodies).
    key_json: String,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    limiter: Option<Arc<RateLimiter>>,
    pub retries: Arc<AtomicU64>,
}

impl Poster {
    /// `host` is PostHog's capture host (`https://us.i.posthog.com`); `rate` events per second
    /// at most, when given.
    pub fn new(host: &str, api_key: &str, rate: Option<u32>) -> reqwest::Result<Poster> {
        Ok(Poster {
            client: posthog_alias_sink::posthog::client()?,
            url: format!("{}/batch/", host.trim_end_matches('/')),
            key_json: serde_json::Value::from(api_key).to_string(),
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(60),
            limiter: rate.map(|rate| Arc::new(RateLimiter::new(rate))),
            retries: Arc::new(AtomicU64::new(0)),
        })
    }

    /// The gzip body of a request carrying `events` (each already compact JSON).
    pub fn body(&self, events: &[String]) -> Vec<u8> {
        let length: usize = events.iter().map(|event| event.len() + 1).sum();
        let mut json = Vec::with_capacity(length + self.key_json.len() + 64);
        json.extend_from_slice(b"{\"api_key\":");
        json.extend_from_slice(self.key_json.as_bytes());
        json.extend_from_slice(b",\"historical_migration\":true,\"batch\":[");
        for (index, event) in events.iter().enumerate() {
            if index > 0 {
                json.push(b',');
            }
            json.extend_from_slice(event.as_bytes());
        }
        json.extend_from_slice(b"]}");
        let mut gzip = GzEncoder::new(Vec::with_capacity(json.len() / 4), Compression::fast());
        gzip.write_all(&json).expect("writing to memory");
        gzip.finish().expect("writing to memory")
    }

    async fn send(&self, events: &Arc<Vec<String>>, start: usize, end: usize) -> Delivery {
        if let Some(limiter) = &self.limiter {
            limiter.acquire(end - start).await;
        }
        let body = {
            let events = events.clone();
            let poster = self.clone();
            tokio::task::spawn_blocking(move || poster.body(&events[start..end]))
                .await
                .expect("compressing a body does not panic")
        };
        let response = self
            .client
            .post(&self.url)
            .header("Content-Type", "application/json")
            .header("Content-Encoding", "gzip")
            .body(body)
            .send()
            .await;
        match response {
            Ok(response) => posthog_alias_sink::posthog::classify(response).await,
            // reqwest names the URL, never the body (where the key is).
            Err(error) => Delivery::Retry {
                after: None,
                reason: format!("cannot reach PostHog: {error}"),
            },
        }
    }
}

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
pub async fn deliver(
    poster: &Poster,
    events: &Arc<Vec<String>>,
    stop: &mut watch::Receiver<bool>,
) -> Result<Vec<Refused>, Undelivered> {
    let mut refused = Vec::new();
    // Ranges still to send; halves are pushed so the first half goes first.
    let mut work = vec![(0, events.len())];
    let mut backoff = poster.initial_backoff;
    while let Some((start, end)) = work.pop() {
        if *stop.borrow() {
            return Err(Undelivered::Stopped);
        }
        // A request that hangs does not hold up a stop (Ctrl-C, a fatal answer elsewhere).
        let answer = tokio::select! {
            answer = poster.send(events, start, end) => answer,
            () = stopping(stop) => return Err(Undelivered::Stopped),
        };
        match answer {
            Delivery::Accepted => backoff = poster.initial_backoff,
            Delivery::Retry { after, reason } => {
                poster.retries.fetch_add(1, Ordering::Relaxed);
                tracing::warn!("{reason}; retrying {} events", end - start);
                // PostHog's Retry-After wins (within reason); else the capped backoff.
                let wait = after.map_or(backoff, |after| after.min(MAX_RETRY_AFTER));
                backoff = (backoff * 2).min(poster.max_backoff);
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

/// At most `rate` events per second, in a bucket that holds one second's worth.
pub struct RateLimiter {
    rate: f64,
    bucket: Mutex<(f64, Instant)>,
}

impl RateLimiter {
    pub fn new(rate: u32) -> RateLimiter {
        let rate = f64::from(rate.max(1));
        RateLimiter {
            rate,
            bucket: Mutex::new((rate, Instant::now())),
        }
    }

    /// Waits until `count` events may go.
    pub async fn acquire(&self, count: usize) {
        let count = count as f64;
        let wait = {
            let mut bucket = self.bucket.lock().await;
            let (tokens, last) = &mut *bucket;
            let now = Instant::now();
            *tokens =
                (*tokens + now.duration_since(*last).as_secs_f64() * self.rate).min(self.rate);
            *last = now;
            *tokens -= count;
            // A debt is paid by waiting; batches larger than a second's worth still go.
            (*tokens < 0.0).then(|| Duration::from_secs_f64(-*tokens / self.rate))
        };
        if let Some(wait) = wait {
            tokio::time::sleep(wait).await;
        }
    }
}
