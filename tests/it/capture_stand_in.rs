//! A self-test of the PostHog capture stand-in (`tests/support/src/posthog_capture.rs`): it
//! accepts request bodies framed as Vector's http sink frames them from `vector.toml`
//! (`payload_prefix` + `[e1,e2,…]` + `payload_suffix`, gzip) and records every event once;
//! its scripted faults (503, 429 with `Retry-After`, 408, partial acceptance) answer as
//! PostHog does; it validates like PostHog. The retry loop here is the test's own, imitating
//! Vector's rules: this proves the test double, not that product code survives faults (the
//! sidecar's tests and the real-Vector tests do that).

use std::collections::BTreeSet;
use std::io::Write;
use std::time::Duration;

use amplitude_posthog::generator::GeneratorConfig;
use amplitude_posthog_test_support::posthog_capture::{Fault, PostHogCapture};
use flate2::Compression;
use flate2::write::GzEncoder;

const KEY: &str = "phc_test_key_for_the_capture_server";

/// The sink's framing, read from vector.toml so the test follows the shipped config.
struct Framing {
    prefix: String,
    suffix: String,
    max_bytes: usize,
    max_events: usize,
}

impl Framing {
    fn from_vector_toml(api_key: &str) -> Framing {
        let config: toml::Table = toml::from_str(
            &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/vector.toml"))
                .expect("read"),
        )
        .expect("toml");
        let sink = &config["sinks"]["posthog"];
        Framing {
            prefix: sink["payload_prefix"]
                .as_str()
                .expect("prefix")
                .replace("SECRET[posthog.api_key]", api_key),
            suffix: sink["payload_suffix"].as_str().expect("suffix").to_owned(),
            max_bytes: sink["batch"]["max_bytes"].as_integer().expect("max_bytes") as usize,
            max_events: sink["batch"]["max_events"]
                .as_integer()
                .expect("max_events") as usize,
        }
    }

    /// Events grouped like Vector's batcher: at most `max_events`, at most `max_bytes` of events.
    fn batches(&self, events: &[String]) -> Vec<Vec<u8>> {
        let mut bodies = Vec::new();
        let mut current: Vec<&str> = Vec::new();
        let mut size = 0;
        for event in events {
            if !current.is_empty()
                && (current.len() == self.max_events || size + event.len() > self.max_bytes)
            {
                bodies.push(self.body(&current));
                current.clear();
                size = 0;
            }
            size += event.len();
            current.push(event);
        }
        if !current.is_empty() {
            bodies.push(self.body(&current));
        }
        bodies
    }

    fn body(&self, events: &[&str]) -> Vec<u8> {
        let json = format!("{}[{}]{}", self.prefix, events.join(","), self.suffix);
        let mut gzip = GzEncoder::new(Vec::new(), Compression::default());
        gzip.write_all(json.as_bytes()).expect("gzip");
        gzip.finish().expect("gzip")
    }
}

/// Vector's http sink retry rules: 408, 429 and 5xx are retried (honouring Retry-After),
/// anything else ends the request. Returns the final status.
fn post_like_vector(client: &reqwest::blocking::Client, url: &str, body: &[u8]) -> u16 {
    let mut backoff = Duration::from_millis(10);
    for _ in 0..50 {
        let response = client
            .post(format!("{url}/batch/"))
            .header("Content-Type", "application/json")
            .header("Content-Encoding", "gzip")
            .body(body.to_vec())
            .send()
            .expect("the capture server answers");
        let status = response.status().as_u16();
        if !(status == 408 || status == 429 || status >= 500) {
            return status;
        }
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|value| value.to_str().ok()?.parse::<u64>().ok());
        std::thread::sleep(retry_after.map_or(backoff, Duration::from_secs));
        backoff = (backoff * 2).min(Duration::from_millis(200));
    }
    panic!("still failing after 50 attempts");
}

fn mapped_events(rows: u64, seed: u64) -> Vec<String> {
    crate::helpers::corpus::mapped_events(GeneratorConfig {
        rows,
        seed,
        ..GeneratorConfig::default()
    })
}

fn uuids(events: &[String]) -> BTreeSet<String> {
    events
        .iter()
        .map(|event| {
            serde_json::from_str::<serde_json::Value>(event).expect("json")["uuid"]
                .as_str()
                .expect("uuid")
                .to_owned()
        })
        .collect()
}

#[test]
fn every_batch_of_the_generated_corpus_is_accepted_and_every_event_arrives_once() {
    let server = PostHogCapture::start(KEY);
    let framing = Framing::from_vector_toml(KEY);
    let events = mapped_events(20_000, 21);
    let bodies = framing.batches(&events);
    assert!(bodies.len() >= 20, "{} batches", bodies.len());
    let client = reqwest::blocking::Client::new();
    for body in &bodies {
        assert_eq!(post_like_vector(&client, &server.url(), body), 200);
    }
    let counts = server.uuid_counts();
    assert_eq!(counts.len(), events.len(), "every event arrived");
    assert!(
        counts.values().all(|count| *count == 1),
        "no event arrived twice"
    );
    assert_eq!(
        counts.keys().cloned().collect::<BTreeSet<_>>(),
        uuids(&events)
    );
    assert!(
        server
            .stored()
            .iter()
            .all(|event| event.historical_migration)
    );
    assert!(
        server
            .requests()
            .iter()
            .all(|request| request.gzip && request.status == 200)
    );
}

