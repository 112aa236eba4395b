//! A `/batch/` request and its answer: the body (`{"api_key", "historical_migration": true,
//! "batch": [...]}`, gzip) built from events that are already compact JSON, sent with a
//! timeout and never redirected (a redirected POST would carry the key to another host or
//! become a bodiless GET).

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use flate2::Compression;
use flate2::write::GzEncoder;

use crate::answer::Delivery;
use crate::rate::RateLimiter;

/// How to reach PostHog.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    url: String,
    /// The project API key as a JSON string literal (it is only ever put in request bodies).
    key_json: String,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    limiter: Option<Arc<RateLimiter>>,
    pub retries: Arc<AtomicU64>,
}

impl Client {
    /// `host` is PostHog's capture host (`https://us.i.posthog.com`); at most `rate`.
    pub fn new(host: &str, api_key: &str, rate: crate::rate::Rate) -> reqwest::Result<Client> {
        Client::sharing(
            &format!("{}/batch/", host.trim_end_matches('/')),
            api_key,
            rate.limiter(),
        )
    }

    /// A client of the `/batch/` endpoint at `url` whose requests count against `limiter`
    /// with every other client sharing it (one total rate for a whole migration).
    pub fn sharing(
        url: &str,
        api_key: &str,
        limiter: Option<Arc<RateLimiter>>,
    ) -> reqwest::Result<Client> {
        Ok(Client {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .redirect(reqwest::redirect::Policy::none())
                .build()?,
            url: url.to_owned(),
            key_json: serde_json::Value::from(api_key).to_string(),
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(60),
            limiter,
            retries: Arc::new(AtomicU64::new(0)),
        })
    }

    /// The rate limit this client's requests count against, to share with other clients.
    pub fn limiter(&self) -> Option<Arc<RateLimiter>> {
        self.limiter.clone()
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

    /// Sends `events[start..end]` (after the rate limit allows them) and says what the answer
    /// means.
    pub async fn send(&self, events: &Arc<Vec<String>>, start: usize, end: usize) -> Delivery {
        if let Some(limiter) = &self.limiter {
            limiter.acquire(end - start).await;
        }
        let body = {
            let events = events.clone();
            let client = self.clone();
            tokio::task::spawn_blocking(move || client.body(&events[start..end]))
                .await
                .expect("compressing a body does not panic")
        };
        let response = self
            .http
            .post(&self.url)
            .header("Content-Type", "application/json")
            .header("Content-Encoding", "gzip")
            .body(body)
            .send()
            .await;
        match response {
            Ok(response) => classify(response).await,
            // reqwest names the URL, never the body (where the key is).
            Err(error) => Delivery::Retry {
                after: None,
                reason: format!("cannot reach PostHog: {error}"),
            },
        }
    }
}

/// Classifies a response of PostHog's (reading its body).
async fn classify(response: reqwest::Response) -> Delivery {
    let status = response.status().as_u16();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned)
    };
    let (retry_after, location) = (header("retry-after"), header("location"));
    let text = response.text().await.unwrap_or_default();
    Delivery::from_status(status, retry_after.as_deref(), location.as_deref(), &text)
}
