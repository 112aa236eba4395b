//! Crashes through the shipped `vector.toml` on a real Vector. A Vector killed (SIGKILL) in
//! the middle of a gzip file never reads the rest of that file again, disk buffer or not;
//! `amplitude-posthog resume` before the restart makes it re-read the file, and then every
//! event arrives (repeats carry the same uuids). A sidecar killed mid-run holds Vector until it
//! is back, and nothing is lost. On a machine without Vector each test says so and passes.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use amplitude_posthog_test_support::posthog_capture::PostHogCapture;

use crate::helpers::vector::{
    KEY, Workspace, checkpoint_position, expected, expected_pairs, generated_rows, is_from_sidecar,
    start_sidecar, tail, unintended_drops, vector, wait_until,
};

/// Waits until no new uuid has arrived for `quiet`, up to `limit`; the uuids then arrived.
fn settled(capture: &PostHogCapture, quiet: Duration, limit: Duration) -> BTreeSet<String> {
    let started = Instant::now();
    let (mut seen, mut since) = (0, Instant::now());
    loop {
        let now = capture.uuid_counts().len();
        if now != seen {
            (seen, since) = (now, Instant::now());
        } else if since.elapsed() >= quiet {
            return capture.uuid_counts().into_keys().collect();
        }
        assert!(started.elapsed() < limit, "PostHog never went quiet");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_vector_killed_mid_gzip_file_loses_its_rest_until_resume_runs_and_then_nothing() {
    let Some(vector) = vector() else { return };
    let capture = PostHogCapture::start(KEY);
    let scratch = tempfile::tempdir().expect("tmp");
    let sidecar = start_sidecar(scratch.path(), "127.0.0.1:0", &capture.url());
    let workspace = Workspace::new(&capture.url(), &sidecar.url);
    let lines = generated_rows(60_000, 21, 0.01);
    let (a, rest) = lines.split_at(20_000);
    let (b, c) = rest.split_at(20_000);
    let file = "187520_2024-07-08_1#1.json.gz";
    workspace.export_file(file, &[a, b, c]);
    let (events, rejects) = expected(&lines);

    // SIGKILL as soon as Vector has checkpointed a part of the file.
    let mut first = workspace.start_vector(&vector);
    wait_until(
        Duration::from_secs(120),
        "a checkpoint inside the file",
        || checkpoint_position(&workspace).is_some_and(|position| position > 0),
        || tail(&first.log(), 20),
    );
    first.kill();
    let dry_run = workspace.resume(true);
    assert!(
        dry_run.contains(&format!("would re-read export/187520/{file} (delivered ")),
        "the kill did not land inside the file:\n{dry_run}"
    );

    // Restarted without `resume`: Vector sends what its disk buffer holds, then nothing more.
    let mut second = workspace.start_vector(&vector);
    let without_resume = settled(&capture, Duration::from_secs(10), Duration::from_secs(180));
    let lost = events
        .keys()
        .filter(|uuid| !without_resume.contains(*uuid))
        .count();
    eprintln!(
        "killed at checkpoint {:?}; restarted without resume: {} of {} events arrived, {lost} lost",
        checkpoint_position(&workspace),
        events.len() - lost,
        events.len()
    );
    assert!(
        lost > 0,
        "Vector re-read the killed gzip file by itself: `resume` may no longer be needed"
    );
    assert!(second.terminate().success(), "Vector stops on SIGTERM");

    // `resume`, then a restart: everything arrives.
    let resumed = workspace.resume(false);
    assert!(
        resumed.contains(&format!("will re-read export/187520/{file} (delivered ")),
        "{resumed}"
    );
    let third = workspace.start_vector(&vector);
    wait_until(
        Duration::from_secs(300),
        "every event after resume",
        || {
            let counts = capture.uuid_counts();
            events.keys().all(|uuid| counts.contains_key(uuid))
                && workspace.dead_letters().len() >= rejects.len()
        },
        || {
            format!(
                "{} of {} events; Vector's log ends:\n{}",
                capture.uuid_counts().len(),
                events.len(),
                tail(&third.log(), 20)
            )
        },
    );
    // Exactly the mapped events arrived (beside the sidecar's aliases and group events).
    let counts = capture.uuid_counts();
    let from_mapping: BTreeSet<String> = capture
        .stored()
        .iter()
        .filter(|stored| !is_from_sidecar(&stored.event))
        .filter_map(|stored| stored.uuid.clone())
        .collect();
    assert_eq!(
        from_mapping,
        events.keys().cloned().collect::<BTreeSet<_>>()
    );
    // The re-read part was sent twice; PostHog keeps one per uuid.
    let repeated = counts.values().filter(|count| **count > 1).count();
    assert!(repeated > 0, "the re-read part arrived again");

    // Every refused row is dead-lettered, the re-read ones twice (README: dedupe on replay).
    let letters: BTreeSet<(String, String)> = workspace
        .dead_letters()
        .iter()
        .map(|letter| {
            (
                letter["message"].as_str().expect("message").to_owned(),
                letter["metadata"]["dropped"]["message"]
                    .as_str()
                    .expect("reason")
                    .to_owned(),
            )
        })
        .collect();
    let refused: BTreeSet<(String, String)> = rejects
        .iter()
        .map(|(line, reason)| (String::from_utf8_lossy(line).into_owned(), reason.clone()))
        .collect();
    assert_eq!(letters, refused);
    for log in [second.log(), third.log()] {
        let drops = unintended_drops(&log);
        assert!(
            drops.is_empty(),
            "Vector dropped events:\n{}",
            drops.join("\n")
        );
    }
}

#[test]
fn a_sidecar_killed_mid_run_holds_vector_and_loses_nothing() {
    let Some(vector) = vector() else { return };
    let capture = PostHogCapture::start(KEY);
    let scratch = tempfile::tempdir().expect("tmp");
    let sidecar = start_sidecar(scratch.path(), "127.0.0.1:0", &capture.url());
    let address = sidecar.address().to_owned();
    let workspace = Workspace::new(&capture.url(), &sidecar.url);
    let lines = generated_rows(20_000, 22, 0.0);
    workspace.export_file("187520_2024-07-09_1#1.json.gz", &[&lines[..]]);
    let (events, _) = expected(&lines);
    let pairs = expected_pairs(&lines);

    let running = workspace.start_vector(&vector);
    wait_until(
        Duration::from_secs(120),
        "identity records at the sidecar",
        || sidecar.status()["received"].as_u64().unwrap_or(0) > 0,
        || tail(&running.log(), 20),
    );
    sidecar.kill();
    // Vector cannot deliver identities now: it retries and holds the source.
    std::thread::sleep(Duration::from_secs(3));
    let sidecar = start_sidecar(scratch.path(), &address, &capture.url());
    wait_until(
        Duration::from_secs(300),
        "every event and every alias",
        || {
            let counts = capture.uuid_counts();
            let aliased: BTreeSet<String> = capture
                .stored()
                .iter()
                .filter(|stored| stored.event["event"] == "$create_alias")
                .filter_map(|stored| {
                    stored.event["properties"]["alias"]
                        .as_str()
                        .map(str::to_owned)
                })
                .collect();
            events.keys().all(|uuid| counts.contains_key(uuid))
                && pairs.keys().all(|device| aliased.contains(device))
        },
        || {
            format!(
                "{} of {} events; sidecar {}; Vector's log ends:\n{}",
                capture.uuid_counts().len(),
                events.len(),
                sidecar.status(),
                tail(&running.log(), 20)
            )
        },
    );
    sidecar.wait_until_drained(Duration::from_secs(60));

    // One alias per device, to one of the device's users, each uuid once or repeated.
    let mut aliases: BTreeMap<String, BTreeSet<(String, String)>> = BTreeMap::new();
    for stored in capture.stored() {
        if stored.event["event"] == "$create_alias" {
            let device = stored.event["properties"]["alias"].as_str().expect("alias");
            let user = stored.event["distinct_id"].as_str().expect("user");
            aliases
                .entry(device.to_owned())
                .or_default()
                .insert((user.to_owned(), stored.uuid.clone().expect("uuid")));
        }
    }
    assert_eq!(
        aliases.keys().collect::<BTreeSet<_>>(),
        pairs.keys().collect::<BTreeSet<_>>()
    );
    for (device, sent) in &aliases {
        assert_eq!(sent.len(), 1, "device {device} aliased once: {sent:?}");
        let (user, _) = sent.iter().next().expect("one");
        assert!(pairs[device].contains(user), "{device} → {user}");
    }
    let log = running.log();
    let drops = unintended_drops(&log);
    assert!(
        drops.is_empty(),
        "Vector dropped events:\n{}",
        drops.join("\n")
    );
    assert!(
        log.contains("identity_sidecar"),
        "Vector logged the sidecar's absence"
    );
}
