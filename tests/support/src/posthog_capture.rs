//! A PostHog capture endpoint for tests: real HTTP on 127.0.0.1, implementing the contract of
//! `docs/POSTHOG_AND_AMPLITUDE.md` — `/batch/` body shapes, gzip (header, query or magic bytes), the
//! 20 MB request and ~1 MB event limits, all-or-nothing validation (400), 401 for a missing
//! or malformed key, 200 for an unknown key (events silently dropped, as PostHog does) — and
//! scripted faults: 503 bursts, 429 with `Retry-After`, 413 above a batch size or for events
//! of given names, partial acceptance before a 503, connections cut without an answer (before
//! or after storing), a project that refuses every event, and answers of something that is
//! not PostHog at all (404, 405, redirects).

use crate::loopback::{Connection, LoopbackServer};
use std::collections::{BTreeMap, VecDeque};
use std::io::Read;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

/// PostHog's request limit, compressed and decompressed.
pub const MAX_REQUEST_BYTES: usize = 20 * 1024 * 1024;
/// PostHog's per-event limit ("about 1 MB").
pub const MAX_EVENT_BYTES: usize = 1024 * 1024;

/// A fault the server injects into the next request(s).
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// Answer with this status and nothing accepted.
    Status(u16),
    /// 429 with `Retry-After: seconds`.
    RateLimited { retry_after_seconds: u64 },
    /// Accept the first `accepted` events of the batch, then fail with 503.
    PartialThen503 { accepted: usize },
    /// Close the connection without an answer, nothing stored.
    Disconnect,
    /// Store the batch, then close the connection without an answer (the client cannot know
    /// it arrived, sends it again, and the repeats carry the same uuids).
    StoreThenDisconnect,
}

/// One event PostHog stored.
#[derive(Debug, Clone)]
pub struct StoredEvent {
    pub uuid: Option<String>,
    pub event: Value,
    pub historical_migration: bool,
    /// Which request stored it: requests that stored events, numbered from 0 in the order
    /// they were stored (the arrival order PostHog's ingestion sees).
    pub request: usize,
}

/// Which events a scripted refusal applies to.
pub type EventFilter = Arc<dyn Fn(&Value) -> bool + Send + Sync>;

#[derive(Default)]
struct CaptureState {
    api_key: String,
    /// Requests that stored events so far.
    requests_stored: usize,
    faults: VecDeque<Fault>,
    /// 413 for batches with more events than this.
    max_batch_events: Option<usize>,
    /// Events with this distinct_id are invalid (400 for their whole request).
    refused_distinct_id: Option<String>,
    /// Events this says yes to are refused as too large (413 for their whole request), as
    /// PostHog answers an event over its limit.
    too_large: Option<EventFilter>,
    /// Every request refused as invalid (400), whatever it holds.
    refuse_everything: bool,
    /// Not PostHog at all: every request answered with this status (and `Location`, for a
    /// redirect), as a wrong host or path answers.
    not_posthog: Option<(u16, Option<String>)>,
    stored: Vec<StoredEvent>,
    requests: Vec<RequestRecord>,
    dropped_unknown_key: usize,
}

/// What the server saw of one request.
#[derive(Debug, Clone)]
pub struct RequestRecord {
    /// The status answered; 0 when the connection was cut instead.
    pub status: u16,
    pub events: usize,
    pub gzip: bool,
    pub body_bytes: usize,
}

/// A running capture server; stops when dropped.
pub struct PostHogCapture {
    server: LoopbackServer,
    state: Arc<Mutex<CaptureState>>,
}

impl PostHogCapture {
    /// Starts a server that accepts `api_key` as the project's key.
    pub fn start(api_key: &str) -> PostHogCapture {
        let state = Arc::new(Mutex::new(CaptureState {
            api_key: api_key.to_owned(),
            ..CaptureState::default()
        }));
        let app = Router::new()
            .route("/batch/", post(batch))
            .route("/batch", post(batch))
            // Read oversized bodies whole so the handler answers 413 (closing the connection mid-upload
            // would make the client see a broken pipe instead).
            .layer(axum::extract::DefaultBodyLimit::max(2 * MAX_REQUEST_BYTES))
            .with_state(state.clone());
        PostHogCapture {
            server: LoopbackServer::start(app),
            state,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.server.address)
    }

