//! VRL ≡ native ≡ WASM: the golden fixtures, 200 000 generated rows (several seeds, broken
//! rows included) and arbitrary hostile JSON all map to the same bytes, the same identity
//! records and the same day in every form (`support::forms`).

use crate::helpers::fixtures::load_all;
use crate::helpers::forms::ThreeForms;
use amplitude_posthog::generator::{Generator, GeneratorConfig};
use proptest::prelude::*;

#[test]
fn every_golden_fixture_maps_identically_in_all_three_forms() {
    let mut forms = ThreeForms::new();
    for case in load_all() {
        let result = forms
            .agree_on(&case.line)
            .unwrap_or_else(|difference| panic!("{}::{}: {difference}", case.file, case.name));
        assert_eq!(result, case.expected, "{}::{}", case.file, case.name);
    }
}

/// 200 000 generated rows over 4 seeds, mapped on both cores.
#[test]
fn two_hundred_thousand_generated_rows_map_identically_in_all_three_forms() {
    const SEEDS: [u64; 4] = [101, 202, 303, 404];
    const ROWS_PER_SEED: u64 = 50_000;
    let checked: u64 = std::thread::scope(|scope| {
        let workers: Vec<_> = SEEDS
            .chunks(2)
            .map(|seeds| {
                scope.spawn(move || {
                    let mut forms = ThreeForms::new();
                    let mut checked = 0;
                    for seed in seeds {
                        let config = GeneratorConfig {
                            rows: ROWS_PER_SEED,
                            seed: *seed,
                            broken_share: 0.003,
                            ..GeneratorConfig::default()
                        };
                        for row in Generator::new(config) {
                            if let Err(difference) = forms.agree_on(&row.line) {
                                panic!("seed {seed}: {difference}");
                            }
                            checked += 1;
                        }
                    }
                    checked
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|worker| {
                worker
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .sum()
    });
    assert_eq!(checked, 200_000);
}

/// Field names the mapping reads, so random rows hit its rules rather than unknown keys.
const FIELDS: &[&str] = &[
    "event_type",
    "user_id",
    "device_id",
    "amplitude_id",
    "event_time",
    "client_event_time",
    "server_received_time",
    "server_upload_time",
    "uuid",
    "$insert_id",
    "event_id",
    "session_id",
    "platform",
    "library",
    "os_name",
    "os_version",
    "device_family",
    "device_type",
    "device_model",
    "device_manufacturer",
    "device_brand",
    "device_carrier",
    "country",
    "region",
    "city",
    "dma",
    "language",
    "version_name",
    "start_version",
    "ip_address",
    "location_lat",
    "location_lng",
    "paying",
    "app",
    "groups",
    "group_properties",
    "event_properties",
    "user_properties",
    "message",
];

const EVENT_TYPES: &[&str] = &[
    "[Amplitude] Page Viewed",
    "[Amplitude] Element Clicked",
    "[Amplitude] Form Submitted",
    "[Amplitude] Element Changed",
    "$identify",
    "$groupidentify",
    "session_start",
    "[Amplitude] Application Opened",
    "Custom Event",
    "",
];

const PROPERTY_KEYS: &[&str] = &[
    "[Amplitude] Element Tag",
    "[Amplitude] Element Class",
    "[Amplitude] Element ID",
    "[Amplitude] Element Text",
    "[Amplitude] Element Href",
    "[Amplitude] Page Location",
    "[Amplitude] Page URL",
    "referrer",
    "$revenue",
    "$price",
    "$set",
    "$setOnce",
    "initial_utm_source",
    "$os",
    "token",
    "plan",
    "company",
];

fn scalar() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::{Value, json};
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-1e6f64..1e6).prop_map(|f| json!(f)),
        Just(json!(1720269296000_i64)),
        Just(json!("EMPTY")),
        Just(json!("undefined")),
        Just(json!("2024-07-06 12:34:56.789000")),
        Just(json!("2024-02-30T25:61:00+99:00")),
        Just(json!("0B7A1C8E-3F5D-4C8E-9B1A-6D2F4E8C1A55")),
        Just(json!("Web")),
        Just(json!("iOS")),
        Just(json!("amplitude-ts/2.0")),
        Just(json!("Germany")),
        ".{0,40}".prop_map(Value::String),
        "[ \"\\\\a-zé😀\t\n]{0,12}".prop_map(Value::String),
    ]
}

fn value() -> impl Strategy<Value = serde_json::Value> {
    scalar().prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(serde_json::Value::Array),
            prop::collection::btree_map(
                prop::sample::select(PROPERTY_KEYS).prop_map(str::to_owned),
                inner.clone(),
                0..6
            )
            .prop_map(|map| serde_json::Value::Object(map.into_iter().collect())),
            prop::collection::btree_map(".{0,6}", inner, 0..4)
                .prop_map(|map| serde_json::Value::Object(map.into_iter().collect())),
        ]
    })
}

fn row() -> impl Strategy<Value = Vec<u8>> {
    let fields = prop::collection::btree_map(
        prop::sample::select(FIELDS).prop_map(str::to_owned),
        value(),
        0..16,
    );
    (
        fields,
        prop::sample::select(EVENT_TYPES),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(mut fields, event_type, has_type, has_id)| {
            if has_type {
                fields.insert("event_type".to_owned(), serde_json::Value::from(event_type));
            }
            if has_id {
                fields.insert("device_id".to_owned(), serde_json::Value::from("device-1"));
                fields.insert(
                    "event_time".to_owned(),
                    serde_json::Value::from("2024-07-06 12:34:56"),
                );
            }
            serde_json::to_vec(&fields).expect("serialises")
        })
}

/// Lines that are not even JSON: cut, spliced, deeply nested, or raw bytes.
fn hostile_line() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        row().prop_flat_map(|line| {
            let length = line.len();
            (Just(line), 0..=length).prop_map(|(line, cut)| line[..cut].to_vec())
        }),
        prop::collection::vec(any::<u8>(), 0..64),
        (1usize..300).prop_map(|depth| format!(r#"{{"event_type":"x","user_id":"u","event_time":"2024-07-06 12:34:56","event_properties":{{"a":{}1{}}}}}"#, "[".repeat(depth), "]".repeat(depth)).into_bytes()),
        (0usize..200_000).prop_map(|size| format!(r#"{{"event_type":"x","user_id":"u","event_time":"2024-07-06 12:34:56","event_properties":{{"s":"{}"}}}}"#, "\\\"".repeat(size)).into_bytes()),
    ]
}

thread_local! {
    static FORMS: std::cell::RefCell<ThreeForms> = std::cell::RefCell::new(ThreeForms::new());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1500, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_rows_map_identically_in_all_three_forms(line in row()) {
        FORMS.with(|forms| forms.borrow_mut().agree_on(&line)).map_err(TestCaseError::fail)?;
    }

    #[test]
    fn hostile_lines_map_identically_without_panics_or_traps(line in hostile_line()) {
        let result = FORMS.with(|forms| forms.borrow_mut().agree_on(&line)).map_err(TestCaseError::fail)?;
        prop_assert!(!result.contains("failed on this row"), "a form failed: {}", result);
    }
}
