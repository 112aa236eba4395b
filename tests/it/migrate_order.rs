//! `migrate` sends history the way PostHog's migration guide asks ("Best practices for
//! migrations"): files in export order, one UTC day per request with the days in order, rows
//! uploaded late held back and sent after the main pass day by day, and at most 2 000 events a
//! second in total unless told otherwise. Checked against the capture stand-in, which records
//! the order requests arrive in.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use amplitude_posthog::MappingOutcome;
use amplitude_posthog::input::{LineReader, discover};
use amplitude_posthog_test_support::posthog_capture::{PostHogCapture, StoredEvent};
use chrono::NaiveDate;
use flate2::Compression;
use flate2::write::GzEncoder;
use serde_json::Value;

use crate::helpers::vector::is_from_sidecar;
use crate::migrate::{
    KEY, Setup, assert_everything_arrived, exact_summary, expected, stderr, summary,
};

/// The UTC day of an event (`timestamp` is ISO 8601 in UTC).
fn day(event: &Value) -> NaiveDate {
    let timestamp = event["timestamp"].as_str().expect("timestamp");
    NaiveDate::parse_from_str(&timestamp[..10], "%Y-%m-%d").expect("a date")
}

/// The migrated events as they arrived, grouped by request: (request's days, uuids).
fn requests(stored: &[StoredEvent]) -> Vec<(BTreeSet<NaiveDate>, Vec<String>)> {
    let mut requests: BTreeMap<usize, (BTreeSet<NaiveDate>, Vec<String>)> = BTreeMap::new();
    for stored in stored
        .iter()
        .filter(|stored| !is_from_sidecar(&stored.event))
    {
        let request = requests.entry(stored.request).or_default();
        request.0.insert(day(&stored.event));
        request.1.push(stored.uuid.clone().expect("uuid"));
    }
    requests.into_values().collect()
}

