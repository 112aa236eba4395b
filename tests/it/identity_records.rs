//! The identity records (docs/MAPPING.md §3.1) of the VRL program, as Vector runs it: on
//! 10 000 generated rows, a pair exactly when the row is not refused and both ids are usable
//! and differ, with the very timestamp of the row's events; a groups record exactly when the
//! row has groups, with the events' `$groups`; nothing for a refused row. (That the native rule
//! gives the same bytes is the differential test's business.)

use amplitude_posthog::MappingOutcome;
use amplitude_posthog::generator::{Generator, GeneratorConfig};
use amplitude_posthog::vrl_engine::VrlProgram;
use amplitude_posthog_transform::usable_id;
use serde_json::{Value, json};

fn string_value(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) if number.is_i64() => Some(number.to_string()),
        _ => None,
    }
}

#[test]
fn identity_records_follow_the_rule_on_generated_rows() {
    let program = VrlProgram::mapping().unwrap_or_else(|error| panic!("{error}"));
    let mut mapper = program.mapper();
    let (mut pairs, mut group_records, mut persons) = (0, 0, 0);
    for row in Generator::new(GeneratorConfig {
        rows: 10_000,
        seed: 31,
        broken_share: 0.01,
        ..GeneratorConfig::default()
    }) {
        let mapped = mapper.map_line_with_identities(&row.line);
        let records: Vec<Value> = mapped
            .identities
            .iter()
            .map(|record| serde_json::from_str(&record.to_json()).expect("a JSON record"))
            .collect();
        let shown = || {
            String::from_utf8_lossy(&row.line)
                .chars()
                .take(500)
                .collect::<String>()
        };
        if matches!(mapped.outcome, MappingOutcome::Rejected(_)) {
            assert!(
                records.is_empty(),
                "a refused row gave records: {}",
                shown()
            );
            continue;
        }
        let parsed: Option<serde_json::Map<String, Value>> = serde_json::from_slice(&row.line).ok();
        let usable = |key: &str| {
            parsed
                .as_ref()
                .and_then(|row| row.get(key))
                .and_then(string_value)
                .and_then(|id| usable_id(&id).map(str::to_owned))
        };
        let (user, device) = (usable("user_id"), usable("device_id"));
        // The time is the mapping's (§4), whether the row is mapped or skipped.
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
                assert_eq!(Some(pair["timestamp"].clone()), timestamp);
                if let MappingOutcome::Events(events) = &mapped.outcome {
                    let event: Value = serde_json::from_str(&events[0]).expect("json");
                    assert_eq!(event["timestamp"], pair["timestamp"]);
                }
                pairs += 1;
            }
            (false, None) => {}
            (expected, got) => panic!("expected a pair: {expected}, got {got:?} for {}", shown()),
        }
        if let Some(groups) = records.iter().find(|record| record["kind"] == "groups") {
            group_records += 1;
            assert_eq!(Some(groups["timestamp"].clone()), timestamp);
            if let MappingOutcome::Events(events) = &mapped.outcome {
                let event: Value = serde_json::from_str(&events[0]).expect("json");
                if event["event"] != "$groupidentify" && event["event"] != "$set" {
                    assert_eq!(
                        event["properties"]["$groups"], groups["groups"],
                        "groups agree with the events' $groups"
                    );
                }
            }
        }
        // A mapped row's person record carries exactly its event's `$set` and `$set_once`
        // (a `$groupidentify` event carries none), for the event's distinct id and time.
        let person = records.iter().find(|record| record["kind"] == "person");
        let carried = match &mapped.outcome {
            MappingOutcome::Events(events) => {
                let event: Value = serde_json::from_str(&events[0]).expect("json");
                let part = |name: &str| event["properties"].get(name).cloned();
                (part("$set").is_some() || part("$set_once").is_some()).then(|| {
                    json!({
                        "kind": "person",
                        "distinct_id": event["distinct_id"],
                        "set": part("$set").unwrap_or(json!({})),
                        "set_once": part("$set_once").unwrap_or(json!({})),
                        "timestamp": event["timestamp"],
                    })
                })
            }
            _ => None,
        };
        assert_eq!(person, carried.as_ref(), "{}", shown());
        if person.is_some() {
            persons += 1;
        }
        // Records come after the events and are nothing else.
        assert!(records.iter().all(|record| {
            record["kind"] == "identity" || record["kind"] == "groups" || record["kind"] == "person"
        }));
    }
    assert!(persons > 3_000, "{persons} person records");
    assert!(pairs > 3_000, "{pairs} pairs");
    assert!(group_records > 1_000, "{group_records} group records");
}

#[test]
fn bad_rows_yield_no_record_and_no_panic() {
    let program = VrlProgram::mapping().expect("compiles");
    let mut mapper = program.mapper();
    for line in [
        &b"{not json"[..],
        b"[1,2]",
        b"\xEF\xBB\xBF{\"user_id\":\"u\",\"device_id\":\"d\"}",
        b"",
        b"{\"event_type\":\"e\",\"user_id\":\"u\",\"device_id\":\"u\",\"event_time\":\"2024-07-06 12:00:00\"}",
    ] {
        assert!(
            mapper.map_line_with_identities(line).identities.is_empty(),
            "{}",
            String::from_utf8_lossy(line)
        );
    }
}
