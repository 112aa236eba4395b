//! `amplitude-posthog migrate` as a user runs it: the real binary, real HTTP to the PostHog
//! capture stand-in on loopback, a real SQLite state. Every event `map` produces arrives,
//! every alias the sidecar's rule gives, the dead letters equal the refused rows, the counts
//! add up; kills at any moment and PostHog's faults lose nothing; bad input gets one clear line.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use amplitude_posthog::MappingOutcome;
use amplitude_posthog::generator::{ExportLayout, Generator, GeneratorConfig, write_export};
use amplitude_posthog::input::{LineReader, discover};
use amplitude_posthog_test_support::posthog_capture::{Fault, PostHogCapture, StoredEvent};
use serde_json::Value;

use crate::helpers::vector::{expected_pairs, is_from_sidecar};

pub(crate) const KEY: &str = "phc_migrate_test_key_0123456789";

/// An export on disk, a key file and a state directory.
pub(crate) struct Setup {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) lines: Vec<Vec<u8>>,
}

impl Setup {
    pub(crate) fn generated(rows: u64, seed: u64, broken_share: f64) -> Setup {
        Setup::generated_over(rows, seed, broken_share, 3)
    }

    /// An export whose upload times spread over `days` days from 2024-01-01.
    pub(crate) fn generated_over(rows: u64, seed: u64, broken_share: f64, days: u32) -> Setup {
        let dir = tempfile::tempdir().expect("tmp");
        let config = GeneratorConfig {
            rows,
            seed,
            broken_share,
            days,
            ..GeneratorConfig::default()
        };
        let layout = ExportLayout {
            out_dir: Some(dir.path().join("export")),
            zip: None,
            project_id: config.project_id,
            seed,
        };
        write_export(&layout, Generator::new(config)).expect("export written");
        std::fs::write(dir.path().join("key"), format!("{KEY}\n")).expect("key");
        let lines = read_all(&dir.path().join("export"));
        Setup { dir, lines }
    }

    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `migrate export --posthog-host HOST --api-key-file key --state state …`.
    pub(crate) fn command(&self, host: &str, extra: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_amplitude-posthog"));
        command
            .arg("migrate")
            .arg(self.path("export"))
            .args(["--posthog-host", host, "--api-key-file"])
            .arg(self.path("key"))
            .arg("--state")
            .arg(self.path("state"))
            .args(["--initial-backoff-ms", "20", "--max-backoff-ms", "200"])
            .args(extra);
        if !extra.contains(&"--rate") {
            // The default rate (PostHog's 2 000 events/s) has tests of its own.
            command.args(["--rate", "unlimited"]);
        }
        command
    }

    pub(crate) fn migrate(&self, host: &str, extra: &[&str]) -> Output {
        self.command(host, extra).output().expect("migrate runs")
    }
}

pub(crate) fn read_all(export: &Path) -> Vec<Vec<u8>> {
    let mut lines = Vec::new();
    for source in discover(&[export.to_path_buf()]).expect("inputs") {
        let mut reader = LineReader::open(source).expect("readable");
        let mut line = Vec::new();
        while reader.next_line(&mut line).expect("readable").is_some() {
            lines.push(line.clone());
        }
    }
    lines
}

/// What `map` makes of the rows: events by uuid, and the rejected rows' reasons.
pub(crate) struct Expected {
    pub(crate) events: BTreeMap<String, Value>,
    pub(crate) rows: u64,
    pub(crate) mapped: u64,
    pub(crate) skipped: u64,
    pub(crate) rejected: BTreeMap<String, u64>,
}

pub(crate) fn expected(lines: &[Vec<u8>]) -> Expected {
    let mut expected = Expected {
        events: BTreeMap::new(),
        rows: lines.len() as u64,
        mapped: 0,
        skipped: 0,
        rejected: BTreeMap::new(),
    };
    for line in lines {
        match amplitude_posthog_transform::map_line(line) {
            MappingOutcome::Events(events) => {
                expected.mapped += 1;
                for event in events {
                    let event: Value = serde_json::from_str(&event).expect("json");
                    expected
                        .events
                        .insert(event["uuid"].as_str().expect("uuid").to_owned(), event);
                }
            }
            MappingOutcome::Skipped(_) => expected.skipped += 1,
            MappingOutcome::Rejected(reason) => {
                *expected
                    .rejected
                    .entry(reason.as_str().to_owned())
                    .or_default() += 1
            }
        }
    }
    expected
}

