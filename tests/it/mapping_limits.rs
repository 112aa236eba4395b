//! Limits and input shapes of the mapping that golden fixtures cannot hold: PostHog's event
//! size limit at its exact boundary, JSON nesting depth, already-parsed input (as from Vector's
//! `aws_s3` source with a JSON codec), and the tables the VRL program keeps its own copy of.

use amplitude_posthog::vrl_engine::{MAPPING_PROGRAM, VrlProgram};
use amplitude_posthog::{MappingOutcome, RejectReason};
use serde_json::{Value, json};

/// PostHog's per-event limit as MAPPING.md §2 counts it.
const EVENT_LIMIT: usize = 900_000;

fn map(line: &[u8]) -> MappingOutcome {
    VrlProgram::mapping()
        .expect("compiles")
        .mapper()
        .map_line(line)
}

/// Weight of an event as §2 counts it: its bytes, with `"` and `\` counted twice.
fn weight(event: &str) -> usize {
    event.len()
        + event
            .bytes()
            .filter(|byte| *byte == b'"' || *byte == b'\\')
            .count()
}

fn row_with_blob(blob: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "event_type": "Big Event",
        "user_id": "user-1",
        "event_time": "2024-07-06 12:34:56.789000",
        "uuid": "0b7a1c8e-3f5d-4c8e-9b1a-6d2f4e8c1a55",
        "event_properties": {"blob": blob},
    }))
    .expect("serialises")
}

fn single_event(outcome: MappingOutcome) -> String {
    match outcome {
        MappingOutcome::Events(mut events) if events.len() == 1 => events.remove(0),
        other => panic!("expected one event, got {other:?}"),
    }
}

#[test]
fn event_of_exactly_900000_weighted_bytes_is_accepted_and_one_more_is_rejected() {
    let base = weight(&single_event(map(&row_with_blob(""))));
    let fill = EVENT_LIMIT - base;
    let at_limit = single_event(map(&row_with_blob(&"a".repeat(fill))));
    assert_eq!(weight(&at_limit), EVENT_LIMIT);
    assert_eq!(
        map(&row_with_blob(&"a".repeat(fill + 1))),
        MappingOutcome::Rejected(RejectReason::EventTooLarge)
    );
}

#[test]
fn quotes_and_backslashes_count_twice_toward_the_limit() {
    let base = weight(&single_event(map(&row_with_blob(""))));
    // Each `"` is written `\"` in the event and weighs 4; 4 * n + base must stay <= limit.
    let quotes = (EVENT_LIMIT - base) / 4;
    let accepted = single_event(map(&row_with_blob(&"\"".repeat(quotes))));
    assert!(weight(&accepted) <= EVENT_LIMIT);
    assert!(
        accepted.len() < 500_000,
        "the serialisation alone is far below the limit"
    );
    let over = "\"".repeat(quotes + 1) + "aaaa";
    assert_eq!(
        map(&row_with_blob(&over)),
        MappingOutcome::Rejected(RejectReason::EventTooLarge)
    );
}

#[test]
fn the_raw_line_shortcut_holds_for_the_most_amplifying_row() {
    // An element id made of quotes is copied into $elements_chain twice with its quotes
    // escaped: the worst amplification the program's 80 000-byte shortcut must survive.
    let id = "\"".repeat(39_000);
    let line = serde_json::to_vec(&json!({
        "event_type": "[Amplitude] Element Clicked",
        "user_id": "user-1",
        "event_time": "2024-07-06 12:34:56.789000",
        "uuid": "0b7a1c8e-3f5d-4c8e-9b1a-6d2f4e8c1a55",
        "event_properties": {"[Amplitude] Element ID": id},
    }))
    .expect("serialises");
    assert!(
        line.len() <= 80_000,
        "the row is under the shortcut's threshold: {}",
        line.len()
    );
    let event = single_event(map(&line));
    assert!(
        weight(&event) <= EVENT_LIMIT,
        "weight {} exceeds the limit",
        weight(&event)
    );
    assert!(
        weight(&event) > 700_000,
        "the row really amplifies: weight {}",
        weight(&event)
    );
}

#[test]
fn json_nesting_beyond_serde_json_recursion_limit_is_invalid_json() {
    let deep = |levels: usize| {
        format!(
            r#"{{"event_type":"x","user_id":"u","event_time":"2024-07-06 12:34:56","event_properties":{{"a":{}1{}}}}}"#,
            "[".repeat(levels),
            "]".repeat(levels)
        )
    };
    assert!(matches!(
        map(deep(100).as_bytes()),
        MappingOutcome::Events(_)
    ));
    assert_eq!(
        map(deep(200).as_bytes()),
        MappingOutcome::Rejected(RejectReason::InvalidJson)
    );
}

