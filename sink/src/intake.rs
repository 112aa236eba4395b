//! The HTTP server Vector's `http` sink talks to: `POST /records` (JSON array or NDJSON, gzip
//! allowed, bounded size, optional bearer token), committed to SQLite before the 200;
//! `POST /flush` (every record is in: release aliases and person updates, same token);
//! `GET /status`, `GET /metrics`, `GET /health`. Every failure is one `IntakeError` variant,
//! and one `IntoResponse` maps it to a status code.

use std::io::Read;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;

use crate::records::{RecordError, parse_batch};
use crate::sender::SenderSignals;
use crate::status::prometheus;
use crate::store::Store;

#[derive(Clone)]
pub struct IntakeState {
    pub store: Arc<Mutex<Store>>,
    pub signals: Arc<SenderSignals>,
    /// Required `Authorization: Bearer …` value, if configured.
    pub token: Option<String>,
    /// Largest accepted body after decompression.
    pub max_body_bytes: usize,
    /// How the final person updates are written (`--live-project`).
    pub mode: crate::persons::ProjectMode,
}

pub fn router(state: IntakeState) -> Router {
    let limit = state.max_body_bytes;
    Router::new()
        .route("/records", post(records))
        .route("/flush", post(flush))
        .route("/status", get(status))
        .route("/metrics", get(metrics))
        .route("/health", get(|| async { "ok" }))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state)
}

#[derive(Debug, thiserror::Error)]
enum IntakeError {
    #[error("missing or wrong bearer token")]
    Unauthorized,
    #[error("the body exceeds {0} bytes")]
    TooLarge(usize),
    #[error("invalid gzip: {0}")]
    Gzip(#[source] std::io::Error),
    #[error("{0}")]
    Records(#[source] RecordError),
    /// The store failed: Vector retries 5xx, so nothing is lost.
    #[error("cannot store the batch: {0}")]
    Store(#[source] rusqlite::Error),
    #[error("cannot store the batch: the store lock is poisoned")]
    Poisoned,
    /// The blocking task that holds the store panicked or was cancelled.
    #[error("cannot store the batch: {0}")]
    Task(#[source] tokio::task::JoinError),
}

impl IntoResponse for IntakeError {
    fn into_response(self) -> Response {
        let status = match self {
            IntakeError::Unauthorized => StatusCode::UNAUTHORIZED,
            IntakeError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            IntakeError::Gzip(_) | IntakeError::Records(_) => StatusCode::BAD_REQUEST,
            IntakeError::Store(_) | IntakeError::Poisoned | IntakeError::Task(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
        };
        (status, axum::Json(json!({"error": self.to_string()}))).into_response()
    }
}

/// The bearer token check, when a token is configured.
fn authorize(state: &IntakeState, headers: &HeaderMap) -> Result<(), IntakeError> {
    if let Some(token) = &state.token {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "));
        if given != Some(token.as_str()) {
            return Err(IntakeError::Unauthorized);
        }
    }
    Ok(())
}

/// Every record is in: the aliases and the person updates may go.
async fn flush(
    State(state): State<IntakeState>,
    headers: HeaderMap,
) -> Result<Response, IntakeError> {
    authorize(&state, &headers)?;
    let (mode, signals) = (state.mode, state.signals.clone());
    let result = with_store(&state, move |store| {
        crate::sender::release(store, &signals, mode)
    })
    .await?;
    Ok(
        axum::Json(json!({"persons": result.persons, "new_person_updates": result.new_updates}))
            .into_response(),
    )
}

async fn records(
    State(state): State<IntakeState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, IntakeError> {
    authorize(&state, &headers)?;
    let gzip = headers
        .get(header::CONTENT_ENCODING)
        .is_some_and(|value| value.as_bytes().eq_ignore_ascii_case(b"gzip"))
        || flate2::bufread::GzDecoder::new(&body[..])
            .header()
            .is_some();
    let body = if gzip {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(&body[..])
            .take(state.max_body_bytes as u64 + 1)
            .read_to_end(&mut out)
            .map_err(IntakeError::Gzip)?;
        if out.len() > state.max_body_bytes {
            return Err(IntakeError::TooLarge(state.max_body_bytes));
        }
        out
    } else {
        body.to_vec()
    };
    let batch = parse_batch(&body).map_err(IntakeError::Records)?;
    let result = with_store(&state, move |store| store.ingest(&batch)).await?;
    if result.new_aliases + result.changed_groups > 0 {
        state.signals.new_records.notify_one();
    }
    Ok(axum::Json(json!({"new_aliases": result.new_aliases, "new_conflicts": result.new_conflicts, "changed_groups": result.changed_groups, "changed_persons": result.changed_persons})).into_response())
}

async fn status(State(state): State<IntakeState>) -> Result<Response, IntakeError> {
    // The flags first: the sender records its `last_error` before it raises one, so a status
    // that shows a flag also shows why.
    let credentials_error = state.signals.credentials_error.load(Ordering::SeqCst);
    let wrong_host = state
        .signals
        .wrong_host
        .lock()
        .expect("signals")
        .as_ref()
        .map_or(0, |(status, _)| *status);
    let counts = counts(&state).await?;
    let mut value = serde_json::to_value(&counts).unwrap_or_default();
    value["credentials_error"] = credentials_error.into();
    value["wrong_host"] = wrong_host.into();
    Ok(axum::Json(value).into_response())
}

async fn metrics(State(state): State<IntakeState>) -> Result<Response, IntakeError> {
    let counts = counts(&state).await?;
    let text = prometheus(
        &counts,
        state.signals.credentials_error.load(Ordering::SeqCst),
    );
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response())
}

async fn counts(state: &IntakeState) -> Result<crate::store::OutboxCounts, IntakeError> {
    with_store(state, |store| store.counts()).await
}

/// Runs `work` on the store on a blocking thread (SQLite blocks).
async fn with_store<T: Send + 'static>(
    state: &IntakeState,
    work: impl FnOnce(&mut Store) -> rusqlite::Result<T> + Send + 'static,
) -> Result<T, IntakeError> {
    let store = state.store.clone();
    tokio::task::spawn_blocking(move || {
        let mut store = store.lock().map_err(|_| IntakeError::Poisoned)?;
        work(&mut store).map_err(IntakeError::Store)
    })
    .await
    .map_err(IntakeError::Task)?
}