pub(crate) fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The migrated events PostHog holds, by uuid (the sidecar's aliases and groups set apart).
pub(crate) fn migrated(stored: &[StoredEvent]) -> BTreeMap<String, Value> {
    stored
        .iter()
        .filter(|stored| !is_from_sidecar(&stored.event))
        .map(|stored| (stored.uuid.clone().expect("uuid"), stored.event.clone()))
        .collect()
}

/// Device → user of every alias PostHog holds.
fn aliases(stored: &[StoredEvent]) -> BTreeMap<String, BTreeSet<String>> {
    let mut aliases: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for stored in stored {
        if stored.event["event"] == "$create_alias" {
            aliases
                .entry(
                    stored.event["properties"]["alias"]
                        .as_str()
                        .expect("alias")
                        .to_owned(),
                )
                .or_default()
                .insert(
                    stored.event["distinct_id"]
                        .as_str()
                        .expect("user")
                        .to_owned(),
                );
        }
    }
    aliases
}

/// Checks PostHog holds exactly the expected events and one alias per expected device.
pub(crate) fn assert_everything_arrived(
    setup: &Setup,
    capture: &PostHogCapture,
    expected: &Expected,
) {
    let stored = capture.stored();
    assert!(stored.iter().all(|event| event.historical_migration));
    let arrived = migrated(&stored);
    let missing = expected
        .events
        .keys()
        .filter(|uuid| !arrived.contains_key(*uuid))
        .count();
    let extra = arrived
        .keys()
        .filter(|uuid| !expected.events.contains_key(*uuid))
        .count();
    assert_eq!((missing, extra), (0, 0), "missing and unexpected events");
    for (uuid, event) in &expected.events {
        assert_eq!(&arrived[uuid], event, "event {uuid} arrived as mapped");
    }
    let pairs = expected_pairs(&setup.lines);
    let aliases = aliases(&stored);
    assert_eq!(
        aliases.keys().collect::<BTreeSet<_>>(),
        pairs.keys().collect::<BTreeSet<_>>()
    );
    for (device, users) in &aliases {
        assert_eq!(users.len(), 1, "{device} aliased to one user: {users:?}");
        assert!(pairs[device].is_superset(users));
    }
}

/// The summary's first two lines when every event is delivered: (rows, mapped, skipped,
/// rejected) and (events, delivered, dead-lettered).
pub(crate) fn exact_summary(expected: &Expected) -> (Vec<u64>, Vec<u64>) {
    let rejected: u64 = expected.rejected.values().sum();
    let events = expected.events.len() as u64;
    (
        vec![expected.rows, expected.mapped, expected.skipped, rejected],
        vec![events, events, 0],
    )
}

/// The summary's first two lines, as numbers.
pub(crate) fn summary(stderr: &str) -> (Vec<u64>, Vec<u64>) {
    let numbers = |prefix: &str| -> Vec<u64> {
        let line = stderr
            .lines()
            .find(|line| line.starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix:?} line in:\n{stderr}"));
        line.split(|c: char| !c.is_ascii_digit())
            .filter(|part| !part.is_empty())
            .map(|part| part.parse().expect("a number"))
            .collect()
    };
    (numbers("rows "), numbers("events "))
}

#[test]
fn a_migration_delivers_every_event_and_alias_and_its_counts_add_up() {
    let setup = Setup::generated(100_000, 41, 0.01);
    let expected = expected(&setup.lines);
    let capture = PostHogCapture::start(KEY);
    let output = setup.migrate(&capture.url(), &[]);
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(0), "{text}");
    assert_everything_arrived(&setup, &capture, &expected);
    assert_eq!(summary(&text), exact_summary(&expected));
    assert!(!text.contains(KEY), "the key is never printed");
    // The dead letters are the refused rows, in Vector's shape, with the mapping's reasons.
    let letters = std::fs::read_to_string(setup.path("state/dead-letters.jsonl")).expect("letters");
    let mut reasons: BTreeMap<String, u64> = BTreeMap::new();
    for letter in letters.lines() {
        let letter: Value = serde_json::from_str(letter).expect("json");
        assert_eq!(letter["metadata"]["dropped"]["component_id"], "migrate");
        *reasons
            .entry(
                letter["metadata"]["dropped"]["message"]
                    .as_str()
                    .expect("reason")
                    .to_owned(),
            )
            .or_default() += 1;
    }
    assert_eq!(reasons, expected.rejected);

    // The same command again: nothing left to send, the same totals.
    let requests = capture.requests().len();
    let again = setup.migrate(&capture.url(), &[]);
    assert_eq!(again.status.code(), Some(0), "{}", stderr(&again));
    assert_eq!(capture.requests().len(), requests, "nothing sent twice");
    assert_eq!(summary(&stderr(&again)), summary(&text));
}

