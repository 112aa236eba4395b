//! The sidecar end to end: the real binary, real HTTP on 127.0.0.1, a real SQLite file, and
//! the PostHog capture stand-in of `amplitude-posthog-test-support`. Heavy repetition,
//! crashes (SIGKILL) in intake and in sending, PostHog's faults, and bad input.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use amplitude_posthog_test_support::posthog_capture::{Fault, PostHogCapture};
use amplitude_posthog_test_support::process::Sidecar;
use amplitude_posthog_transform::uuid_v5;
use serde_json::{Value, json};

const KEY: &str = "phc_sidecar_test_key";

/// The sidecar binary of this package, started on any loopback port.
fn start_sidecar(db: &Path, posthog: &str, key: &str, extra: &[&str]) -> Sidecar {
    Sidecar::start(
        Path::new(env!("CARGO_BIN_EXE_posthog-identity-sidecar")),
        "127.0.0.1:0",
        db,
        posthog,
        key,
        extra,
    )
}

fn record(user: &str, device: &str, timestamp: &str) -> Value {
    json!({"kind": "identity", "user_id": user, "device_id": device, "timestamp": timestamp})
}

fn expected_uuid(user: &str, device: &str) -> String {
    uuid_v5(format!("amplitude-alias:{}:{user}:{device}", user.len()).as_bytes())
}

/// An alias as PostHog stored it: (user, timestamp, uuid), by device.
type StoredAliases = BTreeMap<String, (String, String, String)>;

/// Aliases PostHog stored: device → (user, timestamp, uuid), and how often each uuid came.
fn aliases(server: &PostHogCapture) -> (StoredAliases, BTreeMap<String, usize>) {
    let mut by_device = BTreeMap::new();
    for stored in server
        .stored()
        .into_iter()
        .filter(|stored| stored.event["event"] == "$create_alias")
    {
        let event = stored.event;
        let device = event["properties"]["alias"]
            .as_str()
            .expect("alias")
            .to_owned();
        let entry = (
            event["distinct_id"].as_str().expect("user").to_owned(),
            event["timestamp"].as_str().expect("ts").to_owned(),
            event["uuid"].as_str().expect("uuid").to_owned(),
        );
        if let Some(previous) = by_device.insert(device.clone(), entry.clone()) {
            assert_eq!(
                previous, entry,
                "device {device} was sent twice with different content"
            );
        }
    }
    (by_device, server.uuid_counts())
}

fn tmp_db() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tmp");
    let db = dir.path().join("sidecar.sqlite");
    (dir, db)
}

#[test]
fn a_million_repeated_records_become_exactly_one_alias_per_pair() {
    let server = PostHogCapture::start(KEY);
    let (_dir, db) = tmp_db();
    let sidecar = start_sidecar(&db, &server.url(), KEY, &[]);
    // 30 000 devices, each with a first user; every 20th device later also used by another
    // user (a shared device: a conflict). 1 000 000 records, heavily repeated, times random.
    let devices = 30_000_u64;
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut earliest: BTreeMap<String, String> = BTreeMap::new();
    // Per device, its earliest pair by time (ties: the smaller user): the alias's user.
    let mut earliest_pair: BTreeMap<String, (String, String)> = BTreeMap::new();
    let mut records = Vec::with_capacity(20_000);
    let mut sent = 0;
    while sent < 1_000_000 {
        let device_index = next() % devices;
        let device = format!("device-{device_index}");
        let shared =
            device_index.is_multiple_of(20) && next() % 2 == 0 && earliest.contains_key(&device);
        let user = if shared {
            format!("user-{}", device_index / 3 + 1)
        } else {
            format!("user-{}", device_index / 3)
        };
        let timestamp = format!(
            "2024-0{}-{:02}T{:02}:{:02}:00.000Z",
            1 + next() % 9,
            1 + next() % 28,
            next() % 24,
            next() % 60
        );
        let pair = earliest_pair
            .entry(device.clone())
            .or_insert_with(|| (timestamp.clone(), user.clone()));
        if (&timestamp, &user) < (&pair.0, &pair.1) {
            *pair = (timestamp.clone(), user.clone());
        }
        if !shared {
            let entry = earliest
                .entry(device.clone())
                .or_insert_with(|| timestamp.clone());
            if timestamp < *entry {
                *entry = timestamp.clone();
            }
        }
        records.push(record(&user, &device, &timestamp));
        sent += 1;
        if records.len() == 20_000 {
            let body = serde_json::to_vec(&records).expect("json");
            assert_eq!(sidecar.post(&body).0, 200);
            records.clear();
        }
    }
    let status = sidecar.wait_until_drained(Duration::from_secs(120));
    assert_eq!(status["received"], 1_000_000);
    let (by_device, uuid_counts) = aliases(&server);
    assert_eq!(
        by_device.len() as u64,
        status["sent"].as_u64().expect("sent")
    );
    assert_eq!(by_device.len(), earliest_pair.len(), "one alias per device");
    for (device, (user, timestamp, uuid)) in &by_device {
        // Right direction (distinct_id is the user), to the user of the earliest pair, with
        // that pair's time: aliases go only once released, when every record is in.
        assert_eq!(
            (timestamp, user),
            (&earliest_pair[device].0, &earliest_pair[device].1),
            "{device}"
        );
        assert_eq!(uuid, &expected_uuid(user, device), "deterministic uuid");
    }
    let moved = earliest_pair
        .iter()
        .filter(|(device, (_, user))| {
            let index: u64 = device.trim_start_matches("device-").parse().expect("index");
            *user != format!("user-{}", index / 3)
        })
        .count();
    assert!(
        moved > 10,
        "some shared devices' earliest user came second: {moved}"
    );
    assert!(
        uuid_counts.values().all(|count| *count == 1),
        "each alias sent once"
    );
    let conflicts = status["conflicts"].as_u64().expect("conflicts");
    assert!(
        conflicts > 100,
        "shared devices are counted as conflicts: {conflicts}"
    );
    assert_eq!(
        status["pairs"].as_u64(),
        Some(by_device.len() as u64 + conflicts)
    );
}