    pub fn inject(&self, faults: impl IntoIterator<Item = Fault>) {
        self.state.lock().expect("state").faults.extend(faults);
    }

    pub fn limit_batch_events(&self, max: usize) {
        self.state.lock().expect("state").max_batch_events = Some(max);
    }

    /// Makes every event with this distinct_id invalid, as PostHog refuses some ids.
    pub fn refuse_distinct_id(&self, id: &str) {
        self.state.lock().expect("state").refused_distinct_id = Some(id.to_owned());
    }

    /// Refuses every request holding an event `which` says yes to with a 413.
    pub fn refuse_as_too_large(&self, which: impl Fn(&Value) -> bool + Send + Sync + 'static) {
        self.state.lock().expect("state").too_large = Some(Arc::new(which));
    }

    /// Answers 400 to every request from now on (or again normally, with `false`).
    pub fn refuse_everything(&self, refuse: bool) {
        self.state.lock().expect("state").refuse_everything = refuse;
    }

    /// Behaves as something that is not PostHog's capture endpoint: every request gets
    /// `status` (with `Location: location` for a redirect). `None` makes it PostHog again.
    pub fn not_posthog(&self, answer: Option<(u16, Option<&str>)>) {
        self.state.lock().expect("state").not_posthog =
            answer.map(|(status, location)| (status, location.map(str::to_owned)));
    }

    pub fn stored(&self) -> Vec<StoredEvent> {
        self.state.lock().expect("state").stored.clone()
    }

    pub fn requests(&self) -> Vec<RequestRecord> {
        self.state.lock().expect("state").requests.clone()
    }

    pub fn dropped_for_unknown_key(&self) -> usize {
        self.state.lock().expect("state").dropped_unknown_key
    }

    /// Stored events by uuid, with how many times each arrived.
    pub fn uuid_counts(&self) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for event in self.stored() {
            *counts.entry(event.uuid.unwrap_or_default()).or_default() += 1;
        }
        counts
    }
}

/// Every failure of a request, and the one place that maps it to PostHog's status codes.
enum CaptureError {
    TooLarge(String),
    BadRequest(String),
    Unauthorized(String),
    Injected(u16),
    RateLimited(u64),
    /// No answer at all: the connection is cut.
    Disconnect,
}

impl IntoResponse for CaptureError {
    fn into_response(self) -> Response {
        let (status, message) = match self {
            CaptureError::TooLarge(message) => (StatusCode::PAYLOAD_TOO_LARGE, message),
            CaptureError::BadRequest(message) => (StatusCode::BAD_REQUEST, message),
            CaptureError::Unauthorized(message) => (StatusCode::UNAUTHORIZED, message),
            CaptureError::Injected(code) => (
                StatusCode::from_u16(code).unwrap_or(StatusCode::SERVICE_UNAVAILABLE),
                "injected fault".to_owned(),
            ),
            CaptureError::Disconnect => {
                unreachable!("a cut connection has no response")
            }
            CaptureError::RateLimited(seconds) => {
                let mut response = (StatusCode::TOO_MANY_REQUESTS, "rate limited").into_response();
                response.headers_mut().insert(
                    "Retry-After",
                    seconds.to_string().parse().expect("header value"),
                );
                return response;
            }
        };
        (
            status,
            axum::Json(json!({"type": "validation_error", "detail": message})),
        )
            .into_response()
    }
}