#[test]
fn a_dry_run_counts_everything_and_sends_and_writes_nothing() {
    let setup = Setup::generated(3_000, 42, 0.02);
    let expected = expected(&setup.lines);
    let capture = PostHogCapture::start(KEY);
    let output = setup.migrate(&capture.url(), &["--dry-run"]);
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(0), "{text}");
    assert!(capture.requests().is_empty());
    assert!(!setup.path("state").exists(), "a dry run writes no state");
    let rejected: u64 = expected.rejected.values().sum();
    assert_eq!(
        summary(&text).0,
        vec![expected.rows, expected.mapped, expected.skipped, rejected]
    );
    assert!(
        text.contains(&format!(
            "dry run: would send {} events in ",
            expected.events.len()
        )),
        "{text}"
    );
}

/// The README's first try, as a newcomer types it: no key, no PostHog, `--dry-run --report`.
#[test]
fn a_dry_run_with_report_writes_the_report_of_what_would_be_sent_and_nothing_else() {
    let setup = Setup::generated(3_000, 44, 0.02);
    let expected = expected(&setup.lines);
    let output = Command::new(env!("CARGO_BIN_EXE_amplitude-posthog"))
        .arg("migrate")
        .arg(setup.path("export"))
        .args(["--posthog-host", "https://us.i.posthog.com", "--dry-run"])
        .arg("--state")
        .arg(setup.path("state"))
        .arg("--report")
        .arg(setup.path("demo-report"))
        .env_remove("POSTHOG_API_KEY")
        .output()
        .expect("migrate runs");
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(0), "{text}");
    assert!(!setup.path("state").exists(), "a dry run writes no state");
    assert!(
        text.contains(&format!(
            "report: {}",
            setup.path("demo-report").join("report.html").display()
        )),
        "{text}"
    );
    let report: Value = serde_json::from_slice(
        &std::fs::read(setup.path("demo-report").join("report.json")).expect("report.json"),
    )
    .expect("json");
    assert_eq!(report["delivered_basis"], "dry_run");
    let totals = &report["totals"];
    let rejected: u64 = expected.rejected.values().sum();
    let sum = |counts: &Value| -> u64 {
        counts
            .as_object()
            .expect("reasons")
            .values()
            .map(|count| count.as_u64().expect("count"))
            .sum()
    };
    assert_eq!(
        vec![
            totals["rows"].as_u64().expect("rows"),
            totals["mapped"].as_u64().expect("mapped"),
            sum(&totals["skipped"]),
            sum(&totals["rejected"]),
            totals["events"].as_u64().expect("events"),
            totals["delivered"].as_u64().expect("delivered"),
        ],
        vec![
            expected.rows,
            expected.mapped,
            expected.skipped,
            rejected,
            expected.events.len() as u64,
            0
        ]
    );
    // Every day's rows add up, and every reason has its example row.
    let days = report["days"].as_array().expect("days");
    assert!(days.len() >= 3, "{} days", days.len());
    for day in days {
        assert_eq!(
            day["rows"].as_u64(),
            Some(
                day["mapped"].as_u64().expect("mapped")
                    + sum(&day["skipped"])
                    + sum(&day["rejected"])
            ),
            "{day}"
        );
    }
    let exemplified: BTreeSet<(String, String)> = report["examples"]
        .as_array()
        .expect("examples")
        .iter()
        .map(|example| {
            (
                example["metric"].as_str().expect("metric").to_owned(),
                example["reason"].as_str().expect("reason").to_owned(),
            )
        })
        .collect();
    let reasons: BTreeSet<(String, String)> = totals["skipped"]
        .as_object()
        .expect("skipped")
        .keys()
        .map(|reason| ("skipped".to_owned(), reason.clone()))
        .chain(
            totals["rejected"]
                .as_object()
                .expect("rejected")
                .keys()
                .map(|reason| ("rejected".to_owned(), reason.clone())),
        )
        .collect();
    assert_eq!(exemplified, reasons);
    let html = std::fs::read_to_string(setup.path("demo-report").join("report.html"))
        .expect("report.html");
    assert!(html.contains("A dry run: nothing was sent to PostHog"));
    assert!(html.contains("Every day adds up: each row was mapped, skipped or refused."));
}

