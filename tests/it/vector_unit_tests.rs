//! The Vector unit tests in `tests/vector/` — generated from the golden fixtures so that
//! `vector test vector.toml tests/vector/*.toml` can run wherever Vector is installed — and a
//! harness that executes those same `[[tests]]` here: the remap transform's VRL through the
//! `vrl` crate (as Vector runs it, with `reroute_dropped`), the conditions as VRL programs.

use std::collections::BTreeMap;
use std::path::Path;

use crate::helpers::fixtures::{GoldenCase, load_all};
use crate::helpers::vector_tests::{Kind, TOPOLOGY, vector_test};
use amplitude_posthog::vrl_engine::VrlProgram;
use vrl::compiler::runtime::Runtime;
use vrl::compiler::{TargetValue, TimeZone};
use vrl::value::{KeyString, ObjectMap, Secrets, Value};

const GENERATED: &str = "tests/vector/mapping_tests.toml";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn generate() -> String {
    // One test per fixture file and kind of outcome, in the fixtures' order.
    let cases = load_all();
    let mut groups: BTreeMap<(String, Kind), Vec<&GoldenCase>> = BTreeMap::new();
    for case in &cases {
        groups
            .entry((case.file.clone(), Kind::of(case)))
            .or_default()
            .push(case);
    }
    let tests: Vec<toml::Value> = groups
        .iter()
        .filter_map(|((file, kind), cases)| vector_test(file, *kind, cases, &TOPOLOGY))
        .map(toml::Value::Table)
        .collect();
    let mut document = toml::Table::new();
    document.insert("tests".into(), toml::Value::Array(tests));
    format!(
        "# Generated from tests/fixtures/mapping/ by tests/it/vector_unit_tests.rs; do not edit.\n\
         # Regenerate: UPDATE_VECTOR_TESTS=1 cargo test --workspace --release --test it vector_unit_tests\n\
         # Run with Vector: vector test vector.toml tests/vector/mapping_tests.toml\n\
         # (Fixtures whose input is not UTF-8 cannot be written in TOML and are left out.)\n\n{}",
        toml::to_string_pretty(&document).expect("serialises")
    )
}

#[test]
fn the_generated_vector_tests_are_up_to_date() {
    let generated = generate();
    let path = root().join(GENERATED);
    if std::env::var_os("UPDATE_VECTOR_TESTS").is_some() {
        std::fs::write(&path, &generated).expect("write the generated tests");
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "{GENERATED} is stale: run UPDATE_VECTOR_TESTS=1 cargo test --workspace --release --test it vector_unit_tests"
    );
}

/// One remap transform of vector.toml, run as Vector runs it.
struct Remap {
    program: VrlProgram,
    reroute_dropped: bool,
}

impl Remap {
    /// Output name → events (`<id>` and `<id>.dropped`).
    fn run(&self, id: &str, event: Value) -> BTreeMap<String, Vec<Value>> {
        let mut outputs = BTreeMap::from([
            (id.to_owned(), Vec::new()),
            (format!("{id}.dropped"), Vec::new()),
        ]);
        let mut target = TargetValue {
            value: event.clone(),
            metadata: Value::Object(ObjectMap::new()),
            secrets: Secrets::default(),
        };
        match Runtime::default().resolve(
            &mut target,
            self.program.program(),
            &TimeZone::Named(chrono_tz::UTC),
        ) {
            Ok(_) => match target.value {
                Value::Array(events) => outputs.get_mut(id).expect("output").extend(events),
                single => outputs.get_mut(id).expect("output").push(single),
            },
            Err(error) if self.reroute_dropped => {
                // Vector reroutes the original event, annotated with why it was dropped.
                let message =
                    amplitude_posthog::vrl_engine::dropped_message(&error.get_expression_error());
                let mut dropped = event;
                let annotation: Value = serde_json::json!({
                    "dropped": {"reason": "error", "message": message, "component_id": id, "component_type": "remap", "component_kind": "transform"}
                })
                .into();
                if let Value::Object(fields) = &mut dropped {
                    fields.insert(KeyString::from("metadata"), annotation);
                }
                outputs
                    .get_mut(&format!("{id}.dropped"))
                    .expect("output")
                    .push(dropped);
            }
            Err(_) => {}
        }
        outputs
    }
}

fn load_remaps(config: &toml::Table) -> BTreeMap<String, Remap> {
    let transforms = config
        .get("transforms")
        .and_then(toml::Value::as_table)
        .expect("vector.toml has transforms");
    transforms
        .iter()
        .filter(|(_, transform)| {
            transform.get("type").and_then(toml::Value::as_str) == Some("remap")
        })
        .map(|(id, transform)| {
            // A program in a file, or a short one inline (`source`).
            let source = match transform.get("file").and_then(toml::Value::as_str) {
                Some(file) => std::fs::read_to_string(root().join(file)).expect("program readable"),
                None => transform
                    .get("source")
                    .and_then(toml::Value::as_str)
                    .expect("a remap has a file or a source")
                    .to_owned(),
            };
            let program =
                VrlProgram::compile(&source).unwrap_or_else(|error| panic!("{id}: {error}"));
            let reroute_dropped = transform
                .get("reroute_dropped")
                .and_then(toml::Value::as_bool)
                == Some(true);
            (
                id.clone(),
                Remap {
                    program,
                    reroute_dropped,
                },
            )
        })
        .collect()
}

/// A `route` transform of vector.toml: its input and its named conditions.
struct Route {
    input: String,
    routes: Vec<(String, String)>,
}

