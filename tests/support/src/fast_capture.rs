//! A PostHog capture endpoint for benchmarks: accepts every `/batch/` request (gzip or not)
//! and counts its events and their distinct uuids, and answers every `/records` request of
//! the identity sink, counting its records — no validation, no storage of bodies, so it costs
//! little next to the client being measured. The strict stand-in for tests is
//! [`crate::posthog_capture`].

use std::collections::HashSet;
use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use serde::Deserialize;
use serde::de::IgnoredAny;

use crate::loopback::LoopbackServer;

#[derive(Default)]
struct Counters {
    requests: AtomicU64,
    events: AtomicU64,
    records: AtomicU64,
    uuids: Mutex<HashSet<Box<str>>>,
}

/// A running counting capture endpoint; stops when dropped.
pub struct FastCapture {
    server: LoopbackServer,
    counters: Arc<Counters>,
}

/// What the endpoint has received so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Received {
    pub requests: u64,
    /// Events in accepted `/batch/` requests, repeats included.
    pub events: u64,
    /// Distinct uuids among them.
    pub distinct: u64,
    /// Records posted to `/records` (the identity sink's).
    pub records: u64,
}

#[derive(Deserialize)]
struct Batch<'a> {
    #[serde(borrow)]
    batch: Vec<Event<'a>>,
}

#[derive(Deserialize)]
struct Event<'a> {
    #[serde(borrow, default)]
    uuid: Option<std::borrow::Cow<'a, str>>,
}

impl FastCapture {
    pub fn start() -> FastCapture {
        let counters = Arc::new(Counters::default());
        let app = Router::new()
            .route("/batch/", post(batch))
            .route("/batch", post(batch))
            .route("/records", post(records))
            .layer(axum::extract::DefaultBodyLimit::max(64 * 1024 * 1024))
            .with_state(counters.clone());
        FastCapture {
            server: LoopbackServer::start(app),
            counters,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.server.address)
    }

    pub fn received(&self) -> Received {
        Received {
            requests: self.counters.requests.load(Ordering::SeqCst),
            events: self.counters.events.load(Ordering::SeqCst),
            distinct: self.counters.uuids.lock().expect("uuids").len() as u64,
            records: self.counters.records.load(Ordering::SeqCst),
        }
    }
}

fn body_text(headers: &HeaderMap, body: &[u8]) -> Result<Vec<u8>, StatusCode> {
    let gzip = headers
        .get("content-encoding")
        .is_some_and(|value| value.as_bytes().eq_ignore_ascii_case(b"gzip"))
        || body.starts_with(&[0x1f, 0x8b]);
    if !gzip {
        return Ok(body.to_vec());
    }
    let mut out = Vec::with_capacity(body.len() * 8);
    flate2::read::MultiGzDecoder::new(body)
        .read_to_end(&mut out)
        .map_err(|_| StatusCode::BAD_REQUEST)?;
    Ok(out)
}

async fn batch(
    State(counters): State<Arc<Counters>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    counters.requests.fetch_add(1, Ordering::SeqCst);
    let Ok(text) = body_text(&headers, &body) else {
        return StatusCode::BAD_REQUEST;
    };
    let Ok(parsed) = serde_json::from_slice::<Batch>(&text) else {
        return StatusCode::BAD_REQUEST;
    };
    counters
        .events
        .fetch_add(parsed.batch.len() as u64, Ordering::SeqCst);
    let mut uuids = counters.uuids.lock().expect("uuids");
    for event in parsed.batch {
        if let Some(uuid) = event.uuid {
            uuids.insert(uuid.into());
        }
    }
    StatusCode::OK
}

async fn records(
    State(counters): State<Arc<Counters>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    counters.requests.fetch_add(1, Ordering::SeqCst);
    let Ok(text) = body_text(&headers, &body) else {
        return StatusCode::BAD_REQUEST;
    };
    let Ok(records) = serde_json::from_slice::<Vec<IgnoredAny>>(&text) else {
        return StatusCode::BAD_REQUEST;
    };
    counters
        .records
        .fetch_add(records.len() as u64, Ordering::SeqCst);
    StatusCode::OK
}