#[test]
fn an_already_parsed_row_maps_like_its_raw_line() {
    let row = json!({
        "event_type": "[Amplitude] Page Viewed",
        "user_id": "user-1",
        "device_id": "d-1",
        "event_time": "2024-07-06 12:34:56.789000",
        "session_id": 1720269296000_i64,
        "platform": "Web",
        "os_name": "Chrome",
        "message": "a field of the row, not a raw line",
        "event_properties": {"[Amplitude] Page URL": "https://example.com/"},
    });
    let program = VrlProgram::mapping().expect("compiles");
    let from_line = program
        .mapper()
        .map_line_with_identities(&serde_json::to_vec(&row).expect("serialises"));
    let parsed: vrl::value::Value = row.into();
    let from_object = program.mapper().map_value(parsed);
    assert_eq!(from_object, from_line);
    assert!(matches!(from_object.outcome, MappingOutcome::Events(_)));
    assert_eq!(
        from_object.identities.len(),
        2,
        "the user → device pair and the person record"
    );
}

#[test]
fn the_program_compiles_without_warnings() {
    let program = VrlProgram::mapping().unwrap_or_else(|error| panic!("{error}"));
    assert!(
        program.warnings().is_empty(),
        "{}",
        program.warnings().join("\n")
    );
}

/// The VRL program keeps its own copy of data/countries.tsv; they must agree line for line.
#[test]
fn the_vrl_country_table_equals_data_countries_tsv() {
    let tsv = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/data/countries.tsv"))
        .expect("readable");
    let expected: Vec<String> = tsv
        .lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .map(|line| line.replace('\t', "\\t"))
        .collect();
    let start = MAPPING_PROGRAM
        .find("country_table = \"\n")
        .expect("the program has a country table")
        + "country_table = \"\n".len();
    let end = start
        + MAPPING_PROGRAM[start..]
            .find("\n\"")
            .expect("the table ends");
    let in_program: Vec<String> = MAPPING_PROGRAM[start..end]
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(in_program, expected);
}

/// `data/countries.tsv` is the contract's table (docs/MAPPING.md §5.2): two comment lines,
/// then one `name<TAB>ISO 3166-1 alpha-2` per line, each name once and already trimmed, and
/// the entries real exports rely on (the worked example's Germany among them) map as ISO says.
#[test]
fn data_countries_tsv_is_a_well_formed_iso_table() {
    let tsv = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/data/countries.tsv"))
        .expect("readable");
    let mut names = std::collections::BTreeMap::new();
    for (index, line) in tsv.lines().enumerate() {
        if index < 2 {
            assert!(
                line.starts_with("# "),
                "line {}: a comment: {line:?}",
                index + 1
            );
            continue;
        }
        let (name, code) = line
            .split_once('\t')
            .unwrap_or_else(|| panic!("line {}: name<TAB>code: {line:?}", index + 1));
        assert_eq!(name, name.trim(), "line {}: untrimmed name", index + 1);
        assert!(!name.is_empty(), "line {}: empty name", index + 1);
        assert!(
            code.len() == 2 && code.bytes().all(|byte| byte.is_ascii_uppercase()),
            "line {}: {code:?} is not an alpha-2 code",
            index + 1
        );
        assert!(
            names.insert(name.to_owned(), code.to_owned()).is_none(),
            "line {}: {name:?} twice",
            index + 1
        );
    }
    assert!(names.len() > 200, "{} countries", names.len());
    for (name, code) in [
        ("Germany", "DE"),
        ("United States", "US"),
        ("United Kingdom", "GB"),
        ("France", "FR"),
        ("Japan", "JP"),
        ("Brazil", "BR"),
        ("India", "IN"),
    ] {
        assert_eq!(names.get(name).map(String::as_str), Some(code), "{name}");
    }
}

/// The VRL program's `|`-delimited copy of MAPPING.md §3's refused ids equals the Rust crate's
/// list (the one source of truth), bare and in both kinds of quotes.
#[test]
fn the_vrl_refused_id_tables_list_exactly_the_contract_ids() {
    let mut expected: Vec<String> = Vec::new();
    for quote in ["", "'", "\""] {
        for id in amplitude_posthog_transform::REFUSED_IDS {
            expected.push(format!("{quote}{id}{quote}"));
        }
    }
    let line = MAPPING_PROGRAM
        .lines()
        .find(|line| line.starts_with("refused_ids = "))
        .expect("the program has the table");
    let literal: Value =
        serde_json::from_str(line.trim_start_matches("refused_ids = ")).expect("a string literal");
    let table = literal.as_str().expect("a string");
    let in_program: Vec<String> = table
        .trim_matches('|')
        .split('|')
        .map(str::to_owned)
        .collect();
    assert_eq!(in_program, expected);
}
