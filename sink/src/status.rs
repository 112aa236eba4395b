//! What the sidecar reports: `GET /status` (JSON), `GET /metrics` (Prometheus text), and the
//! `status` command.

use crate::store::OutboxCounts;

/// The prefix of every metric name. It keeps the binary's former name
/// (`posthog-alias-sink`): dashboards and alerts are built on these names.
const METRIC_PREFIX: &str = "posthog_alias_sink_";

/// Prometheus text exposition of the counts.
pub fn prometheus(counts: &OutboxCounts, credentials_error: bool) -> String {
    let metrics: [(&str, &str, &str, u64); 11] = [
        (
            "received_records_total",
            "counter",
            "Identity and group records received from Vector.",
            counts.received,
        ),
        (
            "pairs",
            "gauge",
            "Distinct (user, device) pairs stored, conflicts included.",
            counts.pairs,
        ),
        (
            "aliases_pending",
            "gauge",
            "Aliases waiting to be sent to PostHog.",
            counts.pending,
        ),
        (
            "aliases_sent_total",
            "counter",
            "Aliases PostHog accepted.",
            counts.sent,
        ),
        (
            "aliases_failed_total",
            "counter",
            "Aliases PostHog refused (marked failed with a reason).",
            counts.failed,
        ),
        (
            "conflicts",
            "gauge",
            "Later users of an already linked device (not sent).",
            counts.conflicts,
        ),
        (
            "groups",
            "gauge",
            "Groups whose latest properties are stored.",
            counts.groups,
        ),
        (
            "groups_pending",
            "gauge",
            "Group property changes waiting to be sent.",
            counts.groups_pending,
        ),
        (
            "groups_sent_total",
            "counter",
            "Group updates PostHog accepted.",
            counts.groups_sent,
        ),
        (
            "groups_failed_total",
            "counter",
            "Group updates PostHog refused (marked failed with a reason).",
            counts.groups_failed,
        ),
        (
            "credentials_error",
            "gauge",
            "1 when PostHog refused the key and sending stopped.",
            u64::from(credentials_error),
        ),
    ];
    let mut out = String::new();
    for (name, kind, help, value) in metrics {
        out.push_str(&format!("# HELP {METRIC_PREFIX}{name} {help}\n# TYPE {METRIC_PREFIX}{name} {kind}\n{METRIC_PREFIX}{name} {value}\n"));
    }
    out
}
