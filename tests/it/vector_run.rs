//! The shipped `vector.toml` on a real Vector (`VECTOR_BIN`, else `vector` on `PATH`): it
//! validates, its generated unit tests pass, and a pipeline run — only paths, host and ports
//! changed, the identity sidecar running, PostHog played by the capture stand-in — delivers
//! every event the native mapping produces, dead-letters every refused row in Vector's shape,
//! carries rows nested at and beyond the nesting rule, reads a file whose last line lacked its
//! newline once `prepare` has run, and logs no `intentional=false` drop. A 9 MB row, which
//! Vector discards, is `prepare`'s dead letter, Vector reads on past it, and no file is left
//! for `resume` to read again.
//! On a machine without Vector each test says so in one line and passes.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use amplitude_posthog_test_support::posthog_capture::PostHogCapture;
use serde_json::{Value, json};

use crate::helpers::vector::{
    KEY, Workspace, expected, generated_rows, is_from_sidecar, root, start_sidecar, tail,
    unintended_drops, vector, wait_until,
};

/// A gzip file of `lines` whose last line has no newline.
fn gzip_without_final_newline(lines: &[Vec<u8>]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(&lines.join(&b'\n')).expect("write");
    encoder.finish().expect("gzip")
}

fn nested_object(levels: usize) -> Value {
    (0..levels).fold(
        json!("leaf"),
        |inner, level| json!({ "level": level, "inner": inner }),
    )
}

fn nested_array(levels: usize) -> Value {
    (0..levels).fold(json!(1.25), |inner, _| json!([inner]))
}

/// Rows at, just under and just over the nesting rule, in every place it applies.
fn nested_rows() -> Vec<Vec<u8>> {
    let mut rows = Vec::new();
    for levels in [28, 29, 30, 31, 60, 120] {
        rows.push(json!({
            "event_type": "Deep Event", "user_id": format!("deep-user-{levels}"),
            "device_id": format!("deep-device-{levels}"),
            "event_time": "2024-07-06 12:00:00.000000",
            "event_properties": {"object": nested_object(levels), "array": nested_array(levels)},
            "user_properties": {"profile": nested_object(levels)},
        }));
        rows.push(json!({
            "event_type": "$groupidentify", "user_id": format!("deep-user-{levels}"),
            "event_time": "2024-07-06 12:00:01.000000",
            "groups": {"company": format!("deep-co-{levels}")},
            "group_properties": {"company": {format!("deep-co-{levels}"): {"tree": nested_object(levels)}}},
        }));
    }
    rows.into_iter()
        .map(|row| serde_json::to_vec(&row).expect("row"))
        .collect()
}

#[test]
fn the_shipped_config_validates_on_real_vector() {
    let Some(vector) = vector() else { return };
    let workspace = Workspace::new("http://127.0.0.1:9", "http://127.0.0.1:9");
    let validate = Command::new(&vector)
        .args(["validate", "--no-environment", "vector.toml"])
        .current_dir(workspace.path())
        .output()
        .expect("vector runs");
    assert!(validate.status.success(), "vector validate: {validate:?}");
}

/// `vector test` builds a topology per unit test (about 2.3 s each here), so the generated
/// tests run in two shards, which the test harness runs side by side.
const UNIT_TEST_SHARDS: usize = 2;

/// Runs shard `shard` of `tests/vector/mapping_tests.toml` with `vector test`.
fn vector_unit_test_shard(shard: usize) {
    let Some(vector) = vector() else { return };
    let workspace = Workspace::new("http://127.0.0.1:9", "http://127.0.0.1:9");
    let generated: toml::Table =
        std::fs::read_to_string(root().join("tests/vector/mapping_tests.toml"))
            .expect("readable")
            .parse()
            .expect("TOML");
    let tests = generated["tests"].as_array().expect("[[tests]]");
    let chunk = tests.len().div_ceil(UNIT_TEST_SHARDS);
    let mine: Vec<toml::Value> = tests
        .iter()
        .skip(shard * chunk)
        .take(chunk)
        .cloned()
        .collect();
    let mut document = toml::Table::new();
    document.insert("tests".into(), toml::Value::Array(mine.clone()));
    std::fs::write(
        workspace.path().join("unit_tests.toml"),
        toml::to_string(&document).expect("serialises"),
    )
    .expect("write shard");
    let test = Command::new(&vector)
        .args(["test", "vector.toml", "unit_tests.toml"])
        .current_dir(workspace.path())
        .output()
        .expect("vector runs");
    let stdout = String::from_utf8_lossy(&test.stdout);
    assert!(test.status.success(), "vector test failed:\n{stdout}");
    let passed = stdout
        .lines()
        .filter(|line| line.ends_with(" ... passed"))
        .count();
    assert_eq!(passed, mine.len(), "not every unit test passed:\n{stdout}");
}

