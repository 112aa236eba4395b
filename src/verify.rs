//! `verify`: ask PostHog how many migrated events it holds per day and compare with what the
//! migration delivered.
//!
//! PostHog's query API: `POST {app host}/api/projects/{project_id}/query/` with a personal API
//! key (`Authorization: Bearer …`, scope `query:read`) and `{"query": {"kind": "HogQLQuery",
//! "query": "…"}}`; rows come back in `results`, at most 100 unless the query has a `LIMIT`
//! (at most 50 000). One query per calendar month of the migration's days.
//!
//! **Which events are migrated**: every event the mapping produces carries at least one of
//! `$amplitude_user_id`, `$amplitude_device_id`, `$amplitude_id` (`docs/MAPPING.md` §3/§5.1:
//! a row without any of them has no distinct_id and is refused), and a `$groupidentify` event
//! carries `$amplitude_event_type` (§9). The identity sidecar's `$create_alias` events carry
//! none of them, and neither do events captured live by PostHog's SDKs. Counted as distinct
//! uuids, since PostHog merges repeats of one uuid only in the background.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The HogQL condition for "a migrated event".
pub const MIGRATED_EVENT: &str = "(properties.$amplitude_user_id IS NOT NULL OR properties.$amplitude_device_id IS NOT NULL OR properties.$amplitude_id IS NOT NULL OR (event = '$groupidentify' AND properties.$amplitude_event_type IS NOT NULL))";

/// The file `verify` leaves in the state directory (the report shows it).
pub const VERIFY_FILE: &str = "verify.json";

/// Rows per query at most (PostHog's cap with an explicit `LIMIT`).
const LIMIT: usize = 50_000;

/// The count query for the UTC days of one month, `month` = `YYYY-MM`.
pub fn month_query(month: &str) -> Option<String> {
    let (year, month_number) = month.split_once('-')?;
    let (year, month_number): (i32, u32) = (year.parse().ok()?, month_number.parse().ok()?);
    let start = chrono::NaiveDate::from_ymd_opt(year, month_number, 1)?;
    let end = start.checked_add_months(chrono::Months::new(1))?;
    Some(format!(
        "SELECT toString(toDate(toTimeZone(timestamp, 'UTC'))) AS day, count(DISTINCT uuid) AS events \
         FROM events \
         WHERE timestamp >= toDateTime('{start} 00:00:00', 'UTC') AND timestamp < toDateTime('{end} 00:00:00', 'UTC') \
         AND {MIGRATED_EVENT} \
         GROUP BY day ORDER BY day LIMIT {LIMIT}"
    ))
}

/// One day where PostHog and the migration disagree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Difference {
    pub day: String,
    pub delivered: u64,
    pub posthog: u64,
    /// What can explain it, most likely first.
    pub explanations: Vec<String>,
}

/// What `verify` found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verification {
    /// When PostHog was asked (RFC 3339, UTC).
    pub checked_at: String,
    pub app_host: String,
    pub project_id: u64,
    pub queries: u64,
    pub days_checked: u64,
    pub delivered: u64,
    pub posthog: u64,
    pub differences: Vec<Difference>,
}

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error(
        "PostHog answered {status} to the personal API key: give a personal API key (not the project key) with the query:read scope for project {project_id}, and the app host (https://us.posthog.com, https://eu.posthog.com or yours, not the i.posthog.com capture host)"
    )]
    Refused { status: u16, project_id: u64 },
    #[error("PostHog's query API answered {status}: {body}")]
    Failed { status: u16, body: String },
    #[error("cannot reach PostHog's query API at {url}: {source}")]
    Network {
        url: String,
        /// Without its URL (the message names it once).
        source: reqwest::Error,
    },
    #[error("PostHog's query API answered something other than rows: {0}")]
    Answer(String),
}

/// The query API client.
pub struct QueryApi {
    client: reqwest::blocking::Client,
    url: String,
    project_id: u64,
    personal_key: String,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    pub max_attempts: u32,
}

