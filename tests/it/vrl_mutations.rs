//! The differential test has teeth: a one-character change to the VRL program (a property
//! name, an event name, a format) is caught by comparing it with the native crate.

use amplitude_posthog::generator::{Generator, GeneratorConfig};
use amplitude_posthog::vrl_engine::{MAPPING_PROGRAM, VrlProgram};

/// Edits that each change one character of the shipped program.
const MUTATIONS: &[(&str, &str)] = &[
    (
        r#".event_properties."$geoip_city_name" = .city"#,
        r#".event_properties."$geoip_city_nam" = .city"#,
    ),
    (
        r#"posthog_event = "$pageview""#,
        r#"posthog_event = "$pageviex""#,
    ),
    (
        r#"event_timestamp = format_timestamp!(parsed_time, "%Y-%m-%dT%H:%M:%S%.3fZ""#,
        r#"event_timestamp = format_timestamp!(parsed_time, "%Y-%m-%dT%H:%M:%S%.2fZ""#,
    ),
    (r#"web_os = "Mac OS X""#, r#"web_os = "Mac OS Y""#),
    (
        r#""-7" + slice!(digest, 0, 3)"#,
        r#""-6" + slice!(digest, 0, 3)"#,
    ),
];

#[test]
fn a_one_character_change_to_the_vrl_program_is_caught() {
    let rows: Vec<Vec<u8>> = Generator::new(GeneratorConfig {
        rows: 3_000,
        seed: 77,
        ..GeneratorConfig::default()
    })
    .map(|row| row.line)
    .collect();
    for (original, mutated) in MUTATIONS {
        assert_eq!(
            MAPPING_PROGRAM.matches(original).count(),
            1,
            "{original} must occur once in the program"
        );
        let source = MAPPING_PROGRAM.replacen(original, mutated, 1);
        let mut mapper = VrlProgram::compile(&source)
            .unwrap_or_else(|error| panic!("{error}"))
            .mapper();
        let caught = rows
            .iter()
            .any(|line| mapper.map_line(line) != amplitude_posthog_transform::map_line(line));
        assert!(caught, "changing {original} to {mutated} went unnoticed");
    }
}

#[test]
fn the_unchanged_program_agrees_with_the_native_crate_on_the_same_rows() {
    let rows = Generator::new(GeneratorConfig {
        rows: 3_000,
        seed: 77,
        ..GeneratorConfig::default()
    });
    let mut mapper = VrlProgram::mapping().expect("compiles").mapper();
    for row in rows {
        assert_eq!(
            mapper.map_line(&row.line),
            amplitude_posthog_transform::map_line(&row.line)
        );
    }
}
