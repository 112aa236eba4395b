//! The three forms of the mapping side by side, and a readable account of how two results
//! differ.

use amplitude_posthog::MappingOutcome;
use amplitude_posthog::engine::{Engine, EngineKind, RowMapper};
use amplitude_posthog_transform::IdentityRecord;
use serde_json::Value;

/// One mapper per form, named.
pub struct ThreeForms {
    pub forms: Vec<(&'static str, Box<dyn RowMapper>)>,
}

impl ThreeForms {
    pub fn new() -> Self {
        let forms = [
            ("vrl", EngineKind::Vrl),
            ("native", EngineKind::Native),
            ("wasm", EngineKind::Wasm),
        ]
        .into_iter()
        .map(|(name, kind)| {
            (
                name,
                Engine::load(kind)
                    .unwrap_or_else(|error| panic!("{name}: {error}"))
                    .mapper(),
            )
        })
        .collect();
        ThreeForms { forms }
    }

    /// Maps a line through every form, its identity records (§3.1) and its day included;
    /// `Err` describes the first disagreement. The result object on agreement.
    pub fn agree_on(&mut self, line: &[u8]) -> Result<String, String> {
        let expected_day = day_by_the_former_rule(line);
        let shown = || {
            String::from_utf8_lossy(line)
                .chars()
                .take(3000)
                .collect::<String>()
        };
        let results: Vec<_> = self
            .forms
            .iter_mut()
            .map(|(name, mapper)| (*name, mapper.map_line_with_identities(line)))
            .collect();
        let (first_name, first) = results.first().expect("at least one form");
        let (first_result, first_identities) = (
            first.outcome.to_result_json(),
            records_json(&first.identities),
        );
        for (name, mapped) in &results {
            if mapped.day != expected_day(&mapped.outcome) {
                return Err(format!(
                    "{name} gives the day {:?} where the events' time, else the row's, gives {:?} for row:\n  {}",
                    mapped.day,
                    expected_day(&mapped.outcome),
                    shown()
                ));
            }
            let identities = records_json(&mapped.identities);
            if mapped.identities != first.identities || identities != first_identities {
                return Err(format!(
                    "{first_name} and {name} give different identity records for row:\n  {}\n{}",
                    shown(),
                    describe_difference(first_name, &first_identities, name, &identities)
                ));
            }
            let result = mapped.outcome.to_result_json();
            if result != first_result {
                return Err(format!(
                    "{first_name} and {name} differ on row:\n  {}\n{}",
                    shown(),
                    describe_difference(first_name, &first_result, name, &result)
                ));
            }
        }
        Ok(first_result)
    }
}

/// Identity records as the sidecar receives them: a JSON array of compact, key-sorted records.
fn records_json(records: &[IdentityRecord]) -> String {
    let records: Vec<String> = records.iter().map(IdentityRecord::to_json).collect();
    format!("[{}]", records.join(","))
}

/// The day `migrate` gave a row before the mapping reported it (kept here as the reference
/// the forms' days must equal): the UTC day of its first event's top-level `timestamp`, else
/// of the row's own time read by the native rule, else none.
fn day_by_the_former_rule(line: &[u8]) -> impl Fn(&MappingOutcome) -> Option<String> {
    let own_time = amplitude_posthog_transform::AmplitudeRow::parse(line)
        .ok()
        .and_then(|row| amplitude_posthog_transform::event_timestamp(&row));
    move |outcome| {
        if let MappingOutcome::Events(events) = outcome
            && let Some(first) = events.first()
        {
            let event: Value = serde_json::from_str(first).expect("an event is JSON");
            return event["timestamp"]
                .as_str()
                .map(|timestamp| timestamp[..10].to_owned());
        }
        own_time
            .as_ref()
            .map(|timestamp| timestamp[..10].to_owned())
    }
}

/// The paths at which two result objects differ, with both values.
pub fn describe_difference(left_name: &str, left: &str, right_name: &str, right: &str) -> String {
    let (Ok(left_value), Ok(right_value)) = (
        serde_json::from_str::<Value>(left),
        serde_json::from_str::<Value>(right),
    ) else {
        return format!("  {left_name}: {left}\n  {right_name}: {right}");
    };
    let mut lines = Vec::new();
    diff_values("", &left_value, &right_value, &mut lines);
    if lines.is_empty() {
        // Same values, different bytes (number formatting, key order).
        lines.push(format!(
            "  same JSON value, different bytes:\n  {left_name}: {left}\n  {right_name}: {right}"
        ));
    }
    lines
        .iter()
        .map(|line| line.replace("{L}", left_name).replace("{R}", right_name))
        .collect::<Vec<_>>()
        .join("\n")
}

fn diff_values(path: &str, left: &Value, right: &Value, out: &mut Vec<String>) {
    match (left, right) {
        (Value::Object(a), Value::Object(b)) => {
            for key in a.keys().chain(b.keys().filter(|key| !a.contains_key(*key))) {
                let child = format!("{path}/{key}");
                match (a.get(key), b.get(key)) {
                    (Some(x), Some(y)) => diff_values(&child, x, y, out),
                    (x, y) => out.push(format!("  {child}: {{L}}={} {{R}}={}", show(x), show(y))),
                }
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (index, (x, y)) in a.iter().zip(b).enumerate() {
                diff_values(&format!("{path}[{index}]"), x, y, out);
            }
        }
        (x, y) if x != y => out.push(format!(
            "  {path}: {{L}}={} {{R}}={}",
            show(Some(x)),
            show(Some(y))
        )),
        _ => {}
    }
}

fn show(value: Option<&Value>) -> String {
    value.map_or_else(
        || "(absent)".to_owned(),
        |value| value.to_string().chars().take(300).collect(),
    )
}