impl QueryApi {
    pub fn new(app_host: &str, project_id: u64, personal_key: &str) -> QueryApi {
        QueryApi {
            client: reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(120))
                .build()
                .expect("an HTTP client"),
            url: format!(
                "{}/api/projects/{project_id}/query/",
                app_host.trim_end_matches('/')
            ),
            project_id,
            personal_key: personal_key.to_owned(),
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
            max_attempts: 8,
        }
    }

    /// Runs one HogQL query; its `results` rows. Retries 429 (honouring `Retry-After`), 5xx and
    /// network errors with capped backoff.
    pub fn query(&self, hogql: &str) -> Result<Vec<Vec<Value>>, VerifyError> {
        let body = json!({"query": {"kind": "HogQLQuery", "query": hogql}}).to_string();
        let mut backoff = self.initial_backoff;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let outcome = self
                .client
                .post(&self.url)
                .bearer_auth(&self.personal_key)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.clone())
                .send();
            let wait = match outcome {
                Err(error) => {
                    if attempt >= self.max_attempts {
                        return Err(VerifyError::Network {
                            url: self.url.clone(),
                            source: error.without_url(),
                        });
                    }
                    backoff
                }
                Ok(response) => {
                    let status = response.status().as_u16();
                    let retry_after = response
                        .headers()
                        .get(reqwest::header::RETRY_AFTER)
                        .and_then(|value| value.to_str().ok())
                        .and_then(|value| value.trim().parse::<u64>().ok())
                        .map(Duration::from_secs);
                    let text = response.text().unwrap_or_default();
                    match status {
                        200..=299 => return rows(&text),
                        401 | 403 => {
                            return Err(VerifyError::Refused {
                                status,
                                project_id: self.project_id,
                            });
                        }
                        429 | 500..=599 if attempt < self.max_attempts => {
                            retry_after.unwrap_or(backoff).min(self.max_backoff)
                        }
                        _ => {
                            return Err(VerifyError::Failed {
                                status,
                                body: text.chars().take(300).collect(),
                            });
                        }
                    }
                }
            };
            std::thread::sleep(wait);
            backoff = (backoff * 2).min(self.max_backoff);
        }
    }
}

fn rows(text: &str) -> Result<Vec<Vec<Value>>, VerifyError> {
    let answer: Value = serde_json::from_str(text)
        .map_err(|_| VerifyError::Answer(text.chars().take(200).collect()))?;
    let results = answer
        .get("results")
        .and_then(Value::as_array)
        .ok_or_else(|| VerifyError::Answer(text.chars().take(200).collect()))?;
    Ok(results
        .iter()
        .map(|row| row.as_array().cloned().unwrap_or_default())
        .collect())
}

/// Asks PostHog for each month of `delivered` (day → events delivered) and compares.
/// `now` decides which days are younger than 48 hours; `finished_at` is when the migration's
/// state last changed (ingestion of historical events takes a while after that).
pub fn verify(
    api: &QueryApi,
    app_host: &str,
    delivered: &BTreeMap<String, u64>,
    now: chrono::DateTime<chrono::Utc>,
    finished_at: Option<chrono::DateTime<chrono::Utc>>,
) -> Result<Verification, VerifyError> {
    let mut months: BTreeMap<&str, ()> = BTreeMap::new();
    for day in delivered.keys() {
        if let Some(month) = day.get(..7) {
            months.insert(month, ());
        }
    }
    let mut posthog: BTreeMap<String, u64> = BTreeMap::new();
    let mut queries = 0;
    for month in months.keys() {
        let Some(query) = month_query(month) else {
            continue;
        };
        queries += 1;
        for row in api.query(&query)? {
            let day = row.first().and_then(Value::as_str).map(str::to_owned);
            let count = row.get(1).and_then(|value| {
                value
                    .as_u64()
                    .or_else(|| value.as_str().and_then(|text| text.parse().ok()))
            });
            match (day, count) {
                (Some(day), Some(count)) => *posthog.entry(day).or_default() += count,
                _ => return Err(VerifyError::Answer(format!("a row {row:?}"))),
            }
        }
    }
    let mut differences = Vec::new();
    let days: std::collections::BTreeSet<&String> =
        delivered.keys().chain(posthog.keys()).collect();
    for day in days {
        let (ours, theirs) = (
            delivered.get(day).copied().unwrap_or(0),
            posthog.get(day).copied().unwrap_or(0),
        );
        if ours != theirs {
            differences.push(Difference {
                day: day.clone(),
                delivered: ours,
                posthog: theirs,
                explanations: explain(day, ours, theirs, now, finished_at),
            });
        }
    }
    Ok(Verification {
        checked_at: now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        app_host: app_host.to_owned(),
        project_id: api.project_id,
        queries,
        days_checked: delivered.len() as u64,
        delivered: delivered.values().sum(),
        posthog: posthog.values().sum(),
        differences,
    })
}

