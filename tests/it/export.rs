//! `amplitude-posthog export` and `unpack` against an Amplitude Export API stand-in: a month in
//! 24 h windows equals the generated rows; a killed run resumes to the same result; 400/504
//! split down to hours; 401 stops at once; 429/5xx/broken zips are retried; hostile member
//! names write nothing outside the export directory.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use amplitude_posthog::generator::{Generator, GeneratorConfig};
use amplitude_posthog_test_support::amplitude_export::{AmplitudeExport, ExportFault};
use chrono::NaiveDate;
use flate2::read::MultiGzDecoder;

const API_KEY: &str = "amp-api-key-1234567890";
const SECRET: &str = "amp-secret-key-abcdefghij";
const PROJECT: u64 = 187_520;

fn month_of_rows(rows: u64, seed: u64) -> Vec<(Vec<u8>, chrono::DateTime<chrono::Utc>)> {
    let config = GeneratorConfig {
        rows,
        seed,
        broken_share: 0.0,
        start: NaiveDate::from_ymd_opt(2024, 3, 1).expect("date"),
        days: 30,
        project_id: PROJECT,
    };
    Generator::new(config)
        .map(|row| (row.line, row.upload_time))
        .collect()
}

fn export(server: &AmplitudeExport, out: &Path, extra: &[&str]) -> Output {
    export_range(server, out, "2024-03-01T00", "2024-03-30T23", extra)
}

fn export_range(
    server: &AmplitudeExport,
    out: &Path,
    start: &str,
    end: &str,
    extra: &[&str],
) -> Output {
    Command::new(env!("CARGO_BIN_EXE_amplitude-posthog"))
        .args([
            "export",
            "--start",
            start,
            "--end",
            end,
            "--api-url",
            &server.url(),
            "--max-backoff-ms",
            "200",
            "--out",
        ])
        .arg(out)
        .args(extra)
        .env("AMPLITUDE_API_KEY", API_KEY)
        .env("AMPLITUDE_SECRET_KEY", SECRET)
        .output()
        .expect("runs")
}

/// Every row under `dir`, as multiset counts; checks each file ends with a newline.
fn rows_in(dir: &Path) -> BTreeMap<Vec<u8>, usize> {
    let mut rows = BTreeMap::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        for entry in std::fs::read_dir(&current).expect("dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                if !path.ends_with(".downloads") {
                    pending.push(path);
                }
                continue;
            }
            if !path.to_string_lossy().ends_with(".json.gz") {
                continue;
            }
            let mut text = Vec::new();
            MultiGzDecoder::new(std::fs::File::open(&path).expect("open"))
                .read_to_end(&mut text)
                .expect("gzip");
            assert_eq!(
                text.last(),
                Some(&b'\n'),
                "{} must end with a newline",
                path.display()
            );
            for line in text
                .split(|byte| *byte == b'\n')
                .filter(|line| !line.is_empty())
            {
                *rows.entry(line.to_vec()).or_default() += 1;
            }
        }
    }
    rows
}