#[test]
fn faults_from_posthog_lose_nothing_and_a_refused_event_is_dead_lettered_with_the_answer() {
    let setup = Setup::generated(6_000, 43, 0.0);
    let mut expected = expected(&setup.lines);
    let capture = PostHogCapture::start(KEY);
    // One event PostHog refuses (400 for its whole batch, bisected down to it).
    let refused_user = expected
        .events
        .values()
        .find(|event| event["event"] != "$groupidentify")
        .map(|event| event["distinct_id"].as_str().expect("id").to_owned())
        .expect("an event");
    capture.refuse_distinct_id(&refused_user);
    capture.limit_batch_events(400);
    capture.inject([
        Fault::Status(503),
        Fault::Status(503),
        Fault::RateLimited {
            retry_after_seconds: 1,
        },
        Fault::Disconnect,
        Fault::StoreThenDisconnect,
        Fault::PartialThen503 { accepted: 50 },
        Fault::Status(502),
    ]);
    let output = setup.migrate(&capture.url(), &["--batch-size", "1000"]);
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(0), "{text}");
    // Every event of the refused user went to the dead letters with PostHog's answer.
    let refused: BTreeSet<String> = expected
        .events
        .iter()
        .filter(|(_, event)| event["distinct_id"] == refused_user.as_str())
        .map(|(uuid, _)| uuid.clone())
        .collect();
    assert!(!refused.is_empty());
    let letters = std::fs::read_to_string(setup.path("state/dead-letters.jsonl")).expect("letters");
    let (identities, dead): (Vec<Value>, Vec<Value>) = letters
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).expect("json"))
        .partition(|letter| letter["metadata"]["dropped"]["component_id"] == "identities");
    assert_eq!(dead.len(), refused.len(), "{letters}");
    // The refused user's aliases were refused too: dead-lettered with PostHog's answer.
    for letter in &identities {
        let event: Value =
            serde_json::from_str(letter["message"].as_str().expect("message")).expect("event");
        assert_eq!(event["distinct_id"], refused_user.as_str(), "{letter}");
    }
    for letter in dead.iter().chain(&identities) {
        let reason = letter["metadata"]["dropped"]["message"]
            .as_str()
            .expect("reason");
        assert!(
            reason.starts_with("PostHog refused the batch (400)"),
            "{reason}"
        );
    }
    expected.events.retain(|uuid, _| !refused.contains(uuid));
    let arrived = migrated(&capture.stored());
    assert_eq!(
        arrived.keys().collect::<BTreeSet<_>>(),
        expected.events.keys().collect::<BTreeSet<_>>()
    );
    let (rows, events) = summary(&text);
    assert_eq!(rows[0], setup.lines.len() as u64);
    let produced = expected.events.len() as u64 + refused.len() as u64;
    assert_eq!(
        events,
        vec![
            produced,
            produced - refused.len() as u64,
            refused.len() as u64
        ]
    );
    assert!(text.contains("retries") || !text.is_empty());
}

#[test]
fn a_refused_key_stops_at_once_marks_nothing_delivered_and_never_prints_the_key() {
    let setup = Setup::generated(2_000, 44, 0.0);
    let expected = expected(&setup.lines);
    // A PostHog that refuses the key (every request answered 401)…
    let refusing = PostHogCapture::start(KEY);
    refusing.inject(std::iter::repeat_n(Fault::Status(401), 1000));
    let output = setup.migrate(&refusing.url(), &[]);
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(3), "{text}");
    assert!(
        text.contains("PostHog answered 401 to the project API key"),
        "{text}"
    );
    assert!(!text.contains(KEY), "{text}");
    let (_, events) = summary(&text);
    assert_eq!(events[1], 0, "nothing delivered: {text}");
    assert!(refusing.stored().is_empty());
    // …then the right host and key: the same state finishes the job.
    let capture = PostHogCapture::start(KEY);
    let again = setup.migrate(&capture.url(), &[]);
    assert_eq!(again.status.code(), Some(0), "{}", stderr(&again));
    assert_everything_arrived(&setup, &capture, &expected);
}

