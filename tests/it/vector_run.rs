//! The shipped `vector.toml` on a real Vector (`VECTOR_BIN`, else `vector` on `PATH`): it
//! validates, its generated unit tests pass, and a pipeline run — only paths, host and ports
//! changed, the identity sidecar running, PostHog played by the capture stand-in — delivers
//! every event the native mapping produces, dead-letters every refused row in Vector's shape,
//! carries rows nested at and beyond the nesting rule, pauses instead of dropping batches
//! PostHog answers 401/400/413, and logs no `intentional=false` drop.
//! On a machine without Vector each test says so in one line and passes.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use amplitude_posthog::MappingOutcome;
use amplitude_posthog_test_support::posthog_capture::{Fault, PostHogCapture};
use flate2::Compression;
use flate2::write::GzEncoder;
use serde_json::{Value, json};

const KEY: &str = "phc_vector_run_test_key";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The Vector binary to run, or `None` (after saying so) when this machine has none.
fn vector() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("VECTOR_BIN") {
        return Some(PathBuf::from(path));
    }
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("vector"))
            .find(|candidate| candidate.is_file())
    });
    if found.is_none() {
        eprintln!("no Vector (set VECTOR_BIN or put vector on PATH): real-Vector test skipped");
    }
    found
}

/// The sidecar binary of this workspace's build (`cargo test --workspace` builds it).
fn sidecar_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>");
    let binary = dir.join("posthog-alias-sink");
    assert!(
        binary.is_file(),
        "{} is missing: build it first (cargo build --release -p posthog-alias-sink)",
        binary.display()
    );
    binary
}

/// A directory laid out as the README's "Run a migration" says: the shipped config with only
/// the hosts and ports changed, its VRL programs, a key file, the export directory.
struct Workspace {
    dir: tempfile::TempDir,
}

impl Workspace {
    fn new(posthog: &str, sidecar: &str) -> Workspace {
        let dir = tempfile::tempdir().expect("tmp");
        for sub in [
            "vrl",
            "secrets",
            "vector-data",
            "dead-letters",
            "export/187520",
        ] {
            std::fs::create_dir_all(dir.path().join(sub)).expect("mkdir");
        }
        for program in ["amplitude_to_posthog.vrl", "identities.vrl"] {
            std::fs::copy(
                root().join("vrl").join(program),
                dir.path().join("vrl").join(program),
            )
            .expect("copy program");
        }
        std::fs::write(dir.path().join("secrets/api_key"), format!("{KEY}\n")).expect("key");
        let shipped = std::fs::read_to_string(root().join("vector.toml")).expect("vector.toml");
        let config = replace_once(
            &replace_once(
                &shipped,
                "uri = \"https://us.i.posthog.com/batch/\"",
                &format!("uri = \"{posthog}/batch/\""),
            ),
            "uri = \"http://127.0.0.1:8687/records\"",
            &format!("uri = \"{sidecar}/records\""),
        );
        std::fs::write(dir.path().join("vector.toml"), config).expect("config");
        Workspace { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes an export file as gzip members (each a list of lines, joined with newlines).
    fn export_file(&self, name: &str, members: &[&[Vec<u8>]]) -> PathBuf {
        let mut bytes = Vec::new();
        for lines in members {
            let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
            for line in *lines {
                encoder.write_all(line).expect("write");
                encoder.write_all(b"\n").expect("write");
            }
            bytes.extend(encoder.finish().expect("gzip"));
        }
        let path = self.path().join("export/187520").join(name);
        std::fs::write(&path, bytes).expect("export file");
        path
    }
}

fn replace_once(text: &str, from: &str, to: &str) -> String {
    assert_eq!(text.matches(from).count(), 1, "vector.toml has one {from}");
    text.replacen(from, to, 1)
}

/// A running process whose stderr is collected.
struct Running {
    child: Child,
    log: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Running {
    fn spawn(mut command: Command) -> Running {
        let mut child = command
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starts");
        let stderr = child.stderr.take().expect("stderr");
        let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().expect("log").push_str(&(line + "\n"));
            }
        });
        Running { child, log }
    }

