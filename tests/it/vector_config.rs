//! `vector.toml` checked without Vector: it parses, every input exists, every VRL program it
//! references compiles without warnings, the framed request body is what PostHog expects, no
//! key is written in it, and none of the settings that prevent data loss can quietly go away.

use std::collections::BTreeSet;
use std::path::Path;

use amplitude_posthog::generator::GeneratorConfig;
use amplitude_posthog::vrl_engine::VrlProgram;
use posthog_client::rate::{DEFAULT_IDENTITY_RATE, DEFAULT_RATE, Rate};
use toml::{Table, Value};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn config_text() -> String {
    std::fs::read_to_string(root().join("vector.toml")).expect("vector.toml exists")
}

fn config() -> Table {
    toml::from_str(&config_text()).expect("vector.toml is valid TOML")
}

/// A dotted path into the config, e.g. `sinks.posthog.batch.max_bytes`.
fn at<'a>(config: &'a Table, path: &str) -> Option<&'a Value> {
    let mut parts = path.split('.');
    let mut value = config.get(parts.next()?)?;
    for part in parts {
        value = value.get(part)?;
    }
    Some(value)
}

fn string<'a>(config: &'a Table, path: &str) -> &'a str {
    at(config, path)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("{path} must be a string"))
}

fn integer(config: &Table, path: &str) -> i64 {
    at(config, path)
        .and_then(Value::as_integer)
        .unwrap_or_else(|| panic!("{path} must be an integer"))
}

fn boolean(config: &Table, path: &str) -> bool {
    at(config, path)
        .and_then(Value::as_bool)
        .unwrap_or_else(|| panic!("{path} must be a boolean"))
}

