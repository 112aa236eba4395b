//! Golden mapping fixtures: `tests/fixtures/mapping/*.json` (format in that directory's README).

use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde::Deserialize;
use serde_json::Value;

#[derive(Debug, Deserialize)]
struct RawCase {
    name: String,
    input: Option<Value>,
    input_line: Option<String>,
    input_base64: Option<String>,
    expected: Option<Value>,
    expected_exact: Option<String>,
    identities: Option<Vec<Value>>,
}

/// One golden case: the input line and the exact result object it must map to.
#[derive(Debug, Clone)]
pub struct GoldenCase {
    pub file: String,
    pub name: String,
    pub line: Vec<u8>,
    /// `{"events":[…]}`, `{"skipped":"…"}` or `{"rejected":"…"}`, compact and key-sorted.
    pub expected: String,
    /// The row's identity records (§3.1), compact and key-sorted, where the case gives them.
    pub identities: Option<Vec<String>>,
}

pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mapping")
}

/// Canonical form: compact JSON with keys sorted by byte order (serde_json's default map).
pub fn canonical(value: &Value) -> String {
    serde_json::to_string(value).expect("a JSON value serialises")
}

pub fn load_file(file_name: &str) -> Vec<GoldenCase> {
    let path = fixtures_dir().join(file_name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()));
    let raw: Vec<RawCase> = serde_json::from_str(&text)
        .unwrap_or_else(|error| panic!("{} is not valid: {error}", path.display()));
    raw.into_iter()
        .map(|case| {
            let line = match (case.input, case.input_line, case.input_base64) {
                (Some(object), None, None) => serde_json::to_vec(&object).expect("serialises"),
                (None, Some(line), None) => line.into_bytes(),
                (None, None, Some(encoded)) => base64::engine::general_purpose::STANDARD
                    .decode(encoded)
                    .unwrap_or_else(|error| {
                        panic!("{file_name}/{}: bad base64: {error}", case.name)
                    }),
                _ => panic!(
                    "{file_name}/{}: give exactly one of input, input_line, input_base64",
                    case.name
                ),
            };
            let expected = match (case.expected, case.expected_exact) {
                (Some(value), None) => canonical(&value),
                (None, Some(exact)) => exact,
                _ => panic!(
                    "{file_name}/{}: give exactly one of expected, expected_exact",
                    case.name
                ),
            };
            GoldenCase {
                file: file_name.to_owned(),
                name: case.name,
                line,
                expected,
                identities: case
                    .identities
                    .map(|records| records.iter().map(canonical).collect()),
            }
        })
        .collect()
}

pub fn fixture_files() -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(fixtures_dir())
        .expect("fixtures directory exists")
        .filter_map(|entry| entry.ok())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".json"))
        .collect();
    files.sort();
    files
}

pub fn load_all() -> Vec<GoldenCase> {
    fixture_files()
        .iter()
        .flat_map(|file| load_file(file))
        .collect()
}