fn counts(rows: Vec<Vec<u8>>) -> BTreeMap<Vec<u8>, usize> {
    let mut counts = BTreeMap::new();
    for row in rows {
        *counts.entry(row).or_default() += 1;
    }
    counts
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn a_month_in_24h_windows_equals_the_generated_rows() {
    let server = AmplitudeExport::start(API_KEY, SECRET, PROJECT, month_of_rows(12_000, 1));
    let dir = tempfile::tempdir().expect("tmp");
    let output = export(&server, dir.path(), &["--window", "24h"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        rows_in(dir.path()),
        counts(server.all_rows()),
        "no hour missing, none duplicated"
    );
    // One request per day, each with an inclusive end hour and no overlap.
    let requests = server.requests();
    assert_eq!(requests.len(), 30);
    assert_eq!(
        requests[0],
        ("20240301T00".to_owned(), "20240301T23".to_owned(), 200)
    );
    assert_eq!(requests[1].0, "20240302T00");
    // Files keep Amplitude's names; nothing is left half-written.
    let names: Vec<String> = std::fs::read_dir(dir.path().join(PROJECT.to_string()))
        .expect("project dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names
            .iter()
            .all(|name| name.starts_with("187520_2024-03-") && name.ends_with(".json.gz")),
        "{names:?}"
    );
    // Re-running skips every finished window.
    let again = export(&server, dir.path(), &["--window", "24h"]);
    assert!(again.status.success());
    assert_eq!(server.requests().len(), 30, "nothing downloaded twice");
    assert!(
        stderr(&again).contains("30 already done"),
        "{}",
        stderr(&again)
    );
}

#[test]
fn a_killed_export_resumes_to_an_identical_result() {
    let server = AmplitudeExport::start(API_KEY, SECRET, PROJECT, month_of_rows(6_000, 2));
    server.delay_each_request(Duration::from_millis(150));
    let reference = tempfile::tempdir().expect("tmp");
    assert!(
        export(&server, reference.path(), &["--window", "24h"])
            .status
            .success()
    );
    let dir = tempfile::tempdir().expect("tmp");
    let mut child = Command::new(env!("CARGO_BIN_EXE_amplitude-posthog"))
        .args([
            "export",
            "--start",
            "2024-03-01T00",
            "--end",
            "2024-03-30T23",
            "--api-url",
            &server.url(),
            "--window",
            "24h",
            "--out",
        ])
        .arg(dir.path())
        .env("AMPLITUDE_API_KEY", API_KEY)
        .env("AMPLITUDE_SECRET_KEY", SECRET)
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    // Kill it once a few windows are recorded, whatever the machine's speed.
    let manifest = dir.path().join(".amplitude-export.json");
    let started = std::time::Instant::now();
    while std::fs::read_to_string(&manifest).map_or(0, |text| text.matches("\"status\"").count())
        < 3
    {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the export made no progress"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().expect("SIGKILL");
    child.wait().expect("reaped");
    let partial = rows_in(dir.path()).values().sum::<usize>();
    assert!(
        partial > 0 && partial < 6_000,
        "killed mid-way ({partial} rows written)"
    );
    let resumed = export(&server, dir.path(), &["--window", "24h"]);
    assert!(resumed.status.success(), "{}", stderr(&resumed));
    assert_eq!(rows_in(dir.path()), rows_in(reference.path()));
    assert_eq!(rows_in(dir.path()), counts(server.all_rows()));
}

#[test]
fn too_large_windows_split_down_to_single_hours() {
    let rows = month_of_rows(6_000, 3);
    // The limit is the largest hour: every hour fits, most pairs of hours do not.
    let mut by_hour: BTreeMap<String, usize> = BTreeMap::new();
    for (line, uploaded) in &rows {
        *by_hour
            .entry(uploaded.format("%Y%m%dT%H").to_string())
            .or_default() += line.len();
    }
    let limit = *by_hour.values().max().expect("hours");
    let sizes: Vec<usize> = by_hour.values().copied().collect();
    assert!(sizes.windows(2).any(|pair| pair[0] + pair[1] > limit));
    let server = AmplitudeExport::start(API_KEY, SECRET, PROJECT, rows);
    server.limit_window_bytes(limit);
    // A 504 (Amplitude timing out on too much data) splits like a 400.
    server.inject([ExportFault::Status(504)]);
    let dir = tempfile::tempdir().expect("tmp");
    let output = export(&server, dir.path(), &["--window", "24h"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(rows_in(dir.path()), counts(server.all_rows()));
    let requests = server.requests();
    assert!(
        requests
            .iter()
            .any(|(start, end, status)| *status == 200 && start == end),
        "single-hour windows were reached"
    );
    assert!(requests.iter().any(|(_, _, status)| *status == 504));
    // An hour still too large is reported with the advice to use the S3 export.
    let server = AmplitudeExport::start(API_KEY, SECRET, PROJECT, month_of_rows(3_000, 4));
    server.limit_window_bytes(100);
    let dir = tempfile::tempdir().expect("tmp");
    let output = export_range(
        &server,
        dir.path(),
        "2024-03-02T00",
        "2024-03-02T01",
        &["--window", "24h"],
    );
    assert!(!output.status.success());
    assert!(stderr(&output).contains("S3 export"), "{}", stderr(&output));
}

#[test]
fn a_401_stops_at_once_and_never_prints_the_keys() {
    let server = AmplitudeExport::start(API_KEY, "wrong-secret", PROJECT, month_of_rows(500, 5));
    let dir = tempfile::tempdir().expect("tmp");
    let output = export(&server, dir.path(), &["--window", "24h"]);
    assert!(!output.status.success());
    let message = stderr(&output);
    assert!(
        message.contains("AMPLITUDE_API_KEY") && message.contains("--eu"),
        "{message}"
    );
    assert!(
        !message.contains(API_KEY) && !message.contains(SECRET),
        "keys leaked: {message}"
    );
    assert_eq!(server.requests().len(), 1, "stopped at the first 401");
}

#[test]
fn rate_limits_server_errors_and_a_broken_zip_are_retried() {
    let server = AmplitudeExport::start(API_KEY, SECRET, PROJECT, month_of_rows(3_000, 6));
    server.inject([
        ExportFault::RateLimited {
            retry_after_seconds: 1,
        },
        ExportFault::Status(500),
        ExportFault::Status(502),
        ExportFault::BrokenZip,
    ]);
    let dir = tempfile::tempdir().expect("tmp");
    let output = export(
        &server,
        dir.path(),
        &["--window", "24h", "--concurrency", "2"],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(rows_in(dir.path()), counts(server.all_rows()));
    assert!(
        stderr(&output).contains("not a valid zip"),
        "the broken zip is reported: {}",
        stderr(&output)
    );
}

#[test]
fn hostile_member_names_write_nothing_outside_the_export_directory() {
    let server = AmplitudeExport::start(API_KEY, SECRET, PROJECT, month_of_rows(300, 7));
    let gz = {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut encoder, b"{\"evil\":true}\n").expect("gzip");
        encoder.finish().expect("gzip")
    };
    server.add_member("../escaped.json.gz", gz.clone());
    server.add_member("/tmp/absolute-escape.json.gz", gz.clone());
    server.add_member("187520/../../also-escaped.json.gz", gz);
    server.add_member("notes.txt", b"ignored".to_vec());
    let root = tempfile::tempdir().expect("tmp");
    let out = root.path().join("export");
    let output = export_range(
        &server,
        &out,
        "2024-03-05T00",
        "2024-03-05T23",
        &["--window", "24h"],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("refused member"),
        "{}",
        stderr(&output)
    );
    assert!(!root.path().join("escaped.json.gz").exists());
    assert!(!root.path().join("also-escaped.json.gz").exists());
    assert!(!Path::new("/tmp/absolute-escape.json.gz").exists());
    assert!(
        !rows_in(&out)
            .keys()
            .any(|row| row.starts_with(b"{\"evil\""))
    );

    // The same rules for a zip downloaded by hand.
    let zip_path = root.path().join("org-export.zip");
    let mut zip = zip::ZipWriter::new(std::fs::File::create(&zip_path).expect("zip"));
    let options = zip::write::SimpleFileOptions::default();
    zip.start_file("../../hand-escaped.json.gz", options)
        .expect("member");
    zip.finish().expect("zip");
    let unpacked = Command::new(env!("CARGO_BIN_EXE_amplitude-posthog"))
        .args(["unpack"])
        .arg(&zip_path)
        .arg("--out")
        .arg(&out)
        .output()
        .expect("runs");
    assert!(
        !unpacked.status.success(),
        "a refused member fails the unpack"
    );
    assert!(
        !root
            .path()
            .parent()
            .expect("parent")
            .join("hand-escaped.json.gz")
            .exists()
    );
}
