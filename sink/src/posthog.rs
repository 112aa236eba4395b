//! PostHog's `/batch/` endpoint as the sidecar uses it: the request it builds, and the one
//! place that decides what a response means (deliver, retry, split, isolate or stop).

use std::io::Write;
use std::time::Duration;

use flate2::Compression;
use flate2::write::GzEncoder;
use serde_json::{Map, Value, json};

use crate::store::Outgoing;

/// What to do after a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// 200: mark the batch sent.
    Accepted,
    /// 408, 429, 5xx or a network error: try the same batch again later.
    Retry {
        after: Option<Duration>,
        reason: String,
    },
    /// 413: the request is too large; send halves (a single event too large is isolated).
    Split,
    /// 400: some event is refused; bisect to find it and mark it failed with this reason.
    Isolate { reason: String },
    /// 401 or 403: the key is wrong; stop sending and keep everything pending.
    Credentials { status: u16 },
    /// 404, 405 or a redirect: the request did not reach PostHog's capture endpoint (a typo in
    /// the host, the app host instead of the capture host, `http` for `https`). Stop sending,
    /// keep everything pending, and never follow the redirect (it would carry the key
    /// elsewhere). `advice` says which host to use.
    WrongHost { status: u16, advice: String },
}

/// The capture hosts of PostHog's clouds, for advice.
const CLOUD_HOSTS: &str = "US cloud https://us.i.posthog.com, EU cloud https://eu.i.posthog.com, self-hosted: your instance's address";

impl Delivery {
    /// Classifies an HTTP answer; `location` is its `Location` header, if any.
    pub fn from_status(
        status: u16,
        retry_after: Option<&str>,
        location: Option<&str>,
        body: &str,
    ) -> Delivery {
        match status {
            200..=299 => Delivery::Accepted,
            401 | 403 => Delivery::Credentials { status },
            300..=399 => Delivery::WrongHost {
                status,
                advice: match location.and_then(origin) {
                    Some(origin) => format!(
                        "it redirects to {origin}: give that as the host if it is yours ({CLOUD_HOSTS})"
                    ),
                    None => format!(
                        "it redirects elsewhere: give PostHog's capture host ({CLOUD_HOSTS})"
                    ),
                },
            },
            404 | 405 => Delivery::WrongHost {
                status,
                advice: format!(
                    "there is no PostHog /batch/ endpoint there: give PostHog's capture host, without a path ({CLOUD_HOSTS})"
                ),
            },
            413 => Delivery::Split,
            408 | 429 | 500..=599 => Delivery::Retry {
                after: retry_after
                    .and_then(|value| value.trim().parse::<u64>().ok())
                    .map(Duration::from_secs),
                reason: format!("PostHog answered {status}"),
            },
            _ => Delivery::Isolate {
                reason: format!(
                    "PostHog refused the batch ({status}): {}",
                    body.chars().take(300).collect::<String>()
                ),
            },
        }
    }
}

/// `scheme://host[:port]` of a redirect's target.
fn origin(location: &str) -> Option<String> {
    let url = reqwest::Url::parse(location).ok()?;
    let host = url.host_str()?;
    Some(match url.port() {
        Some(port) => format!("{}://{host}:{port}", url.scheme()),
        None => format!("{}://{host}", url.scheme()),
    })
}

/// The HTTP client for PostHog: a timeout, and redirects never followed (a redirected POST
/// would carry the key to another host, or become a bodiless GET).
pub fn client() -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .redirect(reqwest::redirect::Policy::none())
        .build()
}

