//! `vrl/identities.vrl` through the `vrl` crate: it emits a pair exactly when both ids are
//! usable and differ, with the very timestamp the mapping gives the row, and group snapshots
//! with the mapping's `$groups`; it never fails a row.

use amplitude_posthog::MappingOutcome;
use amplitude_posthog::generator::{Generator, GeneratorConfig};
use amplitude_posthog::vrl_engine::VrlProgram;
use amplitude_posthog_transform::usable_id;
use serde_json::Value;
use vrl::compiler::TimeZone;
use vrl::compiler::runtime::Runtime;
use vrl::compiler::{Target, TargetValue};
use vrl::value::{KeyString, ObjectMap, Secrets};

fn identities(program: &VrlProgram, line: &[u8]) -> Vec<Value> {
    let mut event = ObjectMap::new();
    event.insert(
        KeyString::from("message"),
        vrl::value::Value::Bytes(bytes_of(line)),
    );
    let mut target = TargetValue {
        value: vrl::value::Value::Object(event),
        metadata: vrl::value::Value::Object(ObjectMap::new()),
        secrets: Secrets::default(),
    };
    Runtime::default()
        .resolve(
            &mut target,
            program.program(),
            &TimeZone::Named(chrono_tz::UTC),
        )
        .expect("identities.vrl never fails a row");
    let _ = target.target_get(&vrl::path::OwnedTargetPath::event_root());
    match serde_json::to_value(&target.value).expect("JSON") {
        Value::Array(records) => records,
        other => panic!("expected an array of records, got {other}"),
    }
}

fn bytes_of(line: &[u8]) -> bytes::Bytes {
    bytes::Bytes::copy_from_slice(line)
}

fn string_value(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) if number.is_i64() => Some(number.to_string()),
        _ => None,
    }
}

#[test]
fn identity_records_agree_with_the_mapping_on_generated_rows() {
    let source =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/vrl/identities.vrl"))
            .expect("readable");
    let program = VrlProgram::compile(&source).unwrap_or_else(|error| panic!("{error}"));
    assert!(
        program.warnings().is_empty(),
        "{}",
        program.warnings().join("\n")
    );
    let (mut pairs, mut group_records) = (0, 0);
    for row in Generator::new(GeneratorConfig {
        rows: 10_000,
        seed: 31,
        broken_share: 0.01,
        ..GeneratorConfig::default()
    }) {
        let records = identities(&program, &row.line);
        let parsed: Option<serde_json::Map<String, Value>> = serde_json::from_slice(&row.line).ok();
        let mapped = amplitude_posthog_transform::map_line(&row.line);
        let usable = |key: &str| {
            parsed
                .as_ref()
                .and_then(|row| row.get(key))
                .and_then(string_value)
                .and_then(|id| usable_id(&id).map(str::to_owned))
        };
        let (user, device) = (usable("user_id"), usable("device_id"));
        // Pairs come from every row with a usable pair and a time, skipped or refused ones too:
        // the link is real even when the event is not migrated. The time is the mapping's.
        let timestamp = amplitude_posthog_transform::AmplitudeRow::parse(&row.line)
            .ok()
            .and_then(|row| amplitude_posthog_transform::event_timestamp(&row))
            .map(Value::from);
        let expected_pair =
            matches!((&user, &device), (Some(u), Some(d)) if u != d) && timestamp.is_some();
        let pair = records.iter().find(|record| record["kind"] == "identity");
        match (expected_pair, pair) {
            (true, Some(pair)) => {
                assert_eq!(pair["user_id"].as_str(), user.as_deref());
                assert_eq!(pair["device_id"].as_str(), device.as_deref());
                assert_eq!(
                    Some(pair["timestamp"].clone()),
                    timestamp,
                    "the pair's time is the mapping's time"
                );
                if let MappingOutcome::Events(events) = &mapped {
                    assert_eq!(
                        serde_json::from_str::<Value>(&events[0]).expect("json")["timestamp"],
                        pair["timestamp"]
                    );
                }
                pairs += 1;
            }
            (false, None) => {}
            (expected, got) => panic!(
                "expected a pair: {expected}, got {got:?} for {}",
                String::from_utf8_lossy(&row.line)
                    .chars()
                    .take(500)
                    .collect::<String>()
            ),
        }
        if let Some(groups) = records.iter().find(|record| record["kind"] == "groups") {
            group_records += 1;
            if let MappingOutcome::Events(events) = &mapped {
                let event: Value = serde_json::from_str(&events[0]).expect("json");
                if event["event"] != "$groupidentify" && event["event"] != "$set" {
                    assert_eq!(
                        event["properties"]["$groups"], groups["groups"],
                        "groups agree with the mapping"
                    );
                }
            }
        }
    }
    assert!(pairs > 3_000, "{pairs} pairs");
    assert!(group_records > 1_000, "{group_records} group records");
}

#[test]
fn bad_rows_yield_no_record_and_no_error() {
    let source =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/vrl/identities.vrl"))
            .expect("readable");
    let program = VrlProgram::compile(&source).expect("compiles");
    for line in [
        &b"{not json"[..],
        b"[1,2]",
        b"\xEF\xBB\xBF{\"user_id\":\"u\",\"device_id\":\"d\"}",
        b"",
        b"{\"user_id\":\"u\",\"device_id\":\"u\",\"event_time\":\"2024-07-06 12:00:00\"}",
    ] {
        assert!(
            identities(&program, line).is_empty(),
            "{}",
            String::from_utf8_lossy(line)
        );
    }
}
