//! PostHog's query API on loopback, as `verify` uses it (docs/POSTHOG_AND_AMPLITUDE.md,
//! "Query API"): `POST /api/projects/{id}/query/` with `Authorization: Bearer <personal key>`
//! and `{"query": {"kind": "HogQLQuery", "query": "…"}}`, rows in `results`, at most 100 rows
//! without a `LIMIT`, a `LIMIT` above 50 000 refused with 400, 401 for a wrong key, 403 for
//! another project. It answers the one query shape `verify` sends — distinct uuids of
//! migrated events per UTC day over a time range — from the events a capture stand-in stored
//! (given as a function, so it always sees the current store), and refuses any other query
//! with 400, so a change of the query shape fails the tests instead of passing unnoticed.

use std::collections::{BTreeMap, BTreeSet, HashSet, VecDeque};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

use crate::loopback::LoopbackServer;

/// The events the API answers from (each as PostHog stored it: `event`, `uuid`,
/// `timestamp`, `properties`).
pub type EventSource = Arc<dyn Fn() -> Vec<Value> + Send + Sync>;

/// A status to answer instead of the rows, once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryFault {
    Status(u16),
    /// 429 with `Retry-After: seconds`.
    RateLimited {
        retry_after_seconds: u64,
    },
}

struct QueryState {
    personal_key: String,
    project_id: u64,
    source: EventSource,
    hidden: HashSet<String>,
    faults: VecDeque<QueryFault>,
    queries: Vec<String>,
}

pub struct PostHogQuery {
    server: LoopbackServer,
    state: Arc<Mutex<QueryState>>,
}

impl PostHogQuery {
    pub fn start(personal_key: &str, project_id: u64, source: EventSource) -> PostHogQuery {
        let state = Arc::new(Mutex::new(QueryState {
            personal_key: personal_key.to_owned(),
            project_id,
            source,
            hidden: HashSet::new(),
            faults: VecDeque::new(),
            queries: Vec::new(),
        }));
        let app = Router::new()
            .route("/api/projects/{project}/query/", post(query))
            .with_state(state.clone());
        PostHogQuery {
            server: LoopbackServer::start(app),
            state,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.server.address)
    }

    /// Events with these uuids are no longer found (as if PostHog had lost them).
    pub fn hide(&self, uuids: impl IntoIterator<Item = String>) {
        self.state.lock().expect("state").hidden.extend(uuids);
    }

    pub fn inject(&self, faults: impl IntoIterator<Item = QueryFault>) {
        self.state.lock().expect("state").faults.extend(faults);
    }

    /// The HogQL of every query answered with rows.
    pub fn queries(&self) -> Vec<String> {
        self.state.lock().expect("state").queries.clone()
    }
}

fn error(status: StatusCode, detail: &str) -> Response {
    (
        status,
        axum::Json(json!({"type": "validation_error", "detail": detail})),
    )
        .into_response()
}

async fn query(
    State(state): State<Arc<Mutex<QueryState>>>,
    Path(project): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut state = state.lock().expect("state");
    let authorised = headers
        .get("authorization")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .is_some_and(|key| key == state.personal_key);
    if !authorised {
        return error(StatusCode::UNAUTHORIZED, "Invalid personal API key.");
    }
    if project != state.project_id.to_string() {
        return error(
            StatusCode::FORBIDDEN,
            "You don't have access to the project.",
        );
    }
    if let Some(fault) = state.faults.pop_front() {
        return match fault {
            QueryFault::Status(status) => error(
                StatusCode::from_u16(status).expect("a status"),
                "injected fault",
            ),
            QueryFault::RateLimited {
                retry_after_seconds,
            } => (
                StatusCode::TOO_MANY_REQUESTS,
                [("retry-after", retry_after_seconds.to_string())],
                "rate limited",
            )
                .into_response(),
        };
    }
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        return error(StatusCode::BAD_REQUEST, "Malformed JSON.");
    };
    if request["query"]["kind"] != "HogQLQuery" {
        return error(StatusCode::BAD_REQUEST, "Unknown query kind.");
    }
    let Some(hogql) = request["query"]["query"].as_str() else {
        return error(StatusCode::BAD_REQUEST, "No query.");
    };
    let Some(parsed) = Parsed::of(hogql) else {
        return error(
            StatusCode::BAD_REQUEST,
            "The stand-in answers only verify's per-day count of migrated events.",
        );
    };
    if parsed.limit > 50_000 {
        return error(StatusCode::BAD_REQUEST, "LIMIT is at most 50000.");
    }
    let mut per_day: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for event in (state.source)() {
        let uuid = event["uuid"].as_str().unwrap_or_default().to_owned();
        let timestamp = event["timestamp"].as_str().unwrap_or_default();
        if state.hidden.contains(&uuid)
            || !is_migrated(&event)
            || timestamp < parsed.from.as_str()
            || timestamp >= parsed.to.as_str()
        {
            continue;
        }
        per_day
            .entry(timestamp.get(..10).unwrap_or_default().to_owned())
            .or_default()
            .insert(uuid);
    }
    state.queries.push(hogql.to_owned());
    let results: Vec<Value> = per_day
        .into_iter()
        .take(parsed.limit)
        .map(|(day, uuids)| json!([day, uuids.len()]))
        .collect();
    axum::Json(json!({
        "columns": ["day", "events"],
        "types": [["day", "String"], ["events", "UInt64"]],
        "results": results,
        "hasMore": false,
    }))
    .into_response()
}

/// What the stand-in understands of a query: the time range (as ISO strings comparable with
/// the stored events' `timestamp`) and the row limit.
struct Parsed {
    from: String,
    to: String,
    limit: usize,
}

impl Parsed {
    fn of(hogql: &str) -> Option<Parsed> {
        let required = [
            "SELECT toString(toDate(toTimeZone(timestamp, 'UTC'))) AS day, count(DISTINCT uuid) AS events",
            "FROM events",
            "properties.$amplitude_user_id IS NOT NULL",
            "properties.$amplitude_device_id IS NOT NULL",
            "properties.$amplitude_id IS NOT NULL",
            "event = '$groupidentify' AND properties.$amplitude_event_type IS NOT NULL",
            "GROUP BY day",
        ];
        if !required.iter().all(|part| hogql.contains(part)) {
            return None;
        }
        let bound = |prefix: &str| -> Option<String> {
            let rest = &hogql[hogql.find(prefix)? + prefix.len()..];
            let value = rest.split('\'').next()?;
            // '2024-01-01 00:00:00' → 2024-01-01T00:00:00 (events' timestamps are ISO 8601 UTC).
            Some(value.replacen(' ', "T", 1))
        };
        let limit = match hogql.rsplit_once("LIMIT ") {
            Some((_, limit)) => limit.trim().parse().ok()?,
            None => 100,
        };
        Some(Parsed {
            from: bound("timestamp >= toDateTime('")?,
            to: bound("timestamp < toDateTime('")?,
            limit,
        })
    }
}

/// `verify`'s definition of a migrated event, evaluated on a stored event.
fn is_migrated(event: &Value) -> bool {
    let properties = &event["properties"];
    let present = |key: &str| !properties[key].is_null();
    present("$amplitude_user_id")
        || present("$amplitude_device_id")
        || present("$amplitude_id")
        || (event["event"] == "$groupidentify" && present("$amplitude_event_type"))
}
