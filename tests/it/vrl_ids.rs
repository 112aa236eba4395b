//! The ids the VRL program builds from SHA-1 (the UUIDv5 fallback of §4, `$session_id` of §6,
//! the `$groupidentify` uuids of §9) equal the same ids computed independently in Rust with
//! the `uuid` and `sha1` crates, over thousands of generated rows.

use amplitude_posthog::MappingOutcome;
use amplitude_posthog::generator::{Generator, GeneratorConfig, Intent};
use amplitude_posthog::vrl_engine::VrlProgram;
use serde_json::{Map, Value};
use sha1::{Digest, Sha1};
use uuid::Uuid;

const NAMESPACE: Uuid = Uuid::from_u128(0x6ba7b811_9dad_11d1_80b4_00c04fd430c8);

fn string_value(row: &Map<String, Value>, key: &str) -> String {
    match row.get(key) {
        Some(Value::String(text)) => text.clone(),
        Some(Value::Number(number)) if number.is_i64() || number.is_u64() => number.to_string(),
        _ => String::new(),
    }
}

fn expected_row_uuid(row: &Map<String, Value>) -> String {
    if let Some(Value::String(given)) = row.get("uuid")
        && given.len() == 36
        && Uuid::try_parse(given).is_ok()
        && given.as_bytes()[8] == b'-'
    {
        return given.to_lowercase();
    }
    let name = format!(
        "amplitude-event:{}|{}|{}|{}|{}",
        string_value(row, "device_id"),
        string_value(row, "$insert_id"),
        string_value(row, "event_id"),
        string_value(row, "event_type"),
        string_value(row, "event_time")
    );
    Uuid::new_v5(&NAMESPACE, name.as_bytes()).to_string()
}

fn expected_session_id(device: &str, session: i64) -> String {
    let hash: String = Sha1::digest(format!("amplitude-session:{device}:{session}").as_bytes())
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    let time = format!("{session:012x}");
    let variant = 8 + u32::from_str_radix(&hash[18..19], 16).expect("hex") % 4;
    format!(
        "{}-{}-7{}-{:x}{}-{}",
        &time[0..8],
        &time[8..12],
        &hash[0..3],
        variant,
        &hash[3..6],
        &hash[6..18]
    )
}

#[test]
fn vrl_session_ids_and_uuid5_fallbacks_equal_the_uuid_crate() {
    let program = VrlProgram::mapping().expect("compiles");
    let mut mapper = program.mapper();
    let config = GeneratorConfig {
        rows: 3_000,
        seed: 11,
        broken_share: 0.0,
        ..GeneratorConfig::default()
    };
    let (mut uuids_checked, mut sessions_checked, mut groups_checked) = (0, 0, 0);
    for generated in Generator::new(config) {
        if generated.intent != Intent::Map {
            continue;
        }
        let original: Map<String, Value> =
            serde_json::from_slice(&generated.line).expect("generated rows are objects");
        // Each row twice: as generated, and without its uuid so the UUIDv5 fallback runs.
        let mut without_uuid = original.clone();
        without_uuid.remove("uuid");
        for row in [original, without_uuid] {
            let line = serde_json::to_vec(&row).expect("serialises");
            let MappingOutcome::Events(events) = mapper.map_line(&line) else {
                panic!("row was not mapped: {}", String::from_utf8_lossy(&line));
            };
            let row_uuid = expected_row_uuid(&row);
            for event in events {
                let event: Value = serde_json::from_str(&event).expect("events are JSON");
                if event["event"] == "$groupidentify" {
                    let group_type = event["properties"]["$group_type"]
                        .as_str()
                        .expect("a group type");
                    let expected = Uuid::new_v5(
                        &NAMESPACE,
                        format!("amplitude-groupidentify:{row_uuid}:{group_type}").as_bytes(),
                    );
                    assert_eq!(
                        event["uuid"],
                        expected.to_string(),
                        "groupidentify uuid of {row:?}"
                    );
                    groups_checked += 1;
                    continue;
                }
                assert_eq!(event["uuid"], row_uuid, "uuid of {row:?}");
                uuids_checked += 1;
                // $identify rows become `$set` events, which carry no session (§8).
                if event["event"] == "$set" {
                    continue;
                }
                if let Some(Value::Number(session)) = row.get("session_id")
                    && let Some(session) = session.as_i64().filter(|s| *s > 0 && *s < 1 << 48)
                {
                    let expected = expected_session_id(&string_value(&row, "device_id"), session);
                    assert_eq!(
                        event["properties"]["$session_id"], expected,
                        "session of {row:?}"
                    );
                    sessions_checked += 1;
                }
            }
        }
    }
    assert!(uuids_checked > 5_000, "only {uuids_checked} uuids checked");
    assert!(
        sessions_checked > 2_000,
        "only {sessions_checked} sessions checked"
    );
    assert!(
        groups_checked > 20,
        "only {groups_checked} groupidentify uuids checked"
    );
}

#[test]
fn session_ids_cover_the_whole_range_of_real_sessions() {
    let program = VrlProgram::mapping().expect("compiles");
    let mut mapper = program.mapper();
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    for index in 0..2_000_u64 {
        // A spread of magnitudes from 1 to 2^48 - 1, with a different device each time.
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let session = (state >> (16 + index % 47)).max(1) as i64 & ((1 << 48) - 1);
        let session = session.max(1);
        let device = format!("device-{index}-{}", state % 997);
        let line = serde_json::json!({
            "event_type": "x", "device_id": device, "session_id": session,
            "event_time": "2024-07-06 12:34:56", "uuid": "0b7a1c8e-3f5d-4c8e-9b1a-6d2f4e8c1a55",
        });
        let MappingOutcome::Events(events) = mapper.map_line(line.to_string().as_bytes()) else {
            panic!("not mapped")
        };
        let event: Value = serde_json::from_str(&events[0]).expect("JSON");
        assert_eq!(
            event["properties"]["$session_id"],
            expected_session_id(&device, session),
            "session {session}"
        );
        let parsed = Uuid::parse_str(event["properties"]["$session_id"].as_str().expect("string"))
            .expect("a UUID");
        assert_eq!(parsed.get_version_num(), 7);
        assert_eq!(
            parsed
                .get_timestamp()
                .map(|ts| ts.to_unix())
                .map(|(s, n)| s as i64 * 1000 + i64::from(n / 1_000_000)),
            Some(session)
        );
    }
}
