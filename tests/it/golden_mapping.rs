//! Golden tests: every rule of MAPPING.md, hand-written expected outputs, through the VRL
//! program exactly as Vector runs it.

use std::collections::BTreeSet;

use crate::helpers::fixtures::{GoldenCase, load_all, load_file};
use amplitude_posthog::vrl_engine::VrlProgram;
use amplitude_posthog::{RejectReason, SkipReason};
use amplitude_posthog_transform::IdentityRecord;

fn check_with_vrl(cases: &[GoldenCase]) {
    let program = VrlProgram::mapping().unwrap_or_else(|error| panic!("{error}"));
    let mut mapper = program.mapper();
    let mut failures = Vec::new();
    for case in cases {
        let mapped = mapper.map_line_with_identities(&case.line);
        let got = mapped.outcome.to_result_json();
        if got != case.expected {
            failures.push(format!(
                "{}::{}\n  expected {}\n  got      {}",
                case.file, case.name, case.expected, got
            ));
        }
        let identities: Vec<String> = mapped
            .identities
            .iter()
            .map(IdentityRecord::to_json)
            .collect();
        if let Some(expected) = &case.identities
            && &identities != expected
        {
            failures.push(format!(
                "{}::{} identity records\n  expected {expected:?}\n  got      {identities:?}",
                case.file, case.name
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

macro_rules! golden_file {
    ($($test:ident => $file:literal),* $(,)?) => {
        $(
            #[test]
            fn $test() {
                check_with_vrl(&load_file($file));
            }
        )*
    };
}

golden_file! {
    rule_01_input_and_json_parsing => "s01_input.json",
    rule_02_rejects_and_skips_in_contract_order => "s02_rejects_and_skips.json",
    rule_02_nesting_limit_of_vector => "s02_nesting_limit.json",
    rule_03_identity => "s03_identity.json",
    rule_03_1_identity_records => "s03_1_identity_records.json",
    rule_04_timestamps => "s04_time.json",
    rule_04_uuid => "s04_uuid.json",
    rule_05_custom_properties => "s05_properties.json",
    rule_05_1_always_added_properties => "s05_1_always_added.json",
    rule_05_2_platform_device_os_browser => "s05_2_platform.json",
    rule_05_3_autocapture_and_web_properties => "s05_3_autocapture.json",
    rule_05_4_revenue => "s05_4_revenue.json",
    rule_06_sessions => "s06_sessions.json",
    rule_07_event_names => "s07_event_names.json",
    rule_08_person_properties => "s08_person_properties.json",
    rule_09_groups => "s09_groups.json",
    rule_10_worked_example => "s10_worked_example.json",
}

#[test]
fn every_fixture_file_is_covered_by_a_test() {
    let covered: BTreeSet<&str> = [
        "s01_input.json",
        "s02_rejects_and_skips.json",
        "s02_nesting_limit.json",
        "s03_identity.json",
        "s03_1_identity_records.json",
        "s04_time.json",
        "s04_uuid.json",
        "s05_properties.json",
        "s05_1_always_added.json",
        "s05_2_platform.json",
        "s05_3_autocapture.json",
        "s05_4_revenue.json",
        "s06_sessions.json",
        "s07_event_names.json",
        "s08_person_properties.json",
        "s09_groups.json",
        "s10_worked_example.json",
    ]
    .into_iter()
    .collect();
    for file in crate::helpers::fixtures::fixture_files() {
        assert!(
            covered.contains(file.as_str()),
            "{file} has no test in golden_mapping.rs"
        );
    }
}

#[test]
fn fixtures_are_many_and_cover_every_reason() {
    let cases = load_all();
    assert!(cases.len() >= 80, "only {} golden cases", cases.len());
    let names: BTreeSet<String> = cases
        .iter()
        .map(|case| format!("{}::{}", case.file, case.name))
        .collect();
    assert_eq!(
        names.len(),
        cases.len(),
        "case names must be unique per file"
    );
    for reason in RejectReason::CONTRACT
        .iter()
        .filter(|reason| **reason != RejectReason::EventTooLarge)
    {
        let expected = format!("{{\"rejected\":\"{}\"}}", reason.as_str());
        assert!(
            cases.iter().any(|case| case.expected == expected),
            "no fixture is rejected with {reason}"
        );
    }
    for reason in SkipReason::ALL {
        let expected = format!("{{\"skipped\":\"{}\"}}", reason.as_str());
        assert!(
            cases.iter().any(|case| case.expected == expected),
            "no fixture is skipped with {reason}"
        );
    }
    // event_too_large needs rows near 900 KB: see mapping_limits.rs.
    assert!(
        cases
            .iter()
            .filter(|case| case.identities.is_some())
            .count()
            >= 10,
        "too few cases give their identity records"
    );
}

#[test]
fn serde_json_sorts_object_keys_by_byte_order() {
    // The canonical form relies on serde_json's default (sorted) map; a dependency enabling
    // `preserve_order` would silently break every comparison.
    let value: serde_json::Value =
        serde_json::from_str(r#"{"b":1,"a":2,"$z":3,"Z":4}"#).expect("valid");
    assert_eq!(
        serde_json::to_string(&value).expect("serialises"),
        r#"{"$z":3,"Z":4,"a":2,"b":1}"#
    );
}