#[test]
fn killed_at_random_moments_the_same_command_loses_nothing_and_counts_once() {
    let setup = Setup::generated(40_000, 45, 0.01);
    let expected = expected(&setup.lines);
    let capture = PostHogCapture::start(KEY);
    // Slow PostHog down a little so kills land in reading, sending and the alias phase.
    let mut kills = 0;
    for delay_ms in [300, 900, 1500, 2500, 4000] {
        let mut child = setup
            .command(
                &capture.url(),
                &["--batch-size", "500", "--concurrency", "2"],
            )
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("starts");
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        if child.try_wait().expect("status").is_none() {
            child.kill().expect("SIGKILL");
            kills += 1;
        }
        let _ = child.wait();
    }
    assert!(kills >= 2, "only {kills} kills landed");
    let output = setup.migrate(&capture.url(), &[]);
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(0), "{text}");
    assert_everything_arrived(&setup, &capture, &expected);
    // Counted once, whatever was sent twice.
    assert_eq!(summary(&text), exact_summary(&expected));
    let rejected: u64 = expected.rejected.values().sum();
    let letters = std::fs::read_to_string(setup.path("state/dead-letters.jsonl")).expect("letters");
    assert_eq!(letters.lines().count() as u64, rejected);
}

#[test]
fn bad_input_gets_one_clear_line_and_a_failing_exit() {
    let setup = Setup::generated(500, 46, 0.0);
    let capture = PostHogCapture::start(KEY);
    // A missing directory.
    let mut command = Command::new(env!("CARGO_BIN_EXE_amplitude-posthog"));
    let output = command
        .args(["migrate", "/nonexistent/export", "--posthog-host"])
        .arg(capture.url())
        .arg("--api-key-file")
        .arg(setup.path("key"))
        .arg("--state")
        .arg(setup.path("state-missing"))
        .output()
        .expect("runs");
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        stderr(&output),
        "amplitude-posthog: cannot open /nonexistent/export: No such file or directory (os error 2)\n"
    );
    // A bad key file.
    std::fs::write(setup.path("bad-key"), "phc key with spaces\n").expect("write");
    let output = Command::new(env!("CARGO_BIN_EXE_amplitude-posthog"))
        .arg("migrate")
        .arg(setup.path("export"))
        .args(["--posthog-host", &capture.url(), "--api-key-file"])
        .arg(setup.path("bad-key"))
        .output()
        .expect("runs");
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        stderr(&output),
        "amplitude-posthog: the PostHog project API key is empty or malformed (one line of printable ASCII expected)\n"
    );
    // An unreadable gzip among good files: the others migrate, the file is named, exit 1.
    let broken = setup.path("export/187520/187520_2024-01-01_0#99.json.gz");
    std::fs::write(&broken, [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 1, 2, 3]).expect("write");
    let output = setup.migrate(&capture.url(), &[]);
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(
        text.lines().any(|line| line.starts_with("  problem: cannot read ") && line.contains("#99.json.gz")),
        "{text}"
    );
    assert!(!capture.stored().is_empty(), "the good files were migrated");
}

#[test]
fn a_zip_with_hostile_member_names_is_read_in_place_and_nothing_is_written_outside_the_state() {
    use std::io::Write as _;
    let setup = Setup::generated(600, 50, 0.0);
    let expected = expected(&setup.lines);
    // The export's rows in three members whose names try to escape or be absolute.
    let zip_path = setup.path("inbox/export.zip");
    std::fs::create_dir_all(setup.path("inbox")).expect("mkdir");
    let names = [
        "../../escape.json.gz",
        "/tmp/absolute.json.gz",
        "a/../../b.json.gz",
    ];
    let mut zip = zip::ZipWriter::new(std::fs::File::create(&zip_path).expect("zip"));
    for (index, name) in names.iter().enumerate() {
        let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        for line in setup.lines.iter().skip(index).step_by(names.len()) {
            gzip.write_all(line).expect("gzip");
            gzip.write_all(b"\n").expect("gzip");
        }
        zip.start_file(*name, zip::write::SimpleFileOptions::default())
            .expect("member");
        zip.write_all(&gzip.finish().expect("gzip"))
            .expect("member");
    }
    zip.finish().expect("zip");
    let before: BTreeSet<PathBuf> = amplitude_posthog::fs::walk_files(setup.dir.path())
        .expect("files")
        .into_iter()
        .collect();
    let capture = PostHogCapture::start(KEY);
    let output = Command::new(env!("CARGO_BIN_EXE_amplitude-posthog"))
        .arg("migrate")
        .arg(&zip_path)
        .args(["--posthog-host", &capture.url(), "--api-key-file"])
        .arg(setup.path("key"))
        .arg("--state")
        .arg(setup.path("state"))
        .args(["--rate", "unlimited"])
        .output()
        .expect("migrate runs");
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(0), "{text}");
    assert_eq!(summary(&text), exact_summary(&expected));
    let arrived = migrated(&capture.stored());
    assert_eq!(
        arrived.keys().collect::<BTreeSet<_>>(),
        expected.events.keys().collect::<BTreeSet<_>>()
    );
    // Only the state was written; no member name became a path.
    let after: BTreeSet<PathBuf> = amplitude_posthog::fs::walk_files(setup.dir.path())
        .expect("files")
        .into_iter()
        .collect();
    for new in after.difference(&before) {
        assert!(
            new.starts_with(setup.path("state")),
            "{} written",
            new.display()
        );
    }
    assert!(
        !setup
            .dir
            .path()
            .parent()
            .expect("tmp")
            .join("escape.json.gz")
            .exists()
    );
    assert!(!Path::new("/tmp/absolute.json.gz").exists());
}

