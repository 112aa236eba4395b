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
//! `metadata.dropped.message` is the reason (`docs/MAPPING.md` §2's reject reasons).
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
    /// Which part of this project refused it (`map`, `migrate`); Vector writes `events`.
    pub component: &'a str,
}

impl DeadLetter<'_> {
    /// The record as one line of JSON, without the newline.
    pub fn to_json(&self) -> String {
        json!({
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
        })
        .to_string()
    }
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
        };
        assert_eq!(
            letter.to_json(),
            r#"{"file":"export/a.json.gz","line":2,"message":"not json","metadata":{"dropped":{"component_id":"map","component_kind":"transform","component_type":"amplitude-posthog","message":"invalid_json","reason":"error"}}}"#
        );
    }
}
