//! The three forms of the mapping side by side, and a readable account of how two results
//! differ.

use amplitude_posthog::engine::{Engine, EngineKind, RowMapper};
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

    /// Maps a line through every form, its identity records (§3.1) included; `Err`
    /// describes the first disagreement. The result object on agreement.
    pub fn agree_on(&mut self, line: &[u8]) -> Result<String, String> {
        let mut results = self.forms.iter_mut().map(|(name, mapper)| {
            let mapped = mapper.map_line_with_identities(line);
            (
                *name,
                mapped.outcome.to_result_json(),
                format!("[{}]", mapped.identities.join(",")),
            )
        });
        let (first_name, first, first_identities) = results.next().expect("at least one form");
        for (name, result, identities) in results {
            if identities != first_identities {
                return Err(format!(
                    "{first_name} and {name} give different identity records for row:\n  {}\n{}",
                    String::from_utf8_lossy(line)
                        .chars()
                        .take(3000)
                        .collect::<String>(),
                    describe_difference(first_name, &first_identities, name, &identities)
                ));
            }
            if result != first {
                return Err(format!(
                    "{first_name} and {name} differ on row:\n  {}\n{}",
                    String::from_utf8_lossy(line)
                        .chars()
                        .take(3000)
                        .collect::<String>(),
                    describe_difference(first_name, &first, name, &result)
                ));
            }
        }
        Ok(first)
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