/// `migrate --engine vector` as a user runs it, or `None` (one line said) without Vector.
pub(crate) fn vector_command(setup: &Setup, host: &str) -> Option<Command> {
    let vector = crate::helpers::vector::vector()?;
    let mut command = setup.command(host, &["--engine", "vector"]);
    command.env("VECTOR_BIN", vector);
    Some(command)
}

/// Reasons in Vector's dead letters under the state, repeats included.
pub(crate) fn vector_dead_letters(setup: &Setup) -> BTreeMap<String, u64> {
    let mut reasons = BTreeMap::new();
    for file in amplitude_posthog::fs::walk_files(&setup.path("state/vector/dead-letters"))
        .expect("dead letters")
    {
        for letter in std::fs::read_to_string(file).expect("letters").lines() {
            let letter: Value = serde_json::from_str(letter).expect("json");
            *reasons
                .entry(
                    letter["metadata"]["dropped"]["message"]
                        .as_str()
                        .expect("reason")
                        .to_owned(),
                )
                .or_default() += 1;
        }
    }
    reasons
}

#[test]
fn the_vector_engine_delivers_everything_through_faults_and_a_rerun_sends_nothing() {
    let setup = Setup::generated(20_000, 47, 0.01);
    let capture = PostHogCapture::start(KEY);
    let Some(mut command) = vector_command(&setup, &capture.url()) else {
        return;
    };
    let expected = expected(&setup.lines);
    capture.inject([
        Fault::Status(503),
        Fault::Disconnect,
        Fault::RateLimited {
            retry_after_seconds: 1,
        },
        Fault::PartialThen503 { accepted: 10 },
    ]);
    let output = command.output().expect("migrate runs");
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(0), "{text}");
    assert_everything_arrived(&setup, &capture, &expected);
    assert_eq!(summary(&text), exact_summary(&expected));
    assert_eq!(vector_dead_letters(&setup), expected.rejected);
    assert!(!text.contains(KEY), "the key is never printed");
    // Its report: the summary's numbers, day by day.
    let events = expected.events.len() as u64;
    let report: Value =
        serde_json::from_slice(&std::fs::read(setup.path("state/report.json")).expect("report"))
            .expect("JSON");
    assert_eq!(report["totals"]["rows"], expected.rows);
    assert_eq!(report["totals"]["delivered"], events);
    let days = report["days"].as_array().expect("days");
    let delivered: u64 = days
        .iter()
        .map(|day| day["delivered"].as_u64().expect("n"))
        .sum();
    assert_eq!(delivered, events);
    let aliases: u64 = days
        .iter()
        .map(|day| day["aliases_sent"].as_u64().expect("n"))
        .sum();
    assert_eq!(aliases as usize, expected_pairs(&setup.lines).len());
    assert_eq!(report["delivered_basis"], "produced");
    // The report of the same pipeline as if run by hand: from the export, the sidecar's
    // database and Vector's dead letters — the same days and totals.
    let by_hand = Command::new(env!("CARGO_BIN_EXE_amplitude-posthog"))
        .arg("report")
        .arg("--export")
        .arg(setup.path("export"))
        .arg("--sidecar-db")
        .arg(setup.path("state/vector/identities.sqlite"))
        .arg("--dead-letters")
        .arg(setup.path("state/vector/dead-letters"))
        .arg("--out")
        .arg(setup.path("by-hand"))
        .output()
        .expect("report runs");
    assert_eq!(by_hand.status.code(), Some(0), "{}", stderr(&by_hand));
    let hand: Value =
        serde_json::from_slice(&std::fs::read(setup.path("by-hand/report.json")).expect("report"))
            .expect("JSON");
    assert_eq!(hand["totals"], report["totals"]);
    assert_eq!(hand["days"], report["days"]);
    let config = std::fs::read_to_string(setup.path("state/vector/vector.toml")).expect("config");
    assert!(!config.contains(KEY), "the key is not in the config");
    let key = setup.path("state/vector/secrets/api_key");
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(&key).expect("key").permissions()
        ) & 0o777,
        0o600
    );

    // The same command again: Vector finds every file read, nothing is sent.
    let requests = capture.requests().len();
    let again = vector_command(&setup, &capture.url())
        .expect("Vector")
        .output()
        .expect("migrate runs");
    assert_eq!(again.status.code(), Some(0), "{}", stderr(&again));
    assert_eq!(capture.requests().len(), requests, "nothing sent twice");
    assert_eq!(summary(&stderr(&again)), summary(&text));
}

