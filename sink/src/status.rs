//! What the sidecar reports: `GET /status` (JSON), `GET /metrics` (Prometheus text), and the
//! `status` command.

use crate::store::OutboxCounts;

/// The prefix of every metric name. It keeps the binary's former name
/// (`posthog-alias-sink`): dashboards and alerts are built on these names.
const METRIC_PREFIX: &str = "posthog_alias_sink_";

/// Prometheus text exposition of the counts.
pub fn prometheus(counts: &OutboxCounts, credentials_error: bool) -> String {
    let metrics: [(&str, &str, &str, u64); 16] = [
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
            "persons",
            "gauge",
            "Distinct ids whose rows carried person properties.",
            counts.persons,
        ),
        (
            "person_updates_pending",
            "gauge",
            "Final person updates waiting to be sent.",
            counts.persons_pending,
        ),
        (
            "person_updates_sent_total",
            "counter",
            "Final person updates PostHog accepted.",
            counts.persons_sent,
        ),
        (
            "person_updates_failed_total",
            "counter",
            "Final person updates PostHog refused (marked failed with a reason).",
            counts.persons_failed,
        ),
        (
            "released",
            "gauge",
            "1 when every record received is released (flushed): aliases and person updates may go.",
            u64::from(counts.released),
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