async fn batch(
    State(state): State<Arc<Mutex<CaptureState>>>,
    axum::Extension(connection): axum::Extension<Connection>,
    Query(query): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let gzip = headers
        .get("content-encoding")
        .is_some_and(|value| value.as_bytes().eq_ignore_ascii_case(b"gzip"))
        || query
            .get("compression")
            .is_some_and(|value| value == "gzip")
        || body.starts_with(&[0x1f, 0x8b]);
    let body_bytes = body.len();
    let not_posthog = state.lock().expect("state").not_posthog.clone();
    if let Some((status, location)) = not_posthog {
        state.lock().expect("state").requests.push(RequestRecord {
            status,
            events: 0,
            gzip,
            body_bytes,
        });
        let mut response = (
            StatusCode::from_u16(status).unwrap_or(StatusCode::NOT_FOUND),
            [("content-type", "text/html")],
            "<html><body>Not PostHog</body></html>",
        )
            .into_response();
        if let Some(location) = location {
            response
                .headers_mut()
                .insert("Location", location.parse().expect("header value"));
        }
        return response;
    }
    let result = handle(&state, &body, gzip);
    let (status, events) = match &result {
        Ok(events) => (200, *events),
        Err(CaptureError::TooLarge(_)) => (413, 0),
        Err(CaptureError::BadRequest(_)) => (400, 0),
        Err(CaptureError::Unauthorized(_)) => (401, 0),
        Err(CaptureError::Injected(code)) => (*code, 0),
        Err(CaptureError::RateLimited(_)) => (429, 0),
        Err(CaptureError::Disconnect) => (0, 0),
    };
    state.lock().expect("state").requests.push(RequestRecord {
        status,
        events,
        gzip,
        body_bytes,
    });
    match result {
        Ok(_) => axum::Json(json!({"status": "Ok"})).into_response(),
        Err(CaptureError::Disconnect) => connection.cut().await,
        Err(error) => error.into_response(),
    }
}

fn handle(state: &Mutex<CaptureState>, body: &[u8], gzip: bool) -> Result<usize, CaptureError> {
    if body.len() > MAX_REQUEST_BYTES {
        return Err(CaptureError::TooLarge(format!(
            "request of {} bytes exceeds 20 MB",
            body.len()
        )));
    }
    let decompressed;
    let body = if gzip {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(body)
            .take(MAX_REQUEST_BYTES as u64 + 1)
            .read_to_end(&mut out)
            .map_err(|error| CaptureError::BadRequest(format!("invalid gzip: {error}")))?;
        if out.len() > MAX_REQUEST_BYTES {
            return Err(CaptureError::TooLarge(
                "decompressed request exceeds 20 MB".to_owned(),
            ));
        }
        decompressed = out;
        &decompressed[..]
    } else {
        body
    };
    let payload: Value = serde_json::from_slice(body)
        .map_err(|error| CaptureError::BadRequest(format!("invalid JSON: {error}")))?;
    let Value::Object(payload) = payload else {
        return Err(CaptureError::BadRequest(
            "body must be an object".to_owned(),
        ));
    };
    let key = payload.get("api_key").or_else(|| payload.get("token"));
    let key = match key {
        Some(Value::String(key))
            if !key.trim().is_empty() && key.trim().len() <= 64 && key.trim().is_ascii() =>
        {
            key.trim().to_owned()
        }
        _ => {
            return Err(CaptureError::Unauthorized(
                "missing or malformed api_key".to_owned(),
            ));
        }
    };
    let historical_migration = payload.get("historical_migration") == Some(&Value::Bool(true));
    let Some(Value::Array(batch)) = payload.get("batch") else {
        return Err(CaptureError::BadRequest(
            "batch must be an array".to_owned(),
        ));
    };
    // Validation is all-or-nothing: one bad event fails the whole request.
    let (refused, too_large, refuse_everything) = {
        let state = state.lock().expect("state");
        (
            state.refused_distinct_id.clone(),
            state.too_large.clone(),
            state.refuse_everything,
        )
    };
    if refuse_everything && !batch.is_empty() {
        return Err(CaptureError::BadRequest(
            "event 0: this project refuses every event".to_owned(),
        ));
    }
    for (index, event) in batch.iter().enumerate() {
        if too_large.as_ref().is_some_and(|too_large| too_large(event)) {
            return Err(CaptureError::TooLarge(format!(
                "event {index} exceeds 1 MB"
            )));
        }
        if refused.is_some()
            && event.get("distinct_id").and_then(Value::as_str) == refused.as_deref()
        {
            return Err(CaptureError::BadRequest(format!(
                "event {index}: distinct_id {refused:?} is not allowed"
            )));
        }
        validate_event(event).map_err(|reason| match reason {
            EventProblem::TooLarge => CaptureError::TooLarge(format!("event {index} exceeds 1 MB")),
            EventProblem::Invalid(reason) => {
                CaptureError::BadRequest(format!("event {index}: {reason}"))
            }
        })?;
    }
    let mut state = state.lock().expect("state");
    if let Some(max) = state.max_batch_events
        && batch.len() > max
    {
        return Err(CaptureError::TooLarge(format!(
            "batch of {} events is too large",
            batch.len()
        )));
    }
    match state.faults.pop_front() {
        Some(Fault::Status(code)) => return Err(CaptureError::Injected(code)),
        Some(Fault::RateLimited {
            retry_after_seconds,
        }) => return Err(CaptureError::RateLimited(retry_after_seconds)),
        Some(Fault::PartialThen503 { accepted }) => {
            store(
                &mut state,
                &key,
                &batch[..accepted.min(batch.len())],
                historical_migration,
            );
            return Err(CaptureError::Injected(503));
        }
        Some(Fault::Disconnect) => return Err(CaptureError::Disconnect),
        Some(Fault::StoreThenDisconnect) => {
            store(&mut state, &key, batch, historical_migration);
            return Err(CaptureError::Disconnect);
        }
        None => {}
    }
    store(&mut state, &key, batch, historical_migration);
    Ok(batch.len())
}