#[test]
fn the_generated_unit_tests_pass_on_real_vector_shard_1() {
    vector_unit_test_shard(0);
}

#[test]
fn the_generated_unit_tests_pass_on_real_vector_shard_2() {
    vector_unit_test_shard(1);
}

#[test]
fn a_real_vector_delivers_every_event_dead_letters_every_refused_row_and_drops_nothing() {
    let Some(vector) = vector() else { return };
    let capture = PostHogCapture::start(KEY);
    let scratch = tempfile::tempdir().expect("tmp");
    let sidecar = start_sidecar(scratch.path(), "127.0.0.1:0", &capture.url());
    let workspace = Workspace::new(&capture.url(), &sidecar.url);

    // Realistic rows with their broken ones, then the nesting cases, some refused rows, in a
    // multi-member gzip file; and a file whose last line has no newline, as Amplitude's
    // members sometimes end.
    let generated = generated_rows(50_000, 10, 0.02);
    let nested = nested_rows();
    let refused: Vec<Vec<u8>> = vec![
        b"not json".to_vec(),
        br#"{"event_type":"No One","event_time":"2024-07-06 12:00:00"}"#.to_vec(),
    ];
    let (first, second) = generated.split_at(generated.len() / 2);
    workspace.export_file(
        "187520_2024-07-06_12#1.json.gz",
        &[first, &nested[..], second],
    );
    workspace.export_file("187520_2024-07-06_13#1.json.gz", &[&refused[..]]);
    let unterminated = generated_rows(300, 12, 0.0);
    workspace.write_export(
        "187520_2024-07-06_14#1.json.gz",
        &gzip_without_final_newline(&unterminated),
    );
    let all: Vec<Vec<u8>> = [first, &nested[..], second, &refused[..], &unterminated[..]].concat();
    let (events, rejects) = expected(&all);

    // The README's step before starting Vector: the unterminated last line gets its newline.
    let prepared = workspace.prepare();
    assert!(
        prepared.contains("added a newline to export/187520/187520_2024-07-06_14#1.json.gz"),
        "{prepared}"
    );
    assert!(
        prepared.ends_with(&format!(
            "3 export file(s), {} row(s); 1 newline(s) added; 0 row(s) too long for Vector set aside; 0 unreadable\n",
            all.len()
        )),
        "{prepared}"
    );

    let running = workspace.start_vector(&vector);
    wait_until(
        Duration::from_secs(240),
        "every event in PostHog",
        || {
            let counts = capture.uuid_counts();
            events.keys().all(|uuid| counts.contains_key(uuid))
                && workspace.dead_letters().len() >= rejects.len()
                && [28, 29, 30, 31, 60, 120].iter().all(|levels| {
                    capture.stored().iter().any(|event| {
                        event.event["event"] == "$create_alias"
                            && event.event["distinct_id"] == format!("deep-user-{levels}")
                    })
                })
        },
        || {
            format!(
                "{} of {} events arrived; Vector's log ends:\n{}",
                capture.uuid_counts().len(),
                events.len(),
                tail(&running.log(), 20)
            )
        },
    );
    std::thread::sleep(Duration::from_secs(3));

    // Every event arrived, as mapped, at least once; nothing else arrived.
    // The sidecar's aliases and group events reach the same PostHog; set them apart.
    let stored = capture.stored();
    let mut arrived: BTreeMap<String, Value> = BTreeMap::new();
    let mut aliases: BTreeSet<(String, String)> = BTreeSet::new();
    for event in &stored {
        assert!(
            event.historical_migration,
            "historical_migration on every request"
        );
        let body = &event.event;
        if is_from_sidecar(body) {
            if body["event"] == "$create_alias" {
                aliases.insert((
                    body["distinct_id"].as_str().unwrap_or_default().to_owned(),
                    body["properties"]["alias"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                ));
            }
            continue;
        }
        arrived.insert(event.uuid.clone().expect("uuid"), body.clone());
    }
    for levels in [28, 29, 30, 31, 60, 120] {
        let pair = (
            format!("deep-user-{levels}"),
            format!("deep-device-{levels}"),
        );
        assert!(
            aliases.contains(&pair),
            "the sidecar sent no alias for {pair:?}"
        );
    }
    let missing: Vec<&String> = events
        .keys()
        .filter(|uuid| !arrived.contains_key(*uuid))
        .collect();
    let extra: Vec<&String> = arrived
        .keys()
        .filter(|uuid| !events.contains_key(*uuid))
        .collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{} missing (e.g. {:?}), {} unexpected (e.g. {:?})",
        missing.len(),
        missing
            .iter()
            .take(3)
            .map(|uuid| &events[*uuid])
            .collect::<Vec<_>>(),
        extra.len(),
        extra
            .iter()
            .take(3)
            .map(|uuid| &arrived[*uuid])
            .collect::<Vec<_>>()
    );
    for (uuid, event) in &events {
        assert_eq!(&arrived[uuid], event, "event {uuid} arrived as mapped");
    }

    // Every refused row once, in Vector's shape, with the mapping's reason.
    let letters = workspace.dead_letters();
    assert_eq!(letters.len(), rejects.len());
    // A refused row may repeat in an export: compare as sorted lists, not sets.
    let mut by_row: Vec<(String, String)> = Vec::new();
    for letter in &letters {
        let keys: BTreeSet<&str> = letter
            .as_object()
            .expect("object")
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            BTreeSet::from([
                "file",
                "host",
                "message",
                "metadata",
                "source_type",
                "timestamp"
            ])
        );
        let dropped = &letter["metadata"]["dropped"];
        assert_eq!(dropped["component_id"], "events");
        assert_eq!(dropped["component_type"], "remap");
        assert_eq!(dropped["component_kind"], "transform");
        assert_eq!(dropped["reason"], "error");
        assert!(letter["file"].as_str().expect("file").ends_with(".json.gz"));
        by_row.push((
            letter["message"].as_str().expect("message").to_owned(),
            dropped["message"].as_str().expect("reason").to_owned(),
        ));
    }
    let mut expected_rejects: Vec<(String, String)> = rejects
        .iter()
        .map(|(line, reason)| (String::from_utf8_lossy(line).into_owned(), reason.clone()))
        .collect();
    by_row.sort();
    expected_rejects.sort();
    assert_eq!(by_row, expected_rejects);

    // The README's replay recipe gives back exactly the refused rows.
    let files =
        amplitude_posthog::fs::walk_files(&workspace.path().join("dead-letters")).expect("listed");
    let paths: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
    let replayed = crate::dead_letters::replay_with_jq(&paths);
    let mut replayed: Vec<&str> = replayed.lines().collect();
    replayed.sort_unstable();
    let mut refused_rows: Vec<&str> = expected_rejects
        .iter()
        .map(|(row, _)| row.as_str())
        .collect();
    refused_rows.sort_unstable();
    assert_eq!(replayed, refused_rows);

    // The nested rows' identity records reached the sidecar too: nothing dropped anywhere.
    let log = running.log();
    let drops = unintended_drops(&log);
    assert!(
        drops.is_empty(),
        "Vector dropped events:\n{}",
        drops.join("\n")
    );
    assert!(!sidecar.log().contains("ERROR"), "{}", sidecar.log());
}