    fn log(&self) -> String {
        self.log.lock().expect("log").clone()
    }

    fn wait_for_log(&self, needle: &str, limit: Duration) -> String {
        let started = Instant::now();
        loop {
            let log = self.log();
            if let Some(line) = log.lines().find(|line| line.contains(needle)) {
                return line.to_owned();
            }
            assert!(started.elapsed() < limit, "no {needle:?} in:\n{log}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_sidecar(dir: &Path, posthog: &str) -> (Running, String) {
    let mut command = Command::new(sidecar_binary());
    command
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--posthog-host",
            posthog,
        ])
        .args(["--max-backoff-secs", "1", "--db"])
        .arg(dir.join("identities.sqlite"))
        .env("POSTHOG_API_KEY", KEY)
        .env("RUST_LOG", "info");
    let sidecar = Running::spawn(command);
    let line = sidecar.wait_for_log("listening on ", Duration::from_secs(30));
    let address = line
        .split("listening on ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .expect("an address")
        .to_owned();
    (sidecar, format!("http://{address}"))
}

fn start_vector(vector: &Path, workspace: &Workspace) -> Running {
    let mut command = Command::new(vector);
    command
        .args(["--config", "vector.toml"])
        .current_dir(workspace.path())
        .env("VECTOR_LOG", "info");
    Running::spawn(command)
}

/// A refused row and the mapping's reason.
type Refused = (Vec<u8>, String);

/// The events the native mapping makes of `lines`, by uuid, and the refused lines in order.
fn expected(lines: &[Vec<u8>]) -> (BTreeMap<String, Value>, Vec<Refused>) {
    let mut events = BTreeMap::new();
    let mut refused = Vec::new();
    for line in lines {
        match amplitude_posthog_transform::map_line(line) {
            MappingOutcome::Events(mapped) => {
                for event in mapped {
                    let event: Value = serde_json::from_str(&event).expect("event JSON");
                    let uuid = event["uuid"].as_str().expect("uuid").to_owned();
                    events.insert(uuid, event);
                }
            }
            MappingOutcome::Skipped(_) => {}
            MappingOutcome::Rejected(reason) => {
                refused.push((line.clone(), reason.as_str().to_owned()))
            }
        }
    }
    (events, refused)
}

fn dead_letters(dir: &Path) -> Vec<Value> {
    let mut records = Vec::new();
    for file in amplitude_posthog::fs::walk_files(&dir.join("dead-letters")).expect("listed") {
        for line in std::fs::read_to_string(file).expect("readable").lines() {
            records.push(serde_json::from_str(line).expect("a JSON record"));
        }
    }
    records
}

fn wait_until(limit: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
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

/// `vector test` builds a topology per unit test (about 1.3 s each here), so the generated
/// tests run in shards, which the test harness runs side by side.
const UNIT_TEST_SHARDS: usize = 4;

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
fn the_generated_unit_tests_pass_on_real_vector_shard_3() {
    vector_unit_test_shard(2);
}

#[test]
fn the_generated_unit_tests_pass_on_real_vector_shard_4() {
    vector_unit_test_shard(3);
}

#[test]
fn a_real_vector_delivers_every_event_dead_letters_every_refused_row_and_drops_nothing() {
    let Some(vector) = vector() else { return };
    let capture = PostHogCapture::start(KEY);
    let scratch = tempfile::tempdir().expect("tmp");
    let (sidecar, sidecar_url) = start_sidecar(scratch.path(), &capture.url());
    let workspace = Workspace::new(&capture.url(), &sidecar_url);

    // Realistic rows with their broken ones, then the nesting cases, some refused rows, in a
    // multi-member gzip file.
    let generated: Vec<Vec<u8>> = amplitude_posthog::generator::Generator::new(
        amplitude_posthog::generator::GeneratorConfig {
            rows: 50_000,
            seed: 10,
            broken_share: 0.02,
            ..amplitude_posthog::generator::GeneratorConfig::default()
        },
    )
    .map(|row| row.line)
    .collect();
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
    let all: Vec<Vec<u8>> = [first, &nested[..], second, &refused[..]].concat();
    let (events, rejects) = expected(&all);

    let running = start_vector(&vector, &workspace);
    wait_until(Duration::from_secs(240), "every event in PostHog", || {
        let counts = capture.uuid_counts();
        events.keys().all(|uuid| counts.contains_key(uuid))
            && dead_letters(workspace.path()).len() >= rejects.len()
            && [28, 29, 30, 31, 60, 120].iter().all(|levels| {
                capture.stored().iter().any(|event| {
                    event.event["event"] == "$create_alias"
                        && event.event["distinct_id"] == format!("deep-user-{levels}")
                })
            })
    });
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
        let from_sidecar = body["event"] == "$create_alias"
            || (body["event"] == "$groupidentify"
                && body["properties"].get("$amplitude_event_type").is_none());
        if from_sidecar {
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
    let letters = dead_letters(workspace.path());
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
    assert!(
        !log.contains("intentional=false"),
        "Vector dropped events:\n{}",
        log.lines()
            .filter(|line| line.contains("intentional=false"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(!sidecar.log().contains("ERROR"), "{}", sidecar.log());
}

// Without `retry_strategy.type = "all"` (a sink option: under `request.` Vector 0.58 accepts
// it and ignores it) this run loses every batch answered 401: "Not retriable; dropping the
// request", `intentional=false`, 0 of 2 877 events delivered.
#[test]
fn answers_that_vector_drops_by_default_pause_the_pipeline_and_lose_nothing() {
    let Some(vector) = vector() else { return };
    let capture = PostHogCapture::start(KEY);
    let sidecar_posthog = PostHogCapture::start(KEY);
    // A wrong key for a while, a refused batch, a too-large answer, then PostHog is fine.
    capture.inject([
        Fault::Status(401),
        Fault::Status(401),
        Fault::Status(400),
        Fault::Status(413),
        Fault::Status(403),
    ]);
    let scratch = tempfile::tempdir().expect("tmp");
    let (_sidecar, sidecar_url) = start_sidecar(scratch.path(), &sidecar_posthog.url());
    let workspace = Workspace::new(&capture.url(), &sidecar_url);
    let lines: Vec<Vec<u8>> = amplitude_posthog::generator::Generator::new(
        amplitude_posthog::generator::GeneratorConfig {
            rows: 3_000,
            seed: 11,
            broken_share: 0.0,
            ..amplitude_posthog::generator::GeneratorConfig::default()
        },
    )
    .map(|row| row.line)
    .collect();
    workspace.export_file("187520_2024-07-07_1#1.json.gz", &[&lines[..]]);
    let (events, _) = expected(&lines);

    let running = start_vector(&vector, &workspace);
    let started = Instant::now();
    while !{
        let counts = capture.uuid_counts();
        events.keys().all(|uuid| counts.contains_key(uuid))
    } {
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "{} of {} events after 300 s; statuses {:?}; log:\n{}",
            capture.uuid_counts().len(),
            events.len(),
            capture
                .requests()
                .iter()
                .map(|request| request.status)
                .collect::<Vec<_>>(),
            running
                .log()
                .lines()
                .rev()
                .take(15)
                .collect::<Vec<_>>()
                .join("\n")
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let arrived: BTreeSet<String> = capture.uuid_counts().into_keys().collect();
    assert_eq!(arrived, events.keys().cloned().collect::<BTreeSet<_>>());
    let statuses: Vec<u16> = capture
        .requests()
        .iter()
        .map(|request| request.status)
        .collect();
    assert_eq!(&statuses[..5], [401, 401, 400, 413, 403]);
    // Vector said what PostHog answered, and dropped nothing.
    let log = running.log();
    assert!(
        log.contains("Retrying after response. reason=Retry all strategy: Unauthorized"),
        "{log}"
    );
    assert!(!log.contains("intentional=false"), "{log}");
}