#[test]
fn scripted_faults_answer_like_posthog_and_partial_acceptance_only_repeats_uuids() {
    let server = PostHogCapture::start(KEY);
    server.inject([
        Fault::Status(503),
        Fault::Status(503),
        Fault::Status(502),
        Fault::RateLimited {
            retry_after_seconds: 1,
        },
        Fault::PartialThen503 { accepted: 40 },
        Fault::Status(408),
    ]);
    let framing = Framing::from_vector_toml(KEY);
    let events = mapped_events(3_000, 22);
    let client = reqwest::blocking::Client::new();
    for body in framing.batches(&events) {
        assert_eq!(post_like_vector(&client, &server.url(), &body), 200);
    }
    let counts = server.uuid_counts();
    assert_eq!(
        counts.keys().cloned().collect::<BTreeSet<_>>(),
        uuids(&events),
        "nothing lost"
    );
    // The 40 events accepted before the 503 came again with the same uuids: PostHog
    // collapses them; nothing else repeats.
    assert_eq!(counts.values().filter(|count| **count == 2).count(), 40);
    assert!(counts.values().all(|count| *count <= 2));
    let statuses: Vec<u16> = server
        .requests()
        .iter()
        .map(|request| request.status)
        .collect();
    assert_eq!(&statuses[..6], &[503, 503, 502, 429, 503, 408]);
}

fn post(server: &PostHogCapture, body: Vec<u8>, gzip_header: bool) -> u16 {
    let mut request = reqwest::blocking::Client::new()
        .post(format!("{}/batch/", server.url()))
        .body(body);
    if gzip_header {
        request = request.header("Content-Encoding", "gzip");
    }
    request.send().expect("answers").status().as_u16()
}

fn event(uuid: &str) -> serde_json::Value {
    serde_json::json!({"event": "x", "distinct_id": "u", "uuid": uuid, "timestamp": "2024-07-06T12:34:56.789Z", "properties": {}})
}

fn batch(key: &str, events: Vec<serde_json::Value>) -> Vec<u8> {
    serde_json::to_vec(
        &serde_json::json!({"api_key": key, "historical_migration": true, "batch": events}),
    )
    .expect("json")
}

#[test]
fn the_capture_server_validates_like_posthog() {
    let server = PostHogCapture::start(KEY);
    let good = "0b7a1c8e-3f5d-4c8e-9b1a-6d2f4e8c1a55";
    // One bad event fails the whole request.
    assert_eq!(
        post(
            &server,
            batch(KEY, vec![event(good), event("not-a-uuid")]),
            false
        ),
        400
    );
    let mut empty_name = event(good);
    empty_name["event"] = "".into();
    assert_eq!(post(&server, batch(KEY, vec![empty_name]), false), 400);
    let mut anonymous = event(good);
    anonymous
        .as_object_mut()
        .expect("object")
        .remove("distinct_id");
    assert_eq!(post(&server, batch(KEY, vec![anonymous]), false), 400);
    assert_eq!(
        server.stored().len(),
        0,
        "nothing of a refused request is stored"
    );
    // Keys: missing or malformed → 401; unknown → 200 and silently dropped.
    assert_eq!(post(&server, batch("", vec![event(good)]), false), 401);
    assert_eq!(
        post(&server, batch(&"k".repeat(65), vec![event(good)]), false),
        401
    );
    assert_eq!(
        post(&server, batch("phc_someone_else", vec![event(good)]), false),
        200
    );
    assert_eq!(server.dropped_for_unknown_key(), 1);
    // Gzip by header, query or magic bytes.
    let mut gzip = GzEncoder::new(Vec::new(), Compression::fast());
    gzip.write_all(&batch(KEY, vec![event(good)]))
        .expect("gzip");
    let compressed = gzip.finish().expect("gzip");
    assert_eq!(post(&server, compressed.clone(), true), 200);
    assert_eq!(post(&server, compressed, false), 200);
    assert_eq!(server.stored().len(), 2);
    // Size limits: an event over 1 MB, a request over 20 MB.
    let mut huge = event(good);
    huge["properties"]["blob"] = "a".repeat(1_100_000).into();
    assert_eq!(post(&server, batch(KEY, vec![huge]), false), 413);
    let big: Vec<serde_json::Value> = (0..25)
        .map(|_| {
            let mut item = event(good);
            item["properties"]["blob"] = "b".repeat(900_000).into();
            item
        })
        .collect();
    assert_eq!(post(&server, batch(KEY, big), false), 413);
    // 413 above a configured batch size.
    server.limit_batch_events(2);
    assert_eq!(
        post(
            &server,
            batch(KEY, vec![event(good), event(good), event(good)]),
            false
        ),
        413
    );
    assert_eq!(
        post(&server, batch(KEY, vec![event(good), event(good)]), false),
        200
    );
}