/// The known reasons PostHog's count of a day differs from the migration's.
fn explain(
    day: &str,
    delivered: u64,
    posthog: u64,
    now: chrono::DateTime<chrono::Utc>,
    finished_at: Option<chrono::DateTime<chrono::Utc>>,
) -> Vec<String> {
    let mut explanations = Vec::new();
    let young = chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d")
        .ok()
        .and_then(|date| date.and_hms_opt(0, 0, 0))
        .is_some_and(|start| now.naive_utc() - start < chrono::TimeDelta::hours(72));
    if posthog < delivered {
        if young {
            explanations.push(
                "events younger than 48 hours are not taken by PostHog's historical route: they go through live ingestion, which may still be processing them".to_owned(),
            );
        }
        if finished_at.is_some_and(|finished| now - finished < chrono::TimeDelta::hours(2)) {
            explanations.push(
                "ingestion still running: the migration delivered these less than two hours ago and PostHog's historical ingestion can take hours to make them queryable; run verify again later".to_owned(),
            );
        }
        explanations.push(
            "if it persists: events PostHog accepted (HTTP 200) but did not store — tell PostHog support the day and both counts".to_owned(),
        );
    } else {
        explanations.push(
            "more migrated events in PostHog than this migration delivered: another migration run (a different --state) or another tool sent Amplitude events for this day".to_owned(),
        );
    }
    explanations.push(
        "not persons: merged persons change distinct_id, never these counts (distinct event uuids)"
            .to_owned(),
    );
    explanations
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_month_query_spans_the_months_utc_days_and_counts_distinct_uuids() {
        let query = month_query("2024-12").expect("a month");
        assert!(query.contains("timestamp >= toDateTime('2024-12-01 00:00:00', 'UTC')"));
        assert!(query.contains("timestamp < toDateTime('2025-01-01 00:00:00', 'UTC')"));
        assert!(query.contains("count(DISTINCT uuid)"));
        assert!(query.contains(MIGRATED_EVENT));
        assert!(query.ends_with("LIMIT 50000"));
        assert_eq!(month_query("unknown"), None);
    }

    #[test]
    fn young_days_and_a_recent_finish_are_named_as_explanations() {
        let now = chrono::DateTime::parse_from_rfc3339("2024-06-10T12:00:00Z")
            .expect("time")
            .to_utc();
        let recent = Some(now - chrono::TimeDelta::minutes(10));
        let young = explain("2024-06-09", 10, 8, now, recent);
        assert!(young[0].contains("48 hours"));
        assert!(young[1].contains("ingestion still running"));
        let old = explain("2024-01-09", 10, 8, now, None);
        assert!(old[0].starts_with("if it persists"));
        let more = explain("2024-01-09", 8, 10, now, None);
        assert!(more[0].starts_with("more migrated events"));
    }
}