fn load_routes(config: &toml::Table) -> BTreeMap<String, Route> {
    let transforms = config
        .get("transforms")
        .and_then(toml::Value::as_table)
        .expect("vector.toml has transforms");
    transforms
        .iter()
        .filter(|(_, transform)| {
            transform.get("type").and_then(toml::Value::as_str) == Some("route")
        })
        .map(|(id, transform)| {
            let inputs: Vec<&str> = transform
                .get("inputs")
                .and_then(toml::Value::as_array)
                .expect("a route has inputs")
                .iter()
                .filter_map(toml::Value::as_str)
                .collect();
            assert_eq!(inputs.len(), 1, "route {id} reads one input");
            let routes = transform
                .get("route")
                .and_then(toml::Value::as_table)
                .expect("a route has conditions")
                .iter()
                .map(|(name, condition)| {
                    (
                        name.clone(),
                        condition
                            .as_str()
                            .expect("conditions are VRL strings")
                            .to_owned(),
                    )
                })
                .collect();
            (
                id.clone(),
                Route {
                    input: inputs[0].to_owned(),
                    routes,
                },
            )
        })
        .collect()
}

/// A Vector `vrl` condition: passes when the program returns `true` without error.
fn condition_passes(source: &str, event: &Value) -> bool {
    let program = VrlProgram::compile(source)
        .unwrap_or_else(|error| panic!("condition does not compile: {error}\n{source}"));
    let mut target = TargetValue {
        value: event.clone(),
        metadata: Value::Object(ObjectMap::new()),
        secrets: Secrets::default(),
    };
    matches!(
        Runtime::default().resolve(
            &mut target,
            program.program(),
            &TimeZone::Named(chrono_tz::UTC)
        ),
        Ok(Value::Boolean(true))
    )
}

#[test]
fn every_vector_unit_test_passes_through_the_vrl_crate() {
    let config: toml::Table =
        toml::from_str(&std::fs::read_to_string(root().join("vector.toml")).expect("vector.toml"))
            .expect("valid TOML");
    let remaps = load_remaps(&config);
    let routes = load_routes(&config);
    let mut failures = Vec::new();
    let (mut count, mut inputs) = (0, 0);
    for entry in std::fs::read_dir(root().join("tests/vector")).expect("tests/vector") {
        let path = entry.expect("entry").path();
        let document: toml::Table =
            toml::from_str(&std::fs::read_to_string(&path).expect("readable")).expect("valid TOML");
        for test in document
            .get("tests")
            .and_then(toml::Value::as_array)
            .into_iter()
            .flatten()
        {
            count += 1;
            inputs += entries(test, "inputs").count();
            let name = test
                .get("name")
                .and_then(toml::Value::as_str)
                .unwrap_or("?");
            if let Err(problem) = run_test(test, &remaps, &routes) {
                failures.push(format!("{name}: {problem}"));
            }
        }
    }
    assert!(
        inputs >= 180,
        "only {inputs} golden cases in {count} Vector unit tests"
    );
    assert!(
        failures.is_empty(),
        "{} of {count} Vector unit tests fail:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The entries of an array-of-tables field (none when absent).
fn entries<'a>(table: &'a toml::Value, key: &str) -> impl Iterator<Item = &'a toml::Value> {
    table
        .get(key)
        .and_then(toml::Value::as_array)
        .into_iter()
        .flatten()
}

fn run_test(
    test: &toml::Value,
    remaps: &BTreeMap<String, Remap>,
    routes: &BTreeMap<String, Route>,
) -> Result<(), String> {
    let mut outputs: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for input in entries(test, "inputs") {
        let id = input
            .get("insert_at")
            .and_then(toml::Value::as_str)
            .ok_or("input without insert_at")?;
        let remap = remaps.get(id).ok_or(format!("no remap transform {id}"))?;
        let fields: serde_json::Value =
            serde_json::to_value(input.get("log_fields").ok_or("input without log_fields")?)
                .map_err(|e| e.to_string())?;
        for (output, events) in remap.run(id, fields.into()) {
            outputs.entry(output).or_default().extend(events);
        }
    }
    // Each route sends every event of its input to each output whose condition it meets.
    for (id, route) in routes {
        let events = outputs.get(&route.input).cloned().unwrap_or_default();
        for (name, condition) in &route.routes {
            let routed: Vec<Value> = events
                .iter()
                .filter(|event| condition_passes(condition, event))
                .cloned()
                .collect();
            outputs
                .entry(format!("{id}.{name}"))
                .or_default()
                .extend(routed);
        }
    }
    for silent in entries(test, "no_outputs_from") {
        let silent = silent.as_str().ok_or("no_outputs_from holds names")?;
        if outputs.get(silent).is_some_and(|events| !events.is_empty()) {
            return Err(format!(
                "{silent} produced {} events",
                outputs[silent].len()
            ));
        }
    }
    for output in entries(test, "outputs") {
        let from = output
            .get("extract_from")
            .and_then(toml::Value::as_str)
            .ok_or("output without extract_from")?;
        let events = outputs
            .get(from)
            .filter(|events| !events.is_empty())
            .ok_or(format!("{from} produced no event"))?;
        // As `vector test` decides: a condition passes when at least one event satisfies it.
        for condition in entries(output, "conditions") {
            let source = condition
                .get("source")
                .and_then(toml::Value::as_str)
                .ok_or("condition without source")?;
            if !events.iter().any(|event| condition_passes(source, event)) {
                return Err(format!(
                    "no {from} event satisfies {source}; the events:\n{}",
                    events
                        .iter()
                        .map(|event| serde_json::to_string(event).unwrap_or_default())
                        .collect::<Vec<_>>()
                        .join("\n")
                ));
            }
        }
    }
    Ok(())
}