fn store(state: &mut CaptureState, key: &str, events: &[Value], historical_migration: bool) {
    // PostHog answers 200 for an unknown key and drops the events later.
    if key != state.api_key {
        state.dropped_unknown_key += events.len();
        return;
    }
    let request = state.requests_stored;
    state.requests_stored += 1;
    for event in events {
        let uuid = event.get("uuid").and_then(Value::as_str).map(str::to_owned);
        state.stored.push(StoredEvent {
            uuid,
            event: event.clone(),
            historical_migration,
            request,
        });
    }
}

enum EventProblem {
    TooLarge,
    Invalid(String),
}

fn validate_event(event: &Value) -> Result<(), EventProblem> {
    let Value::Object(fields) = event else {
        return Err(EventProblem::Invalid("not an object".to_owned()));
    };
    match fields.get("event") {
        Some(Value::String(name)) if !name.is_empty() => {}
        _ => {
            return Err(EventProblem::Invalid(
                "event must be a non-empty string".to_owned(),
            ));
        }
    }
    let properties = fields.get("properties");
    if properties.is_some_and(|properties| !properties.is_object()) {
        return Err(EventProblem::Invalid(
            "properties must be an object".to_owned(),
        ));
    }
    let distinct_id = fields
        .get("distinct_id")
        .or_else(|| properties.and_then(|properties| properties.get("distinct_id")));
    if distinct_id.is_none_or(|id| id.is_null() || id.as_str().is_some_and(str::is_empty)) {
        return Err(EventProblem::Invalid("distinct_id is required".to_owned()));
    }
    if let Some(uuid) = fields.get("uuid")
        && !uuid.as_str().is_some_and(is_uuid)
    {
        return Err(EventProblem::Invalid(format!("invalid uuid {uuid}")));
    }
    if fields
        .get("timestamp")
        .is_some_and(|timestamp| !timestamp.is_string())
    {
        return Err(EventProblem::Invalid(
            "timestamp must be a string".to_owned(),
        ));
    }
    if fields.contains_key("offset") {
        return Err(EventProblem::Invalid(
            "this project never sends offset".to_owned(),
        ));
    }
    if serde_json::to_string(event).map_or(0, |json| json.len()) > MAX_EVENT_BYTES {
        return Err(EventProblem::TooLarge);
    }
    Ok(())
}

fn is_uuid(text: &str) -> bool {
    text.len() == 36
        && text.bytes().enumerate().all(|(index, byte)| match index {
            8 | 13 | 18 | 23 => byte == b'-',
            _ => byte.is_ascii_hexdigit(),
        })
}
