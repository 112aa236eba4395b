//! Deliberately broken rows, one kind per reject reason of MAPPING.md §2.

use rand::Rng;
use serde_json::{Value, json};

use super::{GeneratedRow, Intent};
use crate::outcome::RejectReason;

/// Turns a good row into a broken one and records which reject it must get.
pub fn break_row(rng: &mut impl Rng, mut row: GeneratedRow) -> GeneratedRow {
    let reason = match rng.random_range(0..100) {
        0..=29 => RejectReason::InvalidJson,
        30..=34 => RejectReason::NotAnObject,
        35..=44 => RejectReason::MissingEventType,
        45..=64 => RejectReason::NoIdentity,
        65..=89 => RejectReason::BadTimestamp,
        _ => RejectReason::EventTooLarge,
    };
    row.line = match reason {
        RejectReason::InvalidJson => invalid_json(rng, row.line),
        RejectReason::NotAnObject => match rng.random_range(0..3) {
            0 => [b"[".as_slice(), &row.line, b"]"].concat(),
            1 => b"\"just a string\"".to_vec(),
            _ => b"null".to_vec(),
        },
        _ => {
            let mut object: serde_json::Map<String, Value> =
                serde_json::from_slice(&row.line).unwrap_or_default();
            // A marker or group row would be skipped before these checks run.
            object.insert("event_type".into(), json!("Broken Event"));
            match reason {
                RejectReason::MissingEventType => {
                    match rng.random_range(0..3) {
                        0 => object.remove("event_type"),
                        1 => object.insert("event_type".into(), json!("")),
                        _ => object.insert("event_type".into(), json!(42)),
                    };
                }
                RejectReason::NoIdentity => {
                    object.insert(
                        "user_id".into(),
                        json!(["undefined", "null", "", " "][rng.random_range(0..4)]),
                    );
                    object.insert("device_id".into(), Value::Null);
                    if rng.random_bool(0.5) {
                        object.remove("amplitude_id");
                    } else {
                        object.insert("amplitude_id".into(), json!("   "));
                    }
                }
                RejectReason::BadTimestamp => {
                    for field in [
                        "event_time",
                        "client_event_time",
                        "server_received_time",
                        "server_upload_time",
                    ] {
                        match rng.random_range(0..4) {
                            0 => object.remove(field),
                            1 => object.insert(field.into(), json!("2024-13-01 00:00:00")),
                            2 => object.insert(field.into(), json!(1_720_269_296_000_i64)),
                            _ => object.insert(field.into(), json!("2024-07-06 12:34:60")),
                        };
                    }
                }
                _ => {
                    // Over PostHog's per-event limit once serialised, compressible on disk.
                    let blob = "oversized property value ".repeat(38_000);
                    object.insert("event_properties".into(), json!({ "blob": blob }));
                }
            }
            serde_json::to_vec(&Value::Object(object)).unwrap_or_default()
        }
    };
    row.intent = Intent::Reject(reason);
    row
}

fn invalid_json(rng: &mut impl Rng, mut line: Vec<u8>) -> Vec<u8> {
    match rng.random_range(0..4) {
        0 => {
            // A row cut short, as a truncated upload leaves it.
            let cut = rng.random_range(1..line.len().max(2));
            line.truncate(cut);
            line
        }
        1 => [b"\xEF\xBB\xBF".as_slice(), &line].concat(),
        2 => {
            // Latin-1 bytes inside a string: not UTF-8.
            let mut out = b"{\"event_type\":\"Caf\xE9\",".to_vec();
            out.extend_from_slice(&line[1..]);
            out
        }
        _ => {
            let mut out = b"{\"score\":NaN,".to_vec();
            out.extend_from_slice(&line[1..]);
            out
        }
    }
}