#[test]
fn a_sigkill_in_intake_or_in_sending_loses_nothing_and_never_changes_a_uuid() {
    let server = PostHogCapture::start(KEY);
    let (_dir, db) = tmp_db();
    let batches: Vec<Vec<u8>> = (0..40)
        .map(|batch| {
            let records: Vec<Value> = (0..500)
                .map(|i| {
                    record(
                        &format!("u{}", (batch * 500 + i) / 2),
                        &format!("d{}", batch * 500 + i),
                        "2024-03-01T10:00:00.000Z",
                    )
                })
                .collect();
            serde_json::to_vec(&records).expect("json")
        })
        .collect();
    // PostHog accepts part of the first request then fails, and rate-limits for long: the
    // sidecar is killed while it waits to retry.
    server.inject([
        Fault::PartialThen503 { accepted: 120 },
        Fault::RateLimited {
            retry_after_seconds: 30,
        },
    ]);
    let mut sidecar = start_sidecar(&db, &server.url(), KEY, &["--batch-size", "300"]);
    let mut delivered = 0;
    for (index, body) in batches.iter().enumerate() {
        if index == 20 {
            // Killed while a batch is being received and aliases are waiting to be re-sent;
            // Vector keeps retrying the batch that got no 200.
            let url = format!("{}/records", sidecar.url);
            let in_flight = body.clone();
            let racing = std::thread::spawn(move || {
                reqwest::blocking::Client::new()
                    .post(url)
                    .body(in_flight)
                    .send()
                    .map(|r| r.status().as_u16())
                    .unwrap_or(0)
            });
            std::thread::sleep(Duration::from_millis(2));
            sidecar.kill();
            let _ = racing.join();
            sidecar = start_sidecar(&db, &server.url(), KEY, &["--batch-size", "300"]);
        }
        // Like Vector: a batch without a 200 is sent again.
        loop {
            if sidecar.post(body).0 == 200 {
                delivered += 1;
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    assert_eq!(delivered, 40);
    let status = sidecar.wait_until_drained(Duration::from_secs(120));
    assert_eq!(status["sent"], 20_000);
    let (by_device, uuid_counts) = aliases(&server);
    assert_eq!(by_device.len(), 20_000, "no pair lost");
    for (device, (user, _, uuid)) in &by_device {
        assert_eq!(
            uuid,
            &expected_uuid(user, device),
            "one uuid per pair, before and after the crash"
        );
    }
    // Events accepted before the crash came again with the same uuids (PostHog collapses them).
    assert!(uuid_counts.values().any(|count| *count > 1));
    assert_eq!(uuid_counts.len(), 20_000);
}

#[test]
fn posthog_faults_are_handled_as_specified() {
    let server = PostHogCapture::start(KEY);
    let (_dir, db) = tmp_db();
    server.inject([
        Fault::Status(503),
        Fault::Status(503),
        Fault::Status(500),
        Fault::RateLimited {
            retry_after_seconds: 1,
        },
    ]);
    // 413 for requests of more than 40 events: batches of 500 are split down to 40 or fewer.
    server.limit_batch_events(40);
    // PostHog refuses one id: the request fails with 400 and is bisected to that alias.
    server.refuse_distinct_id("user-refused");
    let sidecar = start_sidecar(&db, &server.url(), KEY, &["--batch-size", "500"]);
    let mut records: Vec<Value> = (0..1_000)
        .map(|i| {
            record(
                &format!("user-{i}"),
                &format!("device-{i}"),
                "2024-03-01T10:00:00.000Z",
            )
        })
        .collect();
    records.push(record(
        "user-refused",
        "device-x",
        "2024-03-01T10:00:00.000Z",
    ));
    assert_eq!(
        sidecar.post(&serde_json::to_vec(&records).expect("json")).0,
        200
    );
    let status = sidecar.wait_until_drained(Duration::from_secs(60));
    assert_eq!(status["sent"], 1_000);
    assert_eq!(status["failed"], 1);
    let (by_device, uuid_counts) = aliases(&server);
    assert_eq!(by_device.len(), 1_000);
    assert!(!by_device.contains_key("device-x"));
    assert!(uuid_counts.values().all(|count| *count == 1));
    let requests = server.requests();
    assert!(requests.iter().any(|request| request.status == 413));
    assert!(requests.iter().any(|request| request.status == 429));
    assert!(requests.iter().any(|request| request.status == 400));
    assert!(
        requests
            .iter()
            .filter(|request| request.status == 200)
            .all(|request| request.events <= 40)
    );
}

#[test]
fn a_401_stops_sending_keeps_everything_pending_and_never_prints_the_key() {
    let server = PostHogCapture::start(KEY);
    let (_dir, db) = tmp_db();
    // A malformed key (PostHog answers 401 for those).
    let bad_key = format!("phc_{}", "k".repeat(70));
    let sidecar = start_sidecar(&db, &server.url(), &bad_key, &[]);
    let records: Vec<Value> = (0..50)
        .map(|i| {
            record(
                &format!("u{i}"),
                &format!("d{i}"),
                "2024-03-01T10:00:00.000Z",
            )
        })
        .collect();
    assert_eq!(
        sidecar.post(&serde_json::to_vec(&records).expect("json")).0,
        200
    );
    // Every record is in: the aliases may go.
    reqwest::blocking::Client::new()
        .post(format!("{}/flush", sidecar.url))
        .send()
        .expect("flush");
    let started = Instant::now();
    let status = loop {
        let status = sidecar.status();
        if status["credentials_error"] == true {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no credentials error reported: {status}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status["pending"], 50);
    assert_eq!(status["sent"], 0);
    assert!(
        status["last_error"]
            .as_str()
            .is_some_and(|error| error.contains("credentials") && !error.contains(&bad_key))
    );
    // Still accepting records while stopped, so Vector is not blocked.
    assert_eq!(
        sidecar
            .post(
                &serde_json::to_vec(&[record("u-late", "d-late", "2024-03-01T10:00:00.000Z")])
                    .expect("json")
            )
            .0,
        200
    );
    let metrics = reqwest::blocking::get(format!("{}/metrics", sidecar.url))
        .expect("metrics")
        .text()
        .expect("text");
    assert!(
        metrics.contains("posthog_alias_sink_credentials_error 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("posthog_alias_sink_aliases_pending 51"),
        "{metrics}"
    );
    let log = sidecar.log();
    assert!(log.contains("credentials error"), "{log}");
    assert!(
        !log.contains(&bad_key[4..20]),
        "the key must never be printed"
    );
    assert!(server.stored().is_empty());
}

#[test]
fn bad_input_gets_a_400_naming_the_record_and_the_server_keeps_serving() {
    let server = PostHogCapture::start(KEY);
    let (_dir, db) = tmp_db();
    let sidecar = start_sidecar(&db, &server.url(), KEY, &["--max-body-bytes", "100000"]);
    let good = serde_json::to_vec(&[record("u1", "d1", "2024-03-01T10:00:00.000Z")]).expect("json");
    let cases: Vec<(Vec<u8>, u16, &str)> = vec![
        (b"{not json".to_vec(), 400, "record 0"),
        (br#"[{"kind":"identity","user_id":"u","device_id":"d","timestamp":"2024-03-01T10:00:00.000Z"},{"kind":"identity","user_id":["u"],"device_id":"d","timestamp":"2024-03-01T10:00:00.000Z"}]"#.to_vec(), 400, "record 1"),
        (br#"[{"kind":"identity","user_id":"u","timestamp":"2024-03-01T10:00:00.000Z"}]"#.to_vec(), 400, "device_id"),
        (br#"[{"kind":"identity","user_id":"u","device_id":"d","timestamp":"yesterday"}]"#.to_vec(), 400, "timestamp"),
        (br#"[{"kind":"alias","user_id":"u","device_id":"d"}]"#.to_vec(), 400, "record 0"),
        (vec![b' '; 200_000], 413, ""),
    ];
    for (body, status, needle) in cases {
        let (got, message) = sidecar.post(&body);
        assert_eq!(got, status, "{message}");
        assert!(message.contains(needle), "{message} should name {needle}");
        assert_eq!(sidecar.post(&good).0, 200, "the server keeps serving");
    }
    // NDJSON and gzip are accepted.
    let ndjson = format!(
        "{}\n{}\n",
        record("u2", "d2", "2024-03-01T10:00:00.000Z"),
        record("u3", "d3", "2024-03-01T10:00:00.000Z")
    );
    let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gzip.write_all(ndjson.as_bytes()).expect("gzip");
    assert_eq!(sidecar.post(&gzip.finish().expect("gzip")).0, 200);
    // `flush` waits until nothing is pending, then exits 0.
    let flush = Command::new(env!("CARGO_BIN_EXE_posthog-identity-sidecar"))
        .args(["flush", "--timeout-secs", "30", "--url", &sidecar.url])
        .output()
        .expect("flush runs");
    assert!(
        flush.status.success(),
        "{}",
        String::from_utf8_lossy(&flush.stderr)
    );
    assert_eq!(sidecar.status()["sent"], 3);
    // `status` reads the database directly.
    let status = Command::new(env!("CARGO_BIN_EXE_posthog-identity-sidecar"))
        .args(["status", "--db"])
        .arg(&db)
        .output()
        .expect("status runs");
    let printed: Value = serde_json::from_slice(&status.stdout).expect("status prints JSON");
    assert_eq!(printed["sent"], 3);
    assert!(sidecar.terminate().success(), "SIGTERM shuts down cleanly");
    let devices: BTreeSet<String> = aliases(&server).0.into_keys().collect();
    assert_eq!(
        devices,
        ["d1", "d2", "d3"].map(str::to_owned).into_iter().collect()
    );
}

#[test]
fn group_properties_are_sent_once_per_change() {
    let server = PostHogCapture::start(KEY);
    let (_dir, db) = tmp_db();
    let sidecar = start_sidecar(&db, &server.url(), KEY, &[]);
    let snapshot = |plan: &str| json!({"kind": "groups", "groups": {"company": "acme"}, "group_properties": {"company": {"acme": {"plan": plan, "seats": 40}}}, "timestamp": "2024-03-01T10:00:00.000Z"});
    // The same snapshot on many rows is one $groupidentify.
    let repeated: Vec<Value> = (0..100).map(|_| snapshot("pro")).collect();
    assert_eq!(
        sidecar
            .post(&serde_json::to_vec(&repeated).expect("json"))
            .0,
        200
    );
    sidecar.wait_until_drained(Duration::from_secs(30));
    assert_eq!(
        sidecar
            .post(&serde_json::to_vec(&[snapshot("pro")]).expect("json"))
            .0,
        200
    );
    // A change is sent again; the same change again is not.
    assert_eq!(
        sidecar
            .post(
                &serde_json::to_vec(&[snapshot("enterprise"), snapshot("enterprise")])
                    .expect("json")
            )
            .0,
        200
    );
    let status = sidecar.wait_until_drained(Duration::from_secs(30));
    assert_eq!(status["groups"], 1);
    let sent: Vec<Value> = server
        .stored()
        .into_iter()
        .map(|stored| stored.event)
        .filter(|event| event["event"] == "$groupidentify")
        .collect();
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert_eq!(sent[0]["distinct_id"], "$company_acme");
    assert_eq!(sent[0]["properties"]["$group_type"], "company");
    assert_eq!(sent[0]["properties"]["$group_key"], "acme");
    assert_eq!(
        sent[0]["properties"]["$group_set"],
        json!({"plan": "pro", "seats": 40})
    );
    assert_eq!(sent[1]["properties"]["$group_set"]["plan"], "enterprise");
    assert_ne!(
        sent[0]["uuid"], sent[1]["uuid"],
        "each property set has its own deterministic uuid"
    );
}
