//! An Amplitude Export API for tests: real HTTP on 127.0.0.1 serving zips in Amplitude's
//! exact layout (`<project>/<project>_<YYYY-MM-DD>_<H>#<N>.json.gz`, gzip members whose last
//! line may lack its newline) built from generated rows filed by upload hour. It checks Basic
//! auth and the inclusive `start`/`end` hours, answers 404 for empty ranges and 400 above a
//! size limit, and injects 429, 500, 504 and broken zips on demand.

use crate::loopback::LoopbackServer;
use std::collections::{BTreeMap, VecDeque};
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine as _;
use chrono::{DateTime, NaiveDateTime, Timelike, Utc};
use flate2::Compression;
use flate2::write::GzEncoder;

/// A scripted answer for the next request(s).
#[derive(Debug, Clone, PartialEq)]
pub enum ExportFault {
    Status(u16),
    RateLimited {
        retry_after_seconds: u64,
    },
    /// A 200 whose zip is cut in half.
    BrokenZip,
}

#[derive(Default)]
struct ExportState {
    api_key: String,
    secret_key: String,
    project: u64,
    /// Rows by upload hour, in order.
    hours: BTreeMap<DateTime<Utc>, Vec<Vec<u8>>>,
    /// Answer 400 when a window holds more row bytes than this.
    size_limit: Option<usize>,
    faults: VecDeque<ExportFault>,
    delay: Duration,
    requests: Vec<(String, String, u16)>,
    /// Extra members added to every zip (name, content), e.g. hostile names.
    extra_members: Vec<(String, Vec<u8>)>,
}

pub struct AmplitudeExport {
    server: LoopbackServer,
    state: Arc<Mutex<ExportState>>,
}

impl AmplitudeExport {
    /// Serves `rows` (line, upload time) for `project` behind these keys.
    pub fn start(
        api_key: &str,
        secret_key: &str,
        project: u64,
        rows: impl IntoIterator<Item = (Vec<u8>, DateTime<Utc>)>,
    ) -> AmplitudeExport {
        let mut hours: BTreeMap<DateTime<Utc>, Vec<Vec<u8>>> = BTreeMap::new();
        for (line, uploaded) in rows {
            let hour = uploaded
                .with_minute(0)
                .and_then(|t| t.with_second(0))
                .and_then(|t| t.with_nanosecond(0))
                .expect("hour");
            hours.entry(hour).or_default().push(line);
        }
        let state = Arc::new(Mutex::new(ExportState {
            api_key: api_key.to_owned(),
            secret_key: secret_key.to_owned(),
            project,
            hours,
            ..ExportState::default()
        }));
        let app = Router::new()
            .route("/api/2/export", get(export))
            .with_state(state.clone());
        AmplitudeExport {
            server: LoopbackServer::start(app),
            state,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}/api/2/export", self.server.address)
    }

    pub fn inject(&self, faults: impl IntoIterator<Item = ExportFault>) {
        self.state.lock().expect("state").faults.extend(faults);
    }

    pub fn limit_window_bytes(&self, limit: usize) {
        self.state.lock().expect("state").size_limit = Some(limit);
    }

    pub fn delay_each_request(&self, delay: Duration) {
        self.state.lock().expect("state").delay = delay;
    }

    pub fn add_member(&self, name: &str, content: Vec<u8>) {
        self.state
            .lock()
            .expect("state")
            .extra_members
            .push((name.to_owned(), content));
    }

    /// (start, end, status) of every request.
    pub fn requests(&self) -> Vec<(String, String, u16)> {
        self.state.lock().expect("state").requests.clone()
    }

    /// Every row served, in upload order.
    pub fn all_rows(&self) -> Vec<Vec<u8>> {
        self.state
            .lock()
            .expect("state")
            .hours
            .values()
            .flatten()
            .cloned()
            .collect()
    }
}

