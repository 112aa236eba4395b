//! Vector unit tests (`[[tests]]` in `tests/vector/*.toml`): generated from the golden
//! fixtures, and executed here through the `vrl` crate the way `vector test` runs them.

use serde_json::Value;

use super::fixtures::GoldenCase;

/// A string as a VRL string literal (escapes per VRL's lexer; braces escaped so no template
/// syntax can appear).
pub fn vrl_string_literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '{' => out.push_str("\\{"),
            '}' => out.push_str("\\}"),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// What a golden case expects of the remap, which decides the Vector unit test it joins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Mapped,
    Rejected,
    Skipped,
}

impl Kind {
    pub fn of(case: &GoldenCase) -> Kind {
        let expected: Value =
            serde_json::from_str(&case.expected).expect("expected results are JSON");
        if expected.get("events").is_some() {
            Kind::Mapped
        } else if expected.get("rejected").is_some() {
            Kind::Rejected
        } else {
            Kind::Skipped
        }
    }

    fn name(self) -> &'static str {
        match self {
            Kind::Mapped => "mapped",
            Kind::Rejected => "rejected",
            Kind::Skipped => "skipped",
        }
    }
}

/// Where the golden cases enter `vector.toml`'s topology and where each kind of output
/// leaves it.
pub struct Topology {
    /// The remap transform that maps a row.
    pub insert_at: &'static str,
    /// The route output with the PostHog events.
    pub posthog: &'static str,
    /// The route output with the identity records (§3.1).
    pub identities: &'static str,
    /// The remap's output of refused rows.
    pub dropped: &'static str,
}

/// `vector.toml`'s topology.
pub const TOPOLOGY: Topology = Topology {
    insert_at: "events",
    posthog: "outputs.posthog",
    identities: "outputs.identities",
    dropped: "events.dropped",
};

/// One `[[tests]]` for the golden cases of one fixture file that expect the same `kind` of
/// outcome (`vector test` builds a topology per test, about two seconds each, so cases share
/// one). Cases whose input is not UTF-8 are left out: such bytes cannot be written in a Vector
/// config. Vector passes a condition when at least one output event satisfies it, so:
/// - mapped: one condition per expected event, byte for byte, and nothing dropped;
/// - rejected: one condition per case (its original line and its reason), nothing mapped and
///   no identity record;
/// - skipped: no PostHog event and nothing dropped;
/// - and one condition per identity record a case expects, byte for byte.
pub fn vector_test(
    file: &str,
    kind: Kind,
    cases: &[&GoldenCase],
    topology: &Topology,
) -> Option<toml::Table> {
    let cases: Vec<(&GoldenCase, String)> = cases
        .iter()
        .filter_map(|case| Some((*case, String::from_utf8(case.line.clone()).ok()?)))
        .collect();
    if cases.is_empty() {
        return None;
    }
    let mut test = toml::Table::new();
    test.insert(
        "name".into(),
        format!("{}::{}", file.trim_end_matches(".json"), kind.name()).into(),
    );
    let inputs: Vec<toml::Value> = cases
        .iter()
        .map(|(_, line)| {
            let mut input = toml::Table::new();
            input.insert("insert_at".into(), topology.insert_at.into());
            input.insert("type".into(), "log".into());
            let mut fields = toml::Table::new();
            fields.insert("message".into(), line.clone().into());
            input.insert("log_fields".into(), fields.into());
            input.into()
        })
        .collect();
    test.insert("inputs".into(), toml::Value::Array(inputs));
    let mut outputs: Vec<(&str, Vec<String>)> = Vec::new();
    let silent: Vec<&str> = match kind {
        Kind::Mapped => {
            let mut conditions = Vec::new();
            for (case, _) in &cases {
                let expected: Value =
                    serde_json::from_str(&case.expected).expect("expected results are JSON");
                for event in expected["events"].as_array().expect("events") {
                    conditions.push(equals_condition(
                        &event.to_string(),
                        &format!("{}: an expected event is missing", case.name),
                    ));
                }
            }
            outputs.push((topology.posthog, conditions));
            vec![topology.dropped]
        }
        Kind::Rejected => {
            let conditions = cases
                .iter()
                .map(|(case, line)| {
                    let expected: Value =
                        serde_json::from_str(&case.expected).expect("expected results are JSON");
                    format!(
                        "assert!(.message == {} && .metadata.dropped.message == {}, message: {})",
                        vrl_string_literal(line),
                        vrl_string_literal(expected["rejected"].as_str().expect("reason")),
                        vrl_string_literal(&format!("{}: not dropped with its reason", case.name))
                    )
                })
                .collect();
            outputs.push((topology.dropped, conditions));
            vec![topology.posthog, topology.identities]
        }
        Kind::Skipped => vec![topology.posthog, topology.dropped],
    };
    let records: Vec<String> = cases
        .iter()
        .flat_map(|(case, _)| {
            case.identities.iter().flatten().map(|record| {
                equals_condition(
                    record,
                    &format!("{}: an expected identity record is missing", case.name),
                )
            })
        })
        .collect();
    if !records.is_empty() {
        outputs.push((topology.identities, records));
    }
    test.insert(
        "no_outputs_from".into(),
        toml::Value::Array(silent.into_iter().map(toml::Value::from).collect()),
    );
    if !outputs.is_empty() {
        let outputs: Vec<toml::Value> = outputs
            .into_iter()
            .map(|(extract_from, conditions)| {
                let mut output = toml::Table::new();
                output.insert("extract_from".into(), extract_from.into());
                let conditions: Vec<toml::Value> = conditions
                    .into_iter()
                    .map(|source| {
                        let mut condition = toml::Table::new();
                        condition.insert("type".into(), "vrl".into());
                        condition.insert("source".into(), source.into());
                        condition.into()
                    })
                    .collect();
                output.insert("conditions".into(), toml::Value::Array(conditions));
                output.into()
            })
            .collect();
        test.insert("outputs".into(), toml::Value::Array(outputs));
    }
    Some(test)
}

/// A condition that some output is, byte for byte, this JSON.
fn equals_condition(json: &str, message: &str) -> String {
    format!(
        "assert!(encode_json(.) == {}, message: {})",
        vrl_string_literal(json),
        vrl_string_literal(message)
    )
}