#[test]
fn a_row_too_long_for_a_real_vector_becomes_prepares_dead_letter_and_no_file_stays_unfinished() {
    let Some(vector) = vector() else { return };
    let capture = PostHogCapture::start(KEY);
    let scratch = tempfile::tempdir().expect("tmp");
    let sidecar = start_sidecar(scratch.path(), "127.0.0.1:0", &capture.url());
    let workspace = Workspace::new(&capture.url(), &sidecar.url);

    // The issue's export: 300 generated rows, and a file holding one 9 MB row (valid JSON, a
    // huge property); and a 9 MB row between two rows, which Vector must skip and read on.
    let generated = generated_rows(300, 13, 0.02);
    workspace.export_file("187520_2024-07-06_12#1.json.gz", &[&generated[..]]);
    let mut huge = br#"{"event_type":"Huge","user_id":"huge-user","event_time":"2024-07-06 13:00:00","event_properties":{"blob":""#.to_vec();
    huge.resize(9_000_000 - 3, b'x');
    huge.extend_from_slice(br#""}}"#);
    workspace.export_file("187520_2024-07-06_13#1.json.gz", &[&[huge.clone()][..]]);
    let around = generated_rows(2, 14, 0.0);
    let sandwich = [around[0].clone(), huge.clone(), around[1].clone()];
    workspace.export_file("187520_2024-07-06_14#1.json.gz", &[&sandwich[..]]);
    let all: Vec<Vec<u8>> = [&generated[..], &[huge.clone()][..], &sandwich[..]].concat();
    let (events, rejects) = expected(&all);
    let too_long = rejects
        .iter()
        .filter(|(row, _)| row.len() > amplitude_posthog::input::MAX_LINE_BYTES)
        .count();
    assert_eq!(too_long, 2);

    let prepared = workspace.prepare();
    assert!(
        prepared.contains(
            "2 row(s) too long for Vector set aside (dead letters: dead-letters/prepare.jsonl)"
        ),
        "{prepared}"
    );
    let mut running = workspace.start_vector(&vector);
    wait_until(
        Duration::from_secs(240),
        "every event in PostHog and every refused row dead-lettered",
        || {
            let counts = capture.uuid_counts();
            events.keys().all(|uuid| counts.contains_key(uuid))
                && workspace.dead_letters().len() >= rejects.len()
        },
        || {
            format!(
                "{} of {} events arrived; Vector's log ends:\n{}",
                capture.uuid_counts().len(),
                events.len(),
                tail(&running.log(), 20)
            )
        },
    );
    std::thread::sleep(Duration::from_secs(3));

    // Every refused row once: Vector's rows from Vector, the two long ones from prepare.
    let letters = workspace.dead_letters();
    assert_eq!(letters.len(), rejects.len(), "{letters:?}");
    let mut from_prepare: Vec<(&str, u64)> = letters
        .iter()
        .filter(|letter| letter["metadata"]["dropped"]["component_id"] == "prepare")
        .map(|letter| {
            (
                letter["file"].as_str().expect("file"),
                letter["line"].as_u64().expect("line"),
            )
        })
        .collect();
    from_prepare.sort_unstable();
    assert_eq!(
        from_prepare,
        [
            ("export/187520/187520_2024-07-06_13#1.json.gz", 1),
            ("export/187520/187520_2024-07-06_14#1.json.gz", 2)
        ]
    );
    assert!(unintended_drops(&running.log()).is_empty());

    // Stopped, nothing is left unfinished: resume has nothing to read again.
    assert!(running.terminate().success(), "Vector stops on SIGTERM");
    let resumed = workspace.resume(true);
    assert!(
        resumed.contains("would remove 0 checkpoint(s)"),
        "{resumed}"
    );

    // The pipeline's report: the export counted as the mapping counts it, no refusal missing.
    let report = Command::new(env!("CARGO_BIN_EXE_amplitude-posthog"))
        .args([
            "report",
            "--export",
            "export",
            "--dead-letters",
            "dead-letters",
        ])
        .args(["--out", "report"])
        .current_dir(workspace.path())
        .output()
        .expect("report runs");
    let text = String::from_utf8_lossy(&report.stdout);
    assert!(report.status.success(), "{text}");
    assert!(!text.contains("problem:"), "{text}");
}