fn parse_hour(text: &str) -> Option<DateTime<Utc>> {
    NaiveDateTime::parse_from_str(&format!("{text}:00:00"), "%Y%m%dT%H:%M:%S")
        .ok()
        .map(|naive| naive.and_utc())
}

async fn export(
    State(state): State<Arc<Mutex<ExportState>>>,
    Query(query): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let delay = state.lock().expect("state").delay;
    tokio::time::sleep(delay).await;
    let start = query.get("start").cloned().unwrap_or_default();
    let end = query.get("end").cloned().unwrap_or_default();
    let (status, body, retry_after) = answer(&state, &headers, &start, &end);
    state
        .lock()
        .expect("state")
        .requests
        .push((start, end, status));
    let mut response = (
        StatusCode::from_u16(status).expect("status"),
        Body::from(body),
    )
        .into_response();
    if let Some(seconds) = retry_after {
        response
            .headers_mut()
            .insert("Retry-After", seconds.to_string().parse().expect("header"));
    }
    response
}

fn answer(
    state: &Mutex<ExportState>,
    headers: &HeaderMap,
    start: &str,
    end: &str,
) -> (u16, Vec<u8>, Option<u64>) {
    let mut state = state.lock().expect("state");
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", state.api_key, state.secret_key))
    );
    if headers
        .get("authorization")
        .and_then(|value| value.to_str().ok())
        != Some(expected.as_str())
    {
        return (401, b"Invalid API key".to_vec(), None);
    }
    let (Some(first), Some(last)) = (parse_hour(start), parse_hour(end)) else {
        return (400, b"bad start or end".to_vec(), None);
    };
    if last < first {
        return (400, b"end before start".to_vec(), None);
    }
    match state.faults.pop_front() {
        Some(ExportFault::Status(code)) => return (code, Vec::new(), None),
        Some(ExportFault::RateLimited {
            retry_after_seconds,
        }) => return (429, Vec::new(), Some(retry_after_seconds)),
        Some(ExportFault::BrokenZip) => {
            let zip = build_zip(&state, first, last);
            return (200, zip[..zip.len() / 2].to_vec(), None);
        }
        None => {}
    }
    // `end` is the last hour included.
    let bytes: usize = state
        .hours
        .range(first..=last)
        .flat_map(|(_, rows)| rows)
        .map(Vec::len)
        .sum();
    if bytes == 0 {
        return (404, b"No data for this range".to_vec(), None);
    }
    if state.size_limit.is_some_and(|limit| bytes > limit) {
        return (
            400,
            b"Raw data files were too large to export".to_vec(),
            None,
        );
    }
    (200, build_zip(&state, first, last), None)
}

/// The zip of hours `first ..= last`: one or two members per hour, like Amplitude's.
fn build_zip(state: &ExportState, first: DateTime<Utc>, last: DateTime<Utc>) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    let project = state.project;
    for (hour, rows) in state.hours.range(first..=last) {
        let parts = if rows.len() > 50 { 2 } else { 1 };
        for part in 0..parts {
            let lines: Vec<&[u8]> = rows
                .iter()
                .skip(part)
                .step_by(parts)
                .map(Vec::as_slice)
                .collect();
            // Amplitude's members sometimes end without a newline: every other hour here.
            let mut content = lines.join(&b'\n');
            if hour.hour() % 2 == 0 {
                content.push(b'\n');
            }
            let mut gzip = GzEncoder::new(Vec::new(), Compression::fast());
            gzip.write_all(&content).expect("gzip");
            let name = format!(
                "{project}/{project}_{}_{}#{}.json.gz",
                hour.format("%Y-%m-%d"),
                hour.hour(),
                100 + part * 277
            );
            zip.start_file(name, options).expect("member");
            zip.write_all(&gzip.finish().expect("gzip")).expect("write");
        }
    }
    for (name, content) in &state.extra_members {
        zip.start_file(name.as_str(), options).expect("member");
        zip.write_all(content).expect("write");
    }
    zip.finish().expect("zip").into_inner()
}
