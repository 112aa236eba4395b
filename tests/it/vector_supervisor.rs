//! How `migrate --engine vector` ends. A file Vector cannot read to its end — here a Vector
//! stand-in (a process that never reads anything, with Vector's metrics saying nothing is in
//! flight and a checkpoint for every other file) — ends the run with one `problem:` line
//! naming the file, exit 1, instead of a wait for ever. And on a real Vector (skipped where
//! there is none) a row too long for Vector is a dead letter `event_too_large`, the counts
//! add up and the run ends with exit 0.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use amplitude_posthog_test_support::posthog_capture::PostHogCapture;
use serde_json::json;

use crate::migrate::{
    KEY, Setup, assert_everything_arrived, exact_summary, expected, stderr, summary,
    vector_command, vector_dead_letters,
};

/// Vector's metrics with nothing in flight: both HTTP sinks report empty buffers and have sent
/// all they read.
const IDLE_METRICS: &str = "\
vector_component_received_events_total{component_id=\"amplitude\",component_kind=\"source\"} 40 1
vector_buffer_size_events{buffer_id=\"posthog\",component_id=\"posthog\"} 0 1
vector_buffer_sent_events_total{buffer_id=\"posthog\",component_id=\"posthog\"} 40 1
vector_component_sent_events_total{component_id=\"posthog\",component_kind=\"sink\"} 40 1
vector_buffer_size_events{buffer_id=\"identity_sidecar\",component_id=\"identity_sidecar\"} 0 1
vector_buffer_sent_events_total{buffer_id=\"identity_sidecar\",component_id=\"identity_sidecar\"} 5 1
vector_component_sent_events_total{component_id=\"identity_sidecar\",component_kind=\"sink\"} 5 1
";

/// A Vector stand-in: a script that leaves the config path it was started with in
/// `<dir>/config-path` and sleeps, while a thread of this test, once that path appears, writes
/// checkpoints at the end of each of `read` (decompressed) into the config's `data_dir`, and
/// serves [`IDLE_METRICS`] on the config's metrics address. The script's path.
fn stalled_vector(dir: &Path, read: Vec<PathBuf>) -> PathBuf {
    let script = dir.join("vector");
    let config_path = dir.join("config-path");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nprintf '%s' \"$2\" > '{}'\nexec sleep 600\n",
            config_path.display()
        ),
    )
    .expect("script");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    std::thread::spawn(move || {
        let started = Instant::now();
        let config: toml::Table = loop {
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "never started"
            );
            let text = std::fs::read_to_string(&config_path)
                .ok()
                .and_then(|path| std::fs::read_to_string(path).ok());
            if let Some(config) = text.and_then(|text| text.parse().ok()) {
                break config;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let data_dir = PathBuf::from(config["data_dir"].as_str().expect("data_dir"));
        let checkpoints: Vec<serde_json::Value> = read
            .iter()
            .map(|path| {
                let metadata = std::fs::metadata(path).expect("export file");
                let facts = amplitude_posthog::export_file::scan_path(path).expect("gzip");
                json!({
                    "fingerprint": {"dev_inode": [metadata.dev(), metadata.ino()]},
                    "position": facts.decompressed_bytes,
                    "modified": "2026-12-01T00:00:00Z",
                })
            })
            .collect();
        let file = data_dir.join("amplitude/checkpoints.json");
        std::fs::create_dir_all(file.parent().expect("dir")).expect("mkdir");
        std::fs::write(
            &file,
            json!({"version": "1", "checkpoints": checkpoints}).to_string(),
        )
        .expect("checkpoints");
        let address = config["sinks"]["migrate_metrics_exporter"]["address"]
            .as_str()
            .expect("metrics address");
        let listener = TcpListener::bind(address).expect("the metrics port is free");
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut request = Vec::new();
            let mut buffer = [0u8; 1024];
            while !request.windows(4).any(|window| window == b"\r\n\r\n") {
                match stream.read(&mut buffer) {
                    Ok(0) | Err(_) => break,
                    Ok(read) => request.extend_from_slice(&buffer[..read]),
                }
            }
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{IDLE_METRICS}",
                IDLE_METRICS.len()
            );
        }
    });
    script
}

#[test]
fn a_file_vector_never_finishes_ends_the_run_with_one_problem_naming_it_and_exit_1() {
    let setup = Setup::generated(3_000, 53, 0.0);
    let mut files = amplitude_posthog::fs::walk_files(&setup.path("export")).expect("export");
    files.retain(|path| path.to_string_lossy().ends_with(".json.gz"));
    files.sort();
    assert!(files.len() >= 2, "{files:?}");
    let unread = files.pop().expect("a file");
    let vector = stalled_vector(setup.dir.path(), files.clone());
    let capture = PostHogCapture::start(KEY);
    let started = Instant::now();
    let output = setup
        .command(
            &capture.url(),
            &["--engine", "vector", "--vector-stall-secs", "3"],
        )
        .env("VECTOR_BIN", &vector)
        .output()
        .expect("migrate runs");
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(
        started.elapsed() < Duration::from_secs(100),
        "{:?}",
        started.elapsed()
    );
    let problems: Vec<&str> = text
        .lines()
        .filter(|line| line.trim_start().starts_with("problem:"))
        .collect();
    let end = amplitude_posthog::export_file::scan_path(&unread)
        .expect("gzip")
        .decompressed_bytes;
    assert_eq!(
        problems,
        [format!(
            "  problem: {}: Vector's checkpoint stays at byte 0 of the {end} it must reach, and Vector has had nothing in flight for 3 s: it cannot read this file to its end (its log: {})",
            unread.display(),
            setup.path("state/vector/vector.log").display()
        )]
    );
    // The rest is reported as usual: the export's counts, the files done, the way out.
    let expected = expected(&setup.lines);
    let (rows, events) = summary(&text);
    assert_eq!(rows, exact_summary(&expected).0);
    assert_eq!(events[0], expected.events.len() as u64);
    assert!(
        text.contains(&format!(
            "files {} of {} done",
            files.len(),
            files.len() + 1
        )),
        "{text}"
    );
    assert!(
        text.lines()
            .last()
            .is_some_and(|line| line.starts_with("not complete: see the problems above")),
        "{text}"
    );
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(setup.path("state/report.json")).expect("report"))
            .expect("JSON");
    assert_eq!(
        report["files"]["problems"][0]["file"],
        unread.display().to_string()
    );
    assert_eq!(
        report["totals"]["delivered"], 0,
        "nothing claimed delivered"
    );
}

/// A valid row of about `bytes` bytes whose bulk is one property, as the issue's 9 MB row.
fn huge_row(bytes: usize) -> Vec<u8> {
    let mut row = br#"{"event_type":"Huge","user_id":"huge-user","device_id":"huge-device","event_time":"2024-07-06 12:00:00.000000","event_properties":{"blob":""#.to_vec();
    row.resize(bytes - 3, b'x');
    row.extend_from_slice(br#""}}"#);
    row
}

#[test]
fn a_row_too_long_for_a_real_vector_is_a_dead_letter_and_the_run_ends() {
    let setup = Setup::generated(300, 54, 0.02);
    let capture = PostHogCapture::start(KEY);
    let Some(mut command) = vector_command(&setup, &capture.url()) else {
        return;
    };
    // The issue's export: the generated rows, and a file holding one 9 MB row.
    let huge = huge_row(9_000_000);
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(&huge).expect("gzip");
    encoder.write_all(b"\n").expect("gzip");
    std::fs::write(
        setup.path("export/9mb-row.json.gz"),
        encoder.finish().expect("gzip"),
    )
    .expect("write");
    let mut lines = setup.lines.clone();
    lines.push(huge);
    let expected = expected(&lines);
    assert_eq!(expected.rejected.get("event_too_large"), Some(&1));

    let output = command.output().expect("migrate runs");
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(0), "{text}");
    assert_everything_arrived(&setup, &capture, &expected);
    assert_eq!(summary(&text), exact_summary(&expected));
    // Every refused row in the dead letters with its reason: Vector's, and prepare's one.
    assert_eq!(vector_dead_letters(&setup), expected.rejected);
    let set_aside = std::fs::read_to_string(setup.path("state/vector/dead-letters/prepare.jsonl"))
        .expect("prepare's dead letters");
    let letter: serde_json::Value = serde_json::from_str(set_aside.trim()).expect("one record");
    assert_eq!(
        letter["file"],
        setup.path("export/9mb-row.json.gz").display().to_string()
    );
    assert_eq!(letter["line"], 1);
    assert_eq!(letter["truncated"]["row_bytes"], 9_000_000);
    assert!(!text.contains("problem:"), "{text}");
    assert!(
        text.lines()
            .last()
            .is_some_and(|line| line.starts_with("done: every row is delivered or accounted for")),
        "{text}"
    );
}
