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

/// The `[[tests]]` of one golden case, or `None` when its input cannot be a TOML string
/// (bytes that are not UTF-8 cannot be written in a Vector config).
pub fn vector_test(case: &GoldenCase, transform: &str) -> Option<toml::Table> {
    let line = String::from_utf8(case.line.clone()).ok()?;
    let expected: Value = serde_json::from_str(&case.expected).expect("expected results are JSON");
    let mut test = toml::Table::new();
    test.insert(
        "name".into(),
        format!("{}::{}", case.file.trim_end_matches(".json"), case.name).into(),
    );
    let mut input = toml::Table::new();
    input.insert("insert_at".into(), transform.into());
    input.insert("type".into(), "log".into());
    let mut fields = toml::Table::new();
    fields.insert("message".into(), line.into());
    input.insert("log_fields".into(), fields.into());
    test.insert("inputs".into(), toml::Value::Array(vec![input.into()]));
    let dropped = format!("{transform}.dropped");
    let mut output = toml::Table::new();
    let source = if let Some(events) = expected.get("events").and_then(Value::as_array) {
        test.insert(
            "no_outputs_from".into(),
            toml::Value::Array(vec![dropped.into()]),
        );
        output.insert("extract_from".into(), transform.into());
        let literals: Vec<String> = events
            .iter()
            .map(|event| vrl_string_literal(&event.to_string()))
            .collect();
        // Every output event is one of the expected ones, byte for byte.
        format!(
            "assert!(includes([{}], encode_json(.)), message: \"unexpected event\")",
            literals.join(", ")
        )
    } else if let Some(reason) = expected.get("rejected").and_then(Value::as_str) {
        test.insert(
            "no_outputs_from".into(),
            toml::Value::Array(vec![transform.into()]),
        );
        output.insert("extract_from".into(), dropped.into());
        format!(
            "assert_eq!(.metadata.dropped.message, {}, message: \"wrong reject reason\")",
            vrl_string_literal(reason)
        )
    } else {
        // Skipped: nothing comes out, neither mapped nor dropped.
        test.insert(
            "no_outputs_from".into(),
            toml::Value::Array(vec![transform.to_owned().into(), dropped.into()]),
        );
        return Some(test);
    };
    let mut condition = toml::Table::new();
    condition.insert("type".into(), "vrl".into());
    condition.insert("source".into(), source.into());
    output.insert(
        "conditions".into(),
        toml::Value::Array(vec![condition.into()]),
    );
    test.insert("outputs".into(), toml::Value::Array(vec![output.into()]));
    Some(test)
}
