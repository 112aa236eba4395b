//! The one shape of a dead letter, for every writer in the project.
//!
//! Vector's `file` sink on the remap's `.dropped` output fixes the shape (it is Vector's event
//! with `metadata.dropped` added, written as JSON); `map --rejects` and every other writer in
//! this project produce the same record, plus the line number Vector does not know:
//!
//! ```json
//! {"file":"export/187520/187520_2024-07-06_12#70.json.gz","line":42,
//!  "message":"<the original row, as text>",
//!  "metadata":{"dropped":{"component_id":"map","component_kind":"transform",
//!              "component_type":"amplitude-posthog","message":"no_identity","reason":"error"}}}
//! ```
//!
//! `message` is the row exactly as read (lossy UTF-8 only for a row that was not UTF-8, which
//! is `invalid_json` anyway), so `jq -r '.message'` replays rows from either writer;
//! `metadata.dropped.message` is the reason (`docs/MAPPING.md` §2's reject reasons). A row too
//! long to hold whole keeps only its start in `message`, and the record adds
//! `"truncated":{"row_bytes":N,"kept_bytes":K}` (on the Vector path `prepare` writes those,
//! since Vector discards such a row).
//! Documented once, in `docs/ARCHITECTURE.md` ("Dead letters").

use serde_json::json;

/// One refused row and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter<'a> {
    /// The export file the row came from, as the user named it (`<stdin>` for standard input).
    pub file: &'a str,
    /// The row's 1-based line number in that file (after decompression).
    pub line: u64,
    /// The row as read, without its newline.
    pub row: &'a [u8],
    /// The reason: a reject reason of the mapping, or PostHog's answer.
    pub reason: &'a str,
    /// Which part of this project refused it (`map`, `migrate`, `prepare`); Vector writes
    /// `events`.
    pub component: &'a str,
    /// For a row too long to hold (see [`crate::input::MAX_LINE_BYTES`]): its whole length;
    /// `row` is then only its start, and the record says so in `truncated`.
    pub cut: Option<u64>,
}

impl DeadLetter<'_> {
    /// The record as one line of JSON, without the newline.
    pub fn to_json(&self) -> String {
        let mut record = json!({
            "file": self.file,
            "line": self.line,
            "message": String::from_utf8_lossy(self.row),
            "metadata": {
                "dropped": {
                    "component_id": self.component,
                    "component_kind": "transform",
                    "component_type": "amplitude-posthog",
                    "message": self.reason,
                    "reason": "error",
                }
            }
        });
        if let Some(length) = self.cut {
            record["truncated"] = json!({"row_bytes": length, "kept_bytes": self.row.len()});
        }
        record.to_string()
    }
}

/// An identity update PostHog refused for good (an alias or a group snapshot, which stand for
/// many rows, so no file or line): `message` is the event as it was sent, the reason PostHog's
/// answer, `component_id` `identities`.
pub fn identity_letter(event: &serde_json::Value, reason: &str) -> String {
    json!({
        "message": event.to_string(),
        "metadata": {
            "dropped": {
                "component_id": "identities",
                "component_kind": "sink",
                "component_type": "amplitude-posthog",
                "message": reason,
                "reason": "error",
            }
        }
    })
    .to_string()
}

/// Writes a dead letter for every identity update the store holds as refused, one per line.
pub fn write_identity_letters(
    store: &posthog_identity_sidecar::store::Store,
    writer: &mut dyn std::io::Write,
) -> std::io::Result<()> {
    store
        .for_each_refused(|entry, reason| {
            let letter = identity_letter(&posthog_identity_sidecar::posthog::event(entry), reason);
            writer.write_all(letter.as_bytes())?;
            writer.write_all(b"\n")
        })
        .map_err(std::io::Error::other)?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dead_letter_has_vectors_shape_and_the_line_number() {
        let letter = DeadLetter {
            file: "export/a.json.gz",
            line: 2,
            row: b"not json",
            reason: "invalid_json",
            component: "map",
            cut: None,
        };
        assert_eq!(
            letter.to_json(),
            r#"{"file":"export/a.json.gz","line":2,"message":"not json","metadata":{"dropped":{"component_id":"map","component_kind":"transform","component_type":"amplitude-posthog","message":"invalid_json","reason":"error"}}}"#
        );
    }

    #[test]
    fn a_cut_row_says_how_long_it_was_and_how_much_is_kept() {
        let letter = DeadLetter {
            file: "export/a.json.gz",
            line: 7,
            row: b"{\"event_type\":\"x\",\"event_properties\":{\"blob\":\"aaaa",
            reason: "event_too_large",
            component: "migrate",
            cut: Some(5_000_000),
        };
        let record: serde_json::Value = serde_json::from_str(&letter.to_json()).expect("json");
        assert_eq!(
            record["truncated"],
            json!({"row_bytes": 5_000_000, "kept_bytes": 50})
        );
        assert_eq!(record["metadata"]["dropped"]["message"], "event_too_large");
    }
}
