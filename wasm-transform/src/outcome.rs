//! The result of mapping one Amplitude row, shared by every form of the mapping.

use std::fmt;

/// Why a row was refused (MAPPING.md §2). Refused rows go to the dead-letter output.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RejectReason {
    InvalidJson,
    NotAnObject,
    MissingEventType,
    NoIdentity,
    BadTimestamp,
    EventTooLarge,
    /// A failure that is not one of the contract's reasons: a bug in a mapping program.
    /// It is kept (not swallowed) so the row is dead-lettered with the real message.
    Unexpected(String),
}

impl RejectReason {
    /// The contract's reasons, in the order MAPPING.md §2 checks them.
    pub const CONTRACT: [RejectReason; 6] = [
        RejectReason::InvalidJson,
        RejectReason::NotAnObject,
        RejectReason::MissingEventType,
        RejectReason::NoIdentity,
        RejectReason::BadTimestamp,
        RejectReason::EventTooLarge,
    ];

    pub fn as_str(&self) -> &str {
        match self {
            RejectReason::InvalidJson => "invalid_json",
            RejectReason::NotAnObject => "not_an_object",
            RejectReason::MissingEventType => "missing_event_type",
            RejectReason::NoIdentity => "no_identity",
            RejectReason::BadTimestamp => "bad_timestamp",
            RejectReason::EventTooLarge => "event_too_large",
            RejectReason::Unexpected(message) => message,
        }
    }

    /// Reads a reason string; anything that is not a contract reason is `Unexpected`.
    pub fn parse(reason: &str) -> RejectReason {
        RejectReason::CONTRACT
            .iter()
            .find(|known| known.as_str() == reason)
            .cloned()
            .unwrap_or_else(|| RejectReason::Unexpected(reason.to_owned()))
    }
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a row was intentionally not migrated (MAPPING.md §2). Skips are counted, not errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SkipReason {
    SessionMarker,
    GroupidentifyWithoutGroups,
}

impl SkipReason {
    pub const ALL: [SkipReason; 2] = [
        SkipReason::SessionMarker,
        SkipReason::GroupidentifyWithoutGroups,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SkipReason::SessionMarker => "session_marker",
            SkipReason::GroupidentifyWithoutGroups => "groupidentify_without_groups",
        }
    }

    pub fn parse(reason: &str) -> Option<SkipReason> {
        SkipReason::ALL
            .into_iter()
            .find(|known| known.as_str() == reason)
    }
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What one input row became.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MappingOutcome {
    /// PostHog events, each serialised as compact JSON with keys sorted by byte order.
    Events(Vec<String>),
    Skipped(SkipReason),
    Rejected(RejectReason),
}

impl MappingOutcome {
    /// The one-line result object of `map --format results` and of the WASM ABI:
    /// `{"events":[…]}`, `{"skipped":"…"}` or `{"rejected":"…"}`.
    pub fn to_result_json(&self) -> String {
        match self {
            MappingOutcome::Events(events) => {
                let mut out =
                    String::with_capacity(12 + events.iter().map(|e| e.len() + 1).sum::<usize>());
                out.push_str("{\"events\":[");
                for (index, event) in events.iter().enumerate() {
                    if index > 0 {
                        out.push(',');
                    }
                    out.push_str(event);
                }
                out.push_str("]}");
                out
            }
            MappingOutcome::Skipped(reason) => {
                format!("{{\"skipped\":{}}}", json_string(reason.as_str()))
            }
            MappingOutcome::Rejected(reason) => {
                format!("{{\"rejected\":{}}}", json_string(reason.as_str()))
            }
        }
    }
}

fn json_string(text: &str) -> String {
    serde_json::Value::String(text.to_owned()).to_string()
}