/// Classifies a response of PostHog's (reading its body).
pub async fn classify(response: reqwest::Response) -> Delivery {
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

/// The PostHog event of an outbox entry.
pub fn event(entry: &Outgoing) -> Value {
    match entry {
        // distinct_id = user, alias = device: the device's anonymous person merges into the
        // user's. The reverse direction breaks on a user's second device.
        Outgoing::Alias {
            device_id,
            user_id,
            timestamp,
            uuid,
        } => json!({
            "event": "$create_alias",
            "distinct_id": user_id,
            "timestamp": timestamp,
            "uuid": uuid,
            "properties": {"alias": device_id, "$geoip_disable": true},
        }),
        Outgoing::Group {
            group_type,
            group_key,
            properties,
            timestamp,
            uuid,
            ..
        } => json!({
            "event": "$groupidentify",
            // posthog-python's group_identify uses the same distinct id.
            "distinct_id": format!("${group_type}_{group_key}"),
            "timestamp": timestamp,
            "uuid": uuid,
            "properties": {"$group_type": group_type, "$group_key": group_key, "$group_set": Value::Object(properties.clone()), "$geoip_disable": true},
        }),
    }
}

/// The gzip body of a `/batch/` request.
pub fn request_body(api_key: &str, entries: &[Outgoing]) -> Vec<u8> {
    let mut body = Map::new();
    body.insert("api_key".into(), Value::from(api_key));
    body.insert("historical_migration".into(), Value::Bool(true));
    body.insert(
        "batch".into(),
        Value::Array(entries.iter().map(event).collect()),
    );
    let json = serde_json::to_vec(&Value::Object(body)).unwrap_or_default();
    let mut gzip = GzEncoder::new(Vec::new(), Compression::fast());
    let _ = gzip.write_all(&json);
    gzip.finish().unwrap_or_default()
}

/// Sends one request and classifies the answer.
pub async fn send(
    client: &reqwest::Client,
    url: &str,
    api_key: &str,
    entries: &[Outgoing],
) -> Delivery {
    let body = request_body(api_key, entries);
    let response = client
        .post(url)
        .header("Content-Type", "application/json")
        .header("Content-Encoding", "gzip")
        .body(body)
        .send()
        .await;
    match response {
        Ok(response) => classify(response).await,
        // The error's text names the URL, never the key (it is only in the body).
        Err(error) => Delivery::Retry {
            after: None,
            reason: format!("cannot reach PostHog: {error}"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_place_decides_what_each_status_means() {
        assert_eq!(
            Delivery::from_status(200, None, None, ""),
            Delivery::Accepted
        );
        assert_eq!(Delivery::from_status(413, None, None, ""), Delivery::Split);
        assert_eq!(
            Delivery::from_status(401, None, None, ""),
            Delivery::Credentials { status: 401 }
        );
        assert_eq!(
            Delivery::from_status(403, None, None, ""),
            Delivery::Credentials { status: 403 }
        );
        assert!(
            matches!(Delivery::from_status(429, Some("7"), None, ""), Delivery::Retry { after: Some(after), .. } if after == Duration::from_secs(7))
        );
        assert!(matches!(
            Delivery::from_status(503, None, None, ""),
            Delivery::Retry { after: None, .. }
        ));
        assert!(matches!(
            Delivery::from_status(408, None, None, ""),
            Delivery::Retry { .. }
        ));
        assert!(
            matches!(Delivery::from_status(400, None, None, "bad uuid"), Delivery::Isolate { reason } if reason.contains("bad uuid"))
        );
        for status in [404, 405] {
            assert!(
                matches!(Delivery::from_status(status, None, None, "<html>"), Delivery::WrongHost { status: got, advice } if got == status && advice.contains("https://us.i.posthog.com"))
            );
        }
        assert_eq!(
            Delivery::from_status(301, None, Some("https://eu.i.posthog.com/batch/"), ""),
            Delivery::WrongHost {
                status: 301,
                advice: format!(
                    "it redirects to https://eu.i.posthog.com: give that as the host if it is yours ({CLOUD_HOSTS})"
                )
            }
        );
        assert!(matches!(
            Delivery::from_status(307, None, None, ""),
            Delivery::WrongHost { status: 307, .. }
        ));
    }
}