#[test]
fn the_vector_engine_killed_mid_run_resumes_with_nothing_lost() {
    let setup = Setup::generated(30_000, 48, 0.005);
    let capture = PostHogCapture::start(KEY);
    let Some(mut command) = vector_command(&setup, &capture.url()) else {
        return;
    };
    let expected = expected(&setup.lines);
    // Waits until PostHog has `requests` requests more: Vector is in the middle of the export.
    let wait_for = |requests: usize| {
        let started = std::time::Instant::now();
        while capture.requests().len() < requests && started.elapsed().as_secs() < 60 {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    };

    // 1. Vector itself is SIGKILLed: the command notices, stops and says to run it again.
    let config = setup.path("state/vector/vector.toml");
    let child = command
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("starts");
    wait_for(2);
    // Vector is the process whose command line names the workspace's config.
    let vector_pid = std::fs::read_dir("/proc")
        .expect("/proc")
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .find(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|line| {
                line.split(|byte| *byte == 0)
                    .any(|argument| argument == config.as_os_str().as_encoded_bytes())
            })
        })
        .expect("Vector was running");
    // SAFETY: kill with a pid read from /proc; at worst it no longer exists.
    assert_eq!(
        unsafe { libc::kill(vector_pid, libc::SIGKILL) },
        0,
        "SIGKILL"
    );
    let output = child.wait_with_output().expect("migrate ends");
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(
        text.contains("Vector stopped by itself") && text.contains("run the same command again"),
        "{text}"
    );

    // 2. The command itself is SIGKILLed: its Vector dies with it.
    let mut child = vector_command(&setup, &capture.url())
        .expect("Vector")
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("starts");
    wait_for(capture.requests().len() + 2);
    child.kill().expect("SIGKILL");
    let _ = child.wait();
    assert!(
        migrated(&capture.stored()).len() < expected.events.len(),
        "the kills landed before the end"
    );

    // 3. The same command: a new Vector on the same data directory finishes the job.
    let output = vector_command(&setup, &capture.url())
        .expect("Vector")
        .output()
        .expect("migrate runs");
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(0), "{text}");
    assert_everything_arrived(&setup, &capture, &expected);
    let dead = vector_dead_letters(&setup);
    for (reason, count) in &expected.rejected {
        assert!(dead[reason] >= *count, "{reason}: {dead:?}");
    }
}

#[test]
fn the_vector_engine_stops_on_a_refused_key() {
    let setup = Setup::generated(2_000, 49, 0.0);
    let refusing = PostHogCapture::start(KEY);
    let Some(mut command) = vector_command(&setup, &refusing.url()) else {
        return;
    };
    refusing.inject(std::iter::repeat_n(Fault::Status(401), 1000));
    let output = command.output().expect("migrate runs");
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(3), "{text}");
    assert!(
        text.contains("PostHog answered 401 to the project API key"),
        "{text}"
    );
    assert!(!text.contains(KEY), "{text}");
    assert!(refusing.stored().is_empty());
}
