//! What the supervisor reads from Vector's internal metrics, which the rendered config exports
//! in Prometheus's text format on a loopback port: rows read, events delivered, events still
//! waiting in the HTTP sinks, and an answer from PostHog that stops the migration.

use std::collections::BTreeMap;
use std::time::Duration;

use super::SOURCE_ID;
use crate::migrate::Stop;

/// Sinks whose buffers must drain before the migration is done.
const HTTP_SINKS: [&str; 2] = ["posthog", "identity_sidecar"];

/// What the metrics say about one run of Vector.
#[derive(Debug, Default, Clone, PartialEq)]
pub(super) struct VectorMetrics {
    /// Rows the file source read in this run.
    pub rows: f64,
    /// Events the PostHog sink delivered in this run.
    pub delivered: f64,
    /// Per HTTP sink: events in its buffer, and events read from the buffer but not yet
    /// delivered (in flight).
    pub waiting: f64,
    /// An answer from PostHog that stops the migration (401, 403, 404, 405, 3xx), if any.
    pub refused_key: Option<u16>,
}

impl VectorMetrics {
    /// How the migration stops for PostHog's answer, if it must.
    pub fn stop(&self) -> Option<Stop> {
        let status = self.refused_key?;
        Some(
            match posthog_client::Delivery::from_status(status, None, None, "") {
                posthog_client::Delivery::WrongHost { status, advice } => {
                    Stop::WrongHost { status, advice }
                }
                _ => Stop::Credentials { status },
            },
        )
    }
}

/// PostHog answers that stop the migration when Vector reports them (Vector retries every
/// answer, so they would otherwise repeat for ever): a refused key (401, 403) or a host that is
/// not PostHog's capture endpoint (404, 405, or a redirect as Vector reports its answer).
fn is_fatal_answer(status: u16) -> bool {
    matches!(
        posthog_client::Delivery::from_status(status, None, None, ""),
        posthog_client::Delivery::Credentials { .. } | posthog_client::Delivery::WrongHost { .. }
    )
}

/// Reads Vector's internal metrics; `None` while the exporter is not up.
pub(super) async fn scrape(client: &reqwest::Client, url: &str) -> Option<VectorMetrics> {
    let text = client
        .get(url)
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    Some(parse_metrics(&text))
}

/// The few numbers the supervisor needs from Prometheus's text format.
fn parse_metrics(text: &str) -> VectorMetrics {
    let mut metrics = VectorMetrics::default();
    let mut per_sink: BTreeMap<&str, [f64; 3]> = BTreeMap::new();
    for line in text.lines().filter(|line| !line.starts_with('#')) {
        // `name{label="value",…} value [timestamp]`; label values may hold spaces.
        let (name, labels, rest) = match (line.find('{'), line.rfind('}')) {
            (Some(open), Some(close)) if open < close => {
                (&line[..open], &line[open + 1..close], &line[close + 1..])
            }
            _ => match line.split_once(' ') {
                Some((name, rest)) => (name, "", rest),
                None => continue,
            },
        };
        let value: f64 = rest
            .split_whitespace()
            .next()
            .and_then(|value| value.parse().ok())
            .unwrap_or(0.0);
        let label = |key: &str| {
            labels.split(',').find_map(|pair| {
                pair.strip_prefix(key)?
                    .strip_prefix("=\"")?
                    .strip_suffix('"')
            })
        };
        let component = label("component_id").unwrap_or_default();
        match name {
            "vector_component_received_events_total" if component == SOURCE_ID => {
                metrics.rows += value
            }
            "vector_component_sent_events_total" if component == "posthog" => {
                metrics.delivered += value
            }
            "vector_http_client_responses_total" if component == "posthog" => {
                let status = label("status").unwrap_or_default();
                let code = status.get(..3).and_then(|code| code.parse::<u16>().ok());
                if value > 0.0 && code.is_some_and(is_fatal_answer) {
                    metrics.refused_key = code;
                }
            }
            _ => {}
        }
        if let Some(sink) = HTTP_SINKS.iter().find(|sink| **sink == component) {
            let slot = per_sink.entry(sink).or_default();
            match name {
                "vector_buffer_size_events" => slot[0] += value,
                "vector_buffer_sent_events_total" => slot[1] += value,
                "vector_component_sent_events_total" => slot[2] += value,
                _ => {}
            }
        }
    }
    // Waiting: still in a buffer, or read from it and not yet delivered.
    metrics.waiting = per_sink
        .values()
        .map(|[buffered, read, delivered]| buffered + (read - delivered).max(0.0))
        .sum();
    if per_sink.len() < HTTP_SINKS.len() {
        // A sink not reporting yet is not known to be empty.
        metrics.waiting += 1.0;
    }
    metrics
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waiting_counts_buffered_and_in_flight_events_of_both_http_sinks() {
        let text = r#"# HELP x
vector_component_received_events_total{component_id="amplitude",component_kind="source"} 20 1
vector_buffer_size_events{buffer_id="posthog",component_id="posthog"} 3 1
vector_buffer_sent_events_total{buffer_id="posthog",component_id="posthog"} 10 1
vector_component_sent_events_total{component_id="posthog",component_kind="sink"} 8 1
vector_buffer_size_events{buffer_id="identity_sidecar",component_id="identity_sidecar"} 0 1
vector_buffer_sent_events_total{component_id="identity_sidecar"} 4 1
vector_component_sent_events_total{component_id="identity_sidecar"} 4 1
vector_http_client_responses_total{component_id="posthog",status="200 OK"} 5 1
"#;
        let metrics = parse_metrics(text);
        assert_eq!(metrics.rows, 20.0);
        assert_eq!(metrics.delivered, 8.0);
        assert_eq!(metrics.waiting, 5.0);
        assert_eq!(metrics.refused_key, None);
        let refused = parse_metrics(&format!(
            "{text}vector_http_client_responses_total{{component_id=\"posthog\",status=\"401 Unauthorized\"}} 1 1\n"
        ));
        assert_eq!(refused.refused_key, Some(401));
    }

    #[test]
    fn a_sink_not_reporting_yet_is_not_empty() {
        let text = "vector_buffer_size_events{component_id=\"posthog\"} 0 1\n";
        assert_eq!(parse_metrics(text).waiting, 1.0);
    }
}
