//! `PostHogEvent`: one event as PostHog's `/batch/` endpoint takes it (MAPPING.md §2).

use serde::Serialize;
use serde_json::{Map, Value};

use crate::contract::EVENT_SIZE_LIMIT;

/// Fields are declared in byte order of their names, so the derived serialisation is
/// key-sorted like every nested object (serde_json's maps are sorted).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PostHogEvent {
    pub distinct_id: String,
    pub event: String,
    pub properties: Map<String, Value>,
    /// RFC 3339, UTC, three fraction digits, `Z`.
    pub timestamp: String,
    /// Lower-case, hyphenated.
    pub uuid: String,
}

impl PostHogEvent {
    /// Compact JSON, keys sorted by byte order at every level.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// The weight of a serialised event as §2 counts it: every `"` and `\` twice, because
/// PostHog escapes the event once more inside its ingestion envelope.
pub fn weight(json: &str) -> usize {
    json.len()
        + json
            .bytes()
            .filter(|byte| *byte == b'"' || *byte == b'\\')
            .count()
}

/// Whether PostHog would refuse the event for its size (counting can at most double a
/// serialisation, so shorter ones need no count).
pub fn is_too_large(json: &str) -> bool {
    json.len() > EVENT_SIZE_LIMIT / 2 && weight(json) > EVENT_SIZE_LIMIT
}