fn components(config: &Table, kind: &str) -> Vec<(String, Table)> {
    at(config, kind)
        .and_then(Value::as_table)
        .map(|table| {
            table
                .iter()
                .map(|(id, component)| {
                    (
                        id.clone(),
                        component.as_table().cloned().unwrap_or_default(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn every_input_names_an_existing_component_output() {
    let config = config();
    let mut outputs: BTreeSet<String> = components(&config, "sources")
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    for (id, transform) in components(&config, "transforms") {
        if transform.get("reroute_dropped").and_then(Value::as_bool) == Some(true) {
            outputs.insert(format!("{id}.dropped"));
        }
        // A route's outputs are its named conditions.
        if let Some(routes) = transform.get("route").and_then(Value::as_table) {
            outputs.extend(routes.keys().map(|name| format!("{id}.{name}")));
        }
        outputs.insert(id);
    }
    let mut consumers = components(&config, "transforms");
    consumers.extend(components(&config, "sinks"));
    assert!(!consumers.is_empty());
    for (id, component) in consumers {
        let inputs = component
            .get("inputs")
            .and_then(Value::as_array)
            .unwrap_or_else(|| panic!("{id} has no inputs"));
        for input in inputs {
            let input = input.as_str().expect("inputs are names");
            assert!(
                outputs.contains(input),
                "{id} reads {input}, which no component produces"
            );
        }
    }
}

#[test]
fn every_referenced_vrl_program_compiles_without_warnings() {
    let config = config();
    let mut programs = 0;
    for (id, transform) in components(&config, "transforms") {
        let Some(file) = transform.get("file").and_then(Value::as_str) else {
            continue;
        };
        let source = std::fs::read_to_string(root().join(file))
            .unwrap_or_else(|error| panic!("{id}: cannot read {file}: {error}"));
        let program = VrlProgram::compile(&source).unwrap_or_else(|error| panic!("{id}: {error}"));
        assert!(
            program.warnings().is_empty(),
            "{id}: {}",
            program.warnings().join("\n")
        );
        programs += 1;
    }
    assert!(programs >= 1);
}

#[test]
fn the_source_reads_whole_gzip_exports_safely() {
    let config = config();
    let source = "sources.amplitude";
    assert_eq!(string(&config, &format!("{source}.type")), "file");
    assert_eq!(string(&config, &format!("{source}.read_from")), "beginning");
    assert_eq!(
        string(&config, &format!("{source}.fingerprint.strategy")),
        "device_and_inode"
    );
    // Exactly the reader's limit: the rows `prepare` sets aside as too long are exactly those
    // Vector discards (docs/ARCHITECTURE.md, "Read in Vector's source").
    assert_eq!(
        integer(&config, &format!("{source}.max_line_bytes")),
        amplitude_posthog::input::MAX_LINE_BYTES as i64
    );
    assert!(
        at(&config, &format!("{source}.remove_after_secs")).is_none(),
        "remove_after_secs deletes files before acknowledgement"
    );
    assert!(
        at(&config, &format!("{source}.ignore_checkpoints"))
            .is_none_or(|value| value.as_bool() == Some(false))
    );
    let include = at(&config, &format!("{source}.include"))
        .and_then(Value::as_array)
        .expect("include");
    assert!(
        include
            .iter()
            .all(|pattern| pattern.as_str().is_some_and(|p| p.ends_with(".json.gz")))
    );
    assert!(
        boolean(&config, "acknowledgements.enabled"),
        "end-to-end acknowledgements must be on"
    );
    assert!(
        at(&config, "data_dir")
            .and_then(Value::as_str)
            .is_some_and(|dir| !dir.is_empty())
    );
}

#[test]
fn the_remap_reroutes_every_refused_row_with_its_reason() {
    let config = config();
    let remap = "transforms.events";
    assert_eq!(string(&config, &format!("{remap}.type")), "remap");
    assert_eq!(
        string(&config, &format!("{remap}.file")),
        "vrl/amplitude_to_posthog.vrl"
    );
    assert_eq!(string(&config, &format!("{remap}.timezone")), "UTC");
    assert!(boolean(&config, &format!("{remap}.drop_on_error")));
    assert!(boolean(&config, &format!("{remap}.reroute_dropped")));
    let dead_letters = components(&config, "sinks")
        .into_iter()
        .filter(|(_, sink)| {
            sink.get("inputs")
                .and_then(Value::as_array)
                .is_some_and(|inputs| inputs.iter().any(|i| i.as_str() == Some("events.dropped")))
        })
        .collect::<Vec<_>>();
    assert_eq!(
        dead_letters.len(),
        1,
        "exactly one sink receives the dead letters"
    );
    let (id, sink) = &dead_letters[0];
    assert_eq!(
        sink.get("type").and_then(Value::as_str),
        Some("file"),
        "{id}"
    );
    let path = sink.get("path").and_then(Value::as_str).expect("path");
    assert!(
        path.contains("%Y-%m-%d"),
        "one dead-letter file per day: {path}"
    );
    assert_eq!(
        at(&config, &format!("sinks.{id}.encoding.codec")).and_then(Value::as_str),
        Some("json")
    );
}

#[test]
fn the_posthog_sink_batches_retries_and_buffers_safely() {
    let config = config();
    let sink = "sinks.posthog";
    assert_eq!(string(&config, &format!("{sink}.type")), "http");
    let inputs = at(&config, &format!("{sink}.inputs"))
        .and_then(Value::as_array)
        .expect("inputs");
    assert_eq!(
        inputs
            .iter()
            .map(|input| input.as_str())
            .collect::<Vec<_>>(),
        vec![Some("posthog_day")]
    );
    assert_eq!(
        at(&config, "transforms.posthog_day.inputs").and_then(Value::as_array),
        Some(&vec![Value::String("outputs.posthog".into())])
    );
    let uri = string(&config, &format!("{sink}.uri"));
    assert!(
        uri.starts_with("https://") && uri.ends_with("/batch/"),
        "{uri}"
    );
    assert!(
        !uri.contains("SECRET["),
        "a secret in uri makes `vector validate` fail"
    );
    assert_eq!(string(&config, &format!("{sink}.compression")), "gzip");
    assert_eq!(string(&config, &format!("{sink}.encoding.codec")), "json");
    // Well under PostHog's 20 MB requests, even uncompressed.
    let max_bytes = integer(&config, &format!("{sink}.batch.max_bytes"));
    assert!(
        (1..=10_000_000).contains(&max_bytes),
        "batch.max_bytes {max_bytes}"
    );
    // The events' part of PostHog's 2 000 events/s, the sidecar's --rate having the rest, as
    // `migrate --engine vector` shares its --rate.
    let share = amplitude_posthog::vector::config::events_sink_rate(Rate(Some(DEFAULT_RATE)), 1000);
    assert_eq!(
        integer(&config, &format!("{sink}.batch.max_events")),
        share.max_events as i64
    );
    assert_eq!(
        integer(&config, &format!("{sink}.request.rate_limit_num")),
        i64::from(share.requests_per_second.expect("a limit"))
    );
    assert_eq!(
        integer(&config, &format!("{sink}.request.rate_limit_duration_secs")),
        1
    );
    assert_eq!(
        share.max_events as u32 * share.requests_per_second.unwrap() + DEFAULT_IDENTITY_RATE,
        DEFAULT_RATE
    );
    // Retries never give up (an outage pauses the migration instead of dropping batches).
    assert!(integer(&config, &format!("{sink}.request.retry_attempts")) >= 1_000_000);
    // Vector's default drops batches answered 400/401/403/413; "all" retries every non-2xx.
    assert_eq!(
        string(&config, &format!("{sink}.retry_strategy.type")),
        "all"
    );
    // Batches in flight survive a restart.
    assert_eq!(string(&config, &format!("{sink}.buffer.type")), "disk");
    assert_eq!(
        string(&config, &format!("{sink}.buffer.when_full")),
        "block"
    );
    assert!(integer(&config, &format!("{sink}.buffer.max_size")) >= 268_435_488);
    assert!(boolean(
        &config,
        &format!("{sink}.acknowledgements.enabled")
    ));
}

#[test]
fn the_framed_body_is_the_batch_request_posthog_expects() {
    let config = config();
    let prefix = string(&config, "sinks.posthog.payload_prefix");
    let suffix = string(&config, "sinks.posthog.payload_suffix");
    assert!(
        prefix.contains("SECRET[posthog.api_key]"),
        "the key comes from the secret backend"
    );
    assert_eq!(string(&config, "secret.posthog.type"), "directory");
    // Vector substitutes the secret, then frames events as `[e1,e2,…]` between prefix and suffix.
    let prefix = prefix.replace("SECRET[posthog.api_key]", "phc_test");
    let events = crate::helpers::corpus::mapped_events(GeneratorConfig {
        rows: 300,
        seed: 5,
        broken_share: 0.0,
        ..GeneratorConfig::default()
    });
    let body = format!("{prefix}[{}]{suffix}", events.join(","));
    let parsed: serde_json::Value = serde_json::from_str(&body).expect("the framed body is JSON");
    assert_eq!(parsed["api_key"], "phc_test");
    assert_eq!(
        parsed["historical_migration"],
        serde_json::Value::Bool(true)
    );
    assert_eq!(parsed["batch"].as_array().map(Vec::len), Some(events.len()));
    assert!(
        parsed.get("sent_at").is_none(),
        "sent_at would shift every timestamp"
    );
}

#[test]
fn no_key_like_literal_is_committed() {
    // PostHog project keys (phc_…) and personal keys (phx_…) must never be in the repository.
    for file in [
        "vector.toml",
        "README.md",
        "tests/vector/mapping_tests.toml",
    ] {
        let text = std::fs::read_to_string(root().join(file)).unwrap_or_default();
        for prefix in ["phc_", "phx_"] {
            for (at, _) in text.match_indices(prefix) {
                let rest: String = text[at + prefix.len()..]
                    .chars()
                    .take_while(char::is_ascii_alphanumeric)
                    .collect();
                assert!(
                    rest.len() < 20,
                    "{file} holds what looks like a PostHog key: {prefix}{rest}"
                );
            }
        }
    }
}

#[test]
fn one_pass_maps_each_row_and_a_route_sends_events_and_identity_records_to_their_sinks() {
    let config = config();
    let inputs = |path: &str| {
        at(&config, path)
            .and_then(Value::as_array)
            .map(|inputs| inputs.iter().filter_map(Value::as_str).collect::<Vec<_>>())
    };
    assert_eq!(string(&config, "transforms.outputs.type"), "route");
    assert_eq!(inputs("transforms.outputs.inputs"), Some(vec!["events"]));
    // Complementary conditions: nothing goes to `_unmatched`.
    assert_eq!(
        string(&config, "transforms.outputs.route.posthog"),
        "!exists(.kind)"
    );
    assert_eq!(
        string(&config, "transforms.outputs.route.identities"),
        "exists(.kind)"
    );
    // Through the day stamp (metadata only) to the sink.
    assert_eq!(
        inputs("transforms.posthog_day.inputs"),
        Some(vec!["outputs.posthog"])
    );
    assert_eq!(inputs("sinks.posthog.inputs"), Some(vec!["posthog_day"]));
    assert_eq!(
        inputs("sinks.identity_sidecar.inputs"),
        Some(vec!["outputs.identities"])
    );
    assert_eq!(
        inputs("sinks.dead_letters.inputs"),
        Some(vec!["events.dropped"])
    );
    // One remap reads the source: each row is parsed once. The other only stamps each event's
    // day into metadata.
    let remaps: Vec<&String> = at(&config, "transforms")
        .and_then(Value::as_table)
        .expect("transforms")
        .iter()
        .filter(|(_, transform)| transform.get("type").and_then(Value::as_str) == Some("remap"))
        .map(|(id, _)| id)
        .collect();
    assert_eq!(remaps, ["events", "posthog_day"]);
    assert_eq!(inputs("transforms.events.inputs"), Some(vec!["amplitude"]));
}

#[test]
fn the_identity_sidecar_is_fed_with_acknowledgements_on_loopback() {
    let config = config();
    let uri = string(&config, "sinks.identity_sidecar.uri");
    assert!(
        uri.starts_with("http://127.0.0.1:") && uri.ends_with("/records"),
        "{uri}"
    );
    assert!(boolean(
        &config,
        "sinks.identity_sidecar.acknowledgements.enabled"
    ));
    assert!(integer(&config, "sinks.identity_sidecar.request.retry_attempts") >= 1_000_000);
    assert_eq!(
        string(&config, "sinks.identity_sidecar.retry_strategy.type"),
        "all"
    );
    assert_eq!(
        string(&config, "sinks.identity_sidecar.encoding.codec"),
        "json"
    );
}

/// Runs vector.toml's `posthog_day` remap on one event: the day it puts in metadata, and the
/// event as it leaves.
fn posthog_day(event: serde_json::Value) -> (Option<String>, serde_json::Value) {
    use vrl::compiler::{TargetValue, TimeZone};
    use vrl::value::{ObjectMap, Value as VrlValue};
    let source = string(&config(), "transforms.posthog_day.source").to_owned();
    let program = VrlProgram::compile(&source).expect("compiles");
    assert!(program.warnings().is_empty(), "{:?}", program.warnings());
    let mut target = TargetValue {
        value: VrlValue::from(event),
        metadata: VrlValue::Object(ObjectMap::new()),
        secrets: Default::default(),
    };
    vrl::compiler::runtime::Runtime::default()
        .resolve(
            &mut target,
            program.program(),
            &TimeZone::Named(chrono_tz::UTC),
        )
        .expect("infallible");
    let day = target
        .metadata
        .as_object()
        .and_then(|metadata| metadata.get("amplitude_posthog"))
        .and_then(VrlValue::as_object)
        .and_then(|ours| ours.get("day"))
        .map(|day| day.to_string_lossy().into_owned());
    let body = serde_json::to_value(&target.value).expect("JSON");
    (day, body)
}

/// One UTC day per request: the sink's batches are partitioned by a header rendered from the
/// day `posthog_day` puts in metadata, for every event, whatever its timestamp.
#[test]
fn the_posthog_sink_sends_one_utc_day_per_request() {
    let config = config();
    assert_eq!(
        string(&config, "sinks.posthog.request.headers.X-Amplitude-Day"),
        "utc-day-{{ %amplitude_posthog.day }}"
    );
    let event = serde_json::json!({"event": "x", "timestamp": "2024-01-05T23:59:59.999Z", "uuid": "u", "properties": {"$set": {"plan": "pro"}}});
    let (day, body) = posthog_day(event.clone());
    assert_eq!(day.as_deref(), Some("2024-01-05"));
    assert_eq!(
        body, event,
        "the body is left as it is (not a live project: AMPLITUDE_POSTHOG_LIVE_PROJECT unset)"
    );
    // Never without a day: a partition key that cannot render drops the event.
    assert_eq!(
        posthog_day(serde_json::json!({"event": "x"})).0.as_deref(),
        Some("unknown")
    );
    assert_eq!(
        posthog_day(serde_json::json!({"event": "x", "timestamp": 5}))
            .0
            .as_deref(),
        Some("unknown")
    );
}

/// `--live-project` through Vector: with `AMPLITUDE_POSTHOG_LIVE_PROJECT=true` in Vector's
/// environment (what `migrate --engine vector --live-project` sets), `posthog_day` strips every
/// event exactly as the embedded engine does (`without_person_properties`). The check runs in
/// a child process of this test binary, so the variable is set before any thread starts.
#[test]
fn in_a_live_project_posthog_day_strips_what_the_embedded_engine_strips() {
    let output = std::process::Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            "vector_config::live_project_child",
            "--ignored",
            "--nocapture",
        ])
        .env("AMPLITUDE_POSTHOG_LIVE_PROJECT", "true")
        .output()
        .expect("the child runs");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && text.contains("1 passed"),
        "{text}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The child of the test above (run only by it: it needs the variable in its environment).
#[test]
#[ignore = "run by in_a_live_project_posthog_day_strips_what_the_embedded_engine_strips"]
fn live_project_child() {
    assert_eq!(
        std::env::var("AMPLITUDE_POSTHOG_LIVE_PROJECT").as_deref(),
        Ok("true")
    );
    let generated = amplitude_posthog::generator::Generator::new(
        amplitude_posthog::generator::GeneratorConfig {
            rows: 2_000,
            seed: 5,
            broken_share: 0.0,
            ..Default::default()
        },
    );
    let mut stripped = 0;
    for row in generated {
        let amplitude_posthog::MappingOutcome::Events(events) =
            amplitude_posthog_transform::map_line(&row.line)
        else {
            continue;
        };
        for event in events {
            let expected: serde_json::Value = serde_json::from_str(
                &amplitude_posthog_transform::without_person_properties(event.clone()),
            )
            .expect("JSON");
            let (_, body) = posthog_day(serde_json::from_str(&event).expect("JSON"));
            stripped += usize::from(event.contains("\"$set"));
            assert_eq!(body, expected);
        }
    }
    assert!(
        stripped > 500,
        "{stripped} events carried person properties"
    );
}

/// No inline VRL of vector.toml holds what Vector's environment interpolation would replace
/// (`$NAME` or `${NAME}`, src/config/vars.rs), so it means the same with interpolation on.
#[test]
fn no_inline_vrl_is_changed_by_environment_interpolation() {
    let config = config();
    let transforms = config["transforms"].as_table().expect("transforms");
    let mut checked = 0;
    for (id, transform) in transforms {
        if let Some(source) = transform.get("source").and_then(toml::Value::as_str) {
            checked += 1;
            let bytes = source.as_bytes();
            for (at, byte) in bytes.iter().enumerate() {
                let next = bytes.get(at + 1).copied().unwrap_or(b' ');
                assert!(
                    *byte != b'$'
                        || !(next.is_ascii_alphanumeric()
                            || next == b'_'
                            || next == b'{'
                            || next == b'$'),
                    "transforms.{id}.source: {}",
                    &source[at..(at + 20).min(source.len())]
                );
            }
        }
    }
    assert!(checked > 0);
}