/// The uuids of the events a row maps to (none for a skipped or refused row).
fn event_uuids(line: &[u8]) -> Vec<String> {
    match amplitude_posthog_transform::map_line(line) {
        MappingOutcome::Events(events) => events
            .iter()
            .map(|event| {
                let event: Value = serde_json::from_str(event).expect("json");
                event["uuid"].as_str().expect("uuid").to_owned()
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// The export files in the order `migrate` reads them, and the uuids of each file's events.
fn uuids_by_file(export: &Path) -> Vec<(PathBuf, Vec<String>)> {
    discover(&[export.to_path_buf()])
        .expect("inputs")
        .into_iter()
        .map(|source| {
            let amplitude_posthog::input::InputSource::File(path) = source.clone() else {
                panic!("files only");
            };
            let mut reader = LineReader::open(source).expect("readable");
            let mut line = Vec::new();
            let mut uuids = Vec::new();
            while reader.next_line(&mut line).expect("readable").is_some() {
                uuids.extend(event_uuids(&line));
            }
            (path, uuids)
        })
        .collect()
}

/// The (hour, partition) an Amplitude file name says.
fn hour_and_partition(path: &Path) -> (u32, u32) {
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    let parsed = amplitude_posthog::export_order::ExportName::parse(&name).expect("Amplitude name");
    (parsed.hour, parsed.partition)
}

#[test]
fn a_days_hourly_files_are_read_in_hour_order_not_as_text() {
    let setup = Setup::generated_over(4_000, 71, 0.0, 1);
    let files = uuids_by_file(&setup.path("export"));
    let hours: BTreeSet<u32> = files
        .iter()
        .map(|(path, _)| hour_and_partition(path).0)
        .collect();
    assert_eq!(hours.len(), 24, "24 hourly files: {hours:?}");
    // As text, hour 10 sorts before hour 2: the export order must not.
    let listed: Vec<u32> = files
        .iter()
        .map(|(path, _)| hour_and_partition(path).0)
        .collect();
    assert!(listed.is_sorted(), "listed in hour order: {listed:?}");
    let file_of: BTreeMap<&str, (u32, u32)> = files
        .iter()
        .flat_map(|(path, uuids)| {
            let key = hour_and_partition(path);
            uuids.iter().map(move |uuid| (uuid.as_str(), key))
        })
        .collect();
    let capture = PostHogCapture::start(KEY);
    let output = setup.migrate(
        &capture.url(),
        &["--concurrency", "1", "--batch-size", "100"],
    );
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(0), "{text}");
    // The events of each day arrive in the order of their files: hour 2 before hour 10.
    let mut last: BTreeMap<NaiveDate, (u32, u32)> = BTreeMap::new();
    for stored in capture
        .stored()
        .iter()
        .filter(|stored| !is_from_sidecar(&stored.event))
    {
        let key = file_of[stored.uuid.as_deref().expect("uuid")];
        let previous = last.entry(day(&stored.event)).or_insert(key);
        assert!(
            *previous <= key,
            "{previous:?} then {key:?}: request {}, {}",
            stored.request,
            stored.event["timestamp"]
        );
        *previous = key;
    }
}

/// A generated 60-day export in which every tenth row was uploaded five days after its time
/// (an offline client), in files of their own named as Amplitude names them: the setup, and
/// the uuids of the late rows' events.
fn export_with_late_rows(seed: u64) -> (Setup, BTreeSet<String>) {
    let setup = Setup::generated_over(6_000, seed, 0.01, 60);
    let export = setup.path("export");
    let mut late_files: BTreeMap<PathBuf, Vec<Vec<u8>>> = BTreeMap::new();
    let mut late_uuids = BTreeSet::new();
    // Rows of the whole export, in order.
    let mut number = 0;
    for source in discover(std::slice::from_ref(&export)).expect("inputs") {
        let amplitude_posthog::input::InputSource::File(path) = source.clone() else {
            panic!("files only");
        };
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let (project, rest) = name.split_once('_').expect("project");
        let date = NaiveDate::parse_from_str(&rest[..10], "%Y-%m-%d").expect("date");
        let (hour, _) = hour_and_partition(&path);
        let mut reader = LineReader::open(source).expect("readable");
        let (mut kept, mut line) = (Vec::new(), Vec::new());
        while reader.next_line(&mut line).expect("readable").is_some() {
            number += 1;
            let uuids = event_uuids(&line);
            match number % 10 == 0 && !uuids.is_empty() {
                true => {
                    late_uuids.extend(uuids);
                    let later = date + chrono::Days::new(5);
                    let late = path.with_file_name(format!("{project}_{later}_{hour}#90.json.gz"));
                    late_files.entry(late).or_default().push(line.clone());
                }
                false => kept.push(line.clone()),
            }
        }
        write_gzip(&path, &kept);
    }
    for (path, lines) in late_files {
        write_gzip(&path, &lines);
    }
    let lines = crate::migrate::read_all(&export);
    (Setup { lines, ..setup }, late_uuids)
}

pub(crate) fn write_gzip(path: &Path, lines: &[Vec<u8>]) {
    let mut gzip = GzEncoder::new(
        std::fs::File::create(path).expect("create"),
        Compression::fast(),
    );
    for line in lines {
        gzip.write_all(line).expect("write");
        gzip.write_all(b"\n").expect("write");
    }
    gzip.finish().expect("gzip");
}

/// The requests of the main pass and of the late pass: the late pass begins with the first
/// request more than a day older than the newest day sent before it.
fn passes(
    requests: &[(BTreeSet<NaiveDate>, Vec<String>)],
) -> (Vec<NaiveDate>, Vec<NaiveDate>, BTreeSet<String>) {
    let days: Vec<NaiveDate> = requests
        .iter()
        .map(|(days, _)| {
            assert_eq!(days.len(), 1, "one UTC day per request: {days:?}");
            *days.first().unwrap()
        })
        .collect();
    let mut newest = days[0];
    let boundary = days
        .iter()
        .position(|day| {
            newest = newest.max(*day);
            *day < newest - chrono::Days::new(1)
        })
        .unwrap_or(days.len());
    let late: BTreeSet<String> = requests[boundary..]
        .iter()
        .flat_map(|(_, uuids)| uuids.iter().cloned())
        .collect();
    (days[..boundary].to_vec(), days[boundary..].to_vec(), late)
}

#[test]
fn late_rows_are_held_and_sent_after_the_main_pass_one_day_per_request_oldest_first() {
    let (setup, late_uuids) = export_with_late_rows(72);
    let expected = expected(&setup.lines);
    let capture = PostHogCapture::start(KEY);
    let output = setup.migrate(
        &capture.url(),
        &["--concurrency", "1", "--batch-size", "100"],
    );
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(0), "{text}");
    assert_everything_arrived(&setup, &capture, &expected);
    assert_eq!(summary(&text), exact_summary(&expected));
    let requests = requests(&capture.stored());
    let (main, late, sent_late) = passes(&requests);
    // The main pass goes forward: never more than a day back from the newest day sent.
    let mut newest = main[0];
    for day in &main {
        assert!(
            *day >= newest - chrono::Days::new(1),
            "{day} after {newest}"
        );
        newest = newest.max(*day);
    }
    // Then the late rows, day by day, oldest first.
    assert!(!late.is_empty());
    assert!(late.is_sorted(), "late days in order: {late:?}");
    // Every row uploaded five days late is sent last, but for those of the export's last days,
    // which nothing newer follows (a file after the last day finds the front on that day).
    let newest = expected.events.values().map(day).max().expect("events");
    let must_be_late: BTreeSet<&String> = late_uuids
        .iter()
        .filter(|uuid| day(&expected.events[*uuid]) + chrono::Days::new(3) <= newest)
        .collect();
    assert!(must_be_late.len() > late_uuids.len() * 9 / 10);
    let missing: Vec<&&String> = must_be_late
        .iter()
        .filter(|uuid| !sent_late.contains(**uuid))
        .collect();
    assert!(missing.is_empty(), "sent in the main pass: {missing:?}");
    eprintln!(
        "{} requests: {} in the main pass, {} in the late pass ({} late events, {} of them moved)",
        requests.len(),
        main.len(),
        late.len(),
        sent_late.len(),
        late_uuids.len()
    );
}

/// Runs `migrate` with `extra` arguments and SIGKILLs it once `kill_when` says so of what
/// PostHog holds.
pub(crate) fn killed_when(
    setup: &Setup,
    capture: &PostHogCapture,
    extra: &[&str],
    kill_when: impl Fn(&[StoredEvent]) -> bool,
) {
    let mut child = setup
        .command(&capture.url(), extra)
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("migrate starts");
    let started = Instant::now();
    loop {
        if kill_when(&capture.stored()) {
            child.kill().expect("SIGKILL");
            child.wait().expect("reaped");
            return;
        }
        if let Some(status) = child.try_wait().expect("status") {
            panic!("migrate ended before the kill: {status}");
        }
        assert!(started.elapsed() < Duration::from_secs(120), "too slow");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_kill_in_the_main_pass_or_the_late_pass_then_the_same_command_loses_and_doubles_nothing() {
    for (phase, seed, rate) in [("main", 73, "3000"), ("late", 74, "1000")] {
        let (setup, late_uuids) = export_with_late_rows(seed);
        let expected = expected(&setup.lines);
        let capture = PostHogCapture::start(KEY);
        let is_late = |stored: &StoredEvent| {
            stored
                .uuid
                .as_ref()
                .is_some_and(|uuid| late_uuids.contains(uuid))
        };
        let extra = ["--concurrency", "2", "--batch-size", "100", "--rate", rate];
        killed_when(&setup, &capture, &extra, |stored| match phase {
            // Half the events sent, none of the late ones.
            "main" => stored.len() > expected.events.len() / 2,
            // The late pass has begun.
            _ => stored.iter().any(is_late),
        });
        let before = capture.uuid_counts().len();
        if phase == "main" {
            assert!(
                !capture.stored().iter().any(is_late),
                "no late row before the late pass"
            );
            // The report of the state as the kill left it: held events are not delivered,
            // and the migration is not taken for finished.
            let report = std::process::Command::new(env!("CARGO_BIN_EXE_amplitude-posthog"))
                .arg("report")
                .arg("--state")
                .arg(setup.path("state"))
                .output()
                .expect("report runs");
            let text = String::from_utf8_lossy(&report.stdout);
            assert!(text.contains("events held for the late pass"), "{text}");
            assert!(text.contains("not yet accounted for"), "{text}");
        }
        let output = setup.migrate(
            &capture.url(),
            &["--concurrency", "2", "--batch-size", "100"],
        );
        let text = stderr(&output);
        assert_eq!(output.status.code(), Some(0), "{phase}: {text}");
        assert_everything_arrived(&setup, &capture, &expected);
        assert_eq!(summary(&text), exact_summary(&expected), "{phase}");
        let twice: usize = capture
            .uuid_counts()
            .iter()
            .filter(|(uuid, _)| expected.events.contains_key(*uuid))
            .map(|(_, count)| count - 1)
            .sum();
        eprintln!("killed in the {phase} pass with {before} events sent: {twice} sent twice");
        // What was in flight (2 requests of 100, and what PostHog accepted while the state
        // was being written) and the chunks waiting on an open day batch (3 of 1 000 rows).
        assert!(
            twice <= 4 * 2 * 100 + 3 * 1_000,
            "{phase}: {twice} sent twice"
        );
    }
}

#[test]
fn by_default_at_most_2000_events_a_second_go_to_posthog_and_unlimited_lifts_it() {
    let setup = Setup::generated(21_500, 75, 0.0);
    let expected = expected(&setup.lines);
    let capture = PostHogCapture::start(KEY);
    // No --rate at all.
    let started = Instant::now();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_amplitude-posthog"))
        .arg("migrate")
        .arg(setup.path("export"))
        .args(["--posthog-host", &capture.url(), "--api-key-file"])
        .arg(setup.path("key"))
        .arg("--state")
        .arg(setup.path("state"))
        .output()
        .expect("migrate runs");
    let limited = started.elapsed();
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(0), "{text}");
    assert_everything_arrived(&setup, &capture, &expected);
    let sent = capture.stored().len();
    assert!(sent >= 20_000, "{sent} events, aliases and group updates");
    assert!(
        limited >= Duration::from_secs_f64(sent as f64 / 2000.0),
        "{sent} in {limited:?}"
    );
    assert!(
        text.contains("rate: at most 2000 events/s in total"),
        "{text}"
    );
    // Unlimited: the engine's own pace.
    let unlimited = Setup::generated(21_500, 75, 0.0);
    let capture = PostHogCapture::start(KEY);
    let started = Instant::now();
    let output = unlimited.migrate(&capture.url(), &["--rate", "unlimited"]);
    let elapsed = started.elapsed();
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(0), "{text}");
    assert!(text.contains("rate: unlimited"), "{text}");
    assert!(elapsed < Duration::from_secs(10), "{elapsed:?}");
    eprintln!("{sent} events and identity updates: {limited:?} by default, {elapsed:?} unlimited");
}
