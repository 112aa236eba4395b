//! `migrate`'s central promise under a hostile user: every row delivered or accounted for,
//! only what was in flight sent twice. A huge line is refused while it is read (memory stays
//! flat); a second run on the same state is refused; a host that is not PostHog stops the run
//! with nothing marked; a project that refuses everything stops it too; refused aliases and
//! group updates are counted and dead-lettered; a lost state is refused by every command; two
//! file names that differ only in bytes that are not UTF-8 are two files.

use std::collections::BTreeSet;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use amplitude_posthog_test_support::posthog_capture::PostHogCapture;
use flate2::Compression;
use flate2::write::GzEncoder;
use serde_json::Value;

use crate::migrate::{
    KEY, Setup, assert_everything_arrived, exact_summary, expected, migrated, stderr, summary,
};

/// The dead letters of a state, parsed.
fn dead_letters(setup: &Setup) -> Vec<Value> {
    std::fs::read_to_string(setup.path("state/dead-letters.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|line| serde_json::from_str(line).expect("json"))
        .collect()
}

/// `(peak RSS in MiB, exit code, stderr)` of `command` run to its end. The peak is the
/// process's own `VmHWM`, polled while it runs: the kernel keeps it per address space, so
/// unlike `wait4`'s `ru_maxrss` it does not include this (large) test process, whose memory
/// the child shares between its spawn and its exec.
fn run_measured(mut command: Command) -> (u64, Option<i32>, String) {
    let mut child = command
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("migrate starts");
    let status_file = format!("/proc/{}/status", child.id());
    let mut stderr_pipe = child.stderr.take().expect("stderr");
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr_pipe, &mut text);
        text
    });
    let mut peak_kib = 0;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        let hwm = std::fs::read_to_string(&status_file)
            .ok()
            .and_then(|status| {
                status
                    .lines()
                    .find_map(|line| line.strip_prefix("VmHWM:"))
                    .and_then(|kib| kib.trim().trim_end_matches("kB").trim().parse().ok())
            })
            .unwrap_or(0);
        peak_kib = peak_kib.max(hwm);
        std::thread::sleep(Duration::from_millis(10));
    };
    (
        peak_kib / 1024,
        status.code(),
        reader.join().expect("reader"),
    )
}

#[test]
fn a_line_of_600_mb_is_refused_while_read_and_memory_stays_flat() {
    let setup = Setup::generated(2_000, 51, 0.0);
    let expected = expected(&setup.lines);
    // One row of 600 MB (valid JSON up to where it is cut: a huge property), between two
    // ordinary rows, in a file of its own.
    let path = setup.path("export/187520/187520_2024-01-02_5#0.json.gz");
    let mut gzip = GzEncoder::new(
        std::fs::File::create(&path).expect("create"),
        Compression::fast(),
    );
    let first = &setup.lines[0];
    gzip.write_all(first).expect("write");
    gzip.write_all(
        b"\n{\"event_type\":\"huge\",\"user_id\":\"u\",\"event_properties\":{\"blob\":\"",
    )
    .expect("write");
    let block = vec![b'a'; 1 << 20];
    for _ in 0..600 {
        gzip.write_all(&block).expect("write");
    }
    gzip.write_all(b"\"}}\n").expect("write");
    gzip.write_all(&setup.lines[1]).expect("write");
    gzip.write_all(b"\n").expect("write");
    gzip.finish().expect("finish");

    let capture = PostHogCapture::start(KEY);
    let (peak_mib, code, text) = run_measured(setup.command(&capture.url(), &[]));
    assert_eq!(code, Some(0), "{text}");
    assert!(peak_mib < 300, "peak RSS {peak_mib} MiB");
    // The huge row is one dead letter, named by file and line, cut and saying so.
    let letters = dead_letters(&setup);
    let huge: Vec<&Value> = letters
        .iter()
        .filter(|letter| letter["metadata"]["dropped"]["message"] == "event_too_large")
        .filter(|letter| {
            letter["file"]
                .as_str()
                .is_some_and(|file| file.ends_with("5#0.json.gz"))
        })
        .collect();
    assert_eq!(huge.len(), 1, "{letters:?}");
    assert_eq!(huge[0]["line"], 2);
    assert_eq!(
        huge[0]["truncated"]["row_bytes"].as_u64(),
        Some(600 * (1 << 20) + 66)
    );
    assert_eq!(huge[0]["truncated"]["kept_bytes"], 64 * 1024);
    // Everything else arrived; the two copied rows are the same events again (same uuids).
    assert_everything_arrived(&setup, &capture, &expected);
    let (rows, _) = summary(&text);
    assert_eq!(rows[0], expected.rows + 3);
}

#[test]
fn a_second_run_on_the_same_state_is_refused_at_once_naming_the_first() {
    let setup = Setup::generated(3_000, 52, 0.0);
    let expected = expected(&setup.lines);
    let capture = PostHogCapture::start(KEY);
    // A slow first run (a low rate), and a second one while it runs.
    let mut first = setup
        .command(&capture.url(), &["--rate", "1500", "--batch-size", "100"])
        .stderr(Stdio::piped())
        .spawn()
        .expect("first run");
    let lock = setup.path("state/migration.lock");
    let started = std::time::Instant::now();
    while !std::fs::read_to_string(&lock).is_ok_and(|text| text.contains("pid")) {
        assert!(started.elapsed() < Duration::from_secs(30), "no lock taken");
        std::thread::sleep(Duration::from_millis(20));
    }
    let second = setup.migrate(&capture.url(), &[]);
    let text = stderr(&second);
    assert_eq!(second.status.code(), Some(1), "{text}");
    assert!(
        text.contains(&format!("is in use by migrate (pid {})", first.id())),
        "{text}"
    );
    assert_eq!(text.lines().count(), 1, "{text}");
    // `report` waits its turn too.
    let report = Command::new(env!("CARGO_BIN_EXE_amplitude-posthog"))
        .arg("report")
        .arg("--state")
        .arg(setup.path("state"))
        .output()
        .expect("report runs");
    assert_eq!(report.status.code(), Some(1));
    assert!(stderr(&report).contains("is being migrated by migrate (pid"));
    let status = first.wait().expect("first run ends");
    assert_eq!(status.code(), Some(0));
    // The first run alone delivered every event, once; the state counts each row once. (The
    // sidecar's group updates are left out: a group whose properties go back to an earlier
    // set sends that set's uuid again, by design.)
    assert_everything_arrived(&setup, &capture, &expected);
    let mut sent = std::collections::BTreeMap::<String, usize>::new();
    for stored in capture.stored() {
        if !crate::helpers::vector::is_from_sidecar(&stored.event) {
            *sent.entry(stored.uuid.expect("uuid")).or_default() += 1;
        }
    }
    assert!(
        sent.values().all(|count| *count == 1),
        "an event sent twice"
    );
    let again = setup.migrate(&capture.url(), &[]);
    assert_eq!(summary(&stderr(&again)), exact_summary(&expected));
}

/// A run against `answer` (a host that is not PostHog): exit 3 with one line, nothing marked;
/// then the same command against PostHog delivers everything.
fn a_wrong_host_stops_and_a_rerun_delivers(status: u16, location: Option<&str>, says: &str) {
    let setup = Setup::generated(2_000, 53, 0.01);
    let expected = expected(&setup.lines);
    let capture = PostHogCapture::start(KEY);
    capture.not_posthog(Some((status, location)));
    let output = setup.migrate(&capture.url(), &[]);
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(3), "{text}");
    assert!(text.contains(says), "{text}");
    assert!(!text.contains(KEY));
    assert!(capture.stored().is_empty());
    // Nothing was marked: no dead letter of any event, nothing delivered.
    assert!(dead_letters(&setup).iter().all(|letter| {
        !letter["metadata"]["dropped"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("PostHog")
    }),);
    let (_, events) = summary(&text);
    assert_eq!((events[1], events[2]), (0, 0), "{text}");
    // The right host: everything arrives, every count once.
    capture.not_posthog(None);
    let output = setup.migrate(&capture.url(), &[]);
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(0), "{text}");
    assert_eq!(summary(&text), exact_summary(&expected));
    assert_everything_arrived(&setup, &capture, &expected);
}

#[test]
fn a_host_answering_404_stops_with_exit_3_and_nothing_marked() {
    a_wrong_host_stops_and_a_rerun_delivers(
        404,
        None,
        "answered 404, so it is not PostHog's capture endpoint",
    );
}

#[test]
fn a_redirect_is_never_followed_and_names_the_host_to_use() {
    a_wrong_host_stops_and_a_rerun_delivers(
        301,
        Some("https://eu.i.posthog.com/batch/"),
        "answered 301, so it is not PostHog's capture endpoint; it redirects to https://eu.i.posthog.com",
    );
}

#[test]
fn a_project_that_refuses_every_event_stops_the_run_instead_of_dead_lettering_it() {
    let setup = Setup::generated(3_000, 54, 0.0);
    let expected = expected(&setup.lines);
    let capture = PostHogCapture::start(KEY);
    capture.refuse_everything(true);
    let output = setup.migrate(&capture.url(), &["--batch-size", "50"]);
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(3), "{text}");
    assert!(
        text.contains("PostHog refused every event of 3 whole request(s)"),
        "{text}"
    );
    assert!(dead_letters(&setup).is_empty(), "nothing dead-lettered");
    capture.refuse_everything(false);
    let output = setup.migrate(&capture.url(), &["--batch-size", "50"]);
    assert_eq!(summary(&stderr(&output)), exact_summary(&expected));
    assert_everything_arrived(&setup, &capture, &expected);
}

#[test]
fn refused_aliases_and_group_updates_are_counted_reported_and_dead_lettered() {
    let setup = Setup::generated(3_000, 55, 0.0);
    let expected = expected(&setup.lines);
    let capture = PostHogCapture::start(KEY);
    // PostHog refuses about half of the sidecar's aliases and group updates (those whose uuid
    // starts with 0-7), and none of the migrated events.
    capture.refuse_as_too_large(|event| {
        let from_sidecar = event["event"] == "$create_alias"
            || (event["event"] == "$groupidentify"
                && event["distinct_id"]
                    .as_str()
                    .is_some_and(|id| id.starts_with('$')));
        from_sidecar && event["uuid"].as_str().is_some_and(|uuid| uuid < "8")
    });
    let output = setup.migrate(&capture.url(), &[]);
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(0), "{text}");
    assert_eq!(summary(&text), exact_summary(&expected));
    let line = text
        .lines()
        .find(|line| line.starts_with("aliases "))
        .expect("aliases line");
    let numbers: Vec<u64> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter(|part| !part.is_empty())
        .map(|part| part.parse().expect("number"))
        .collect();
    // aliases P = sent 0 + refused R + pending 0 + conflicts C; groups sent 0, refused G, pending 0
    let [
        pairs,
        sent,
        refused,
        pending,
        conflicts,
        groups_sent,
        groups_refused,
        groups_pending,
    ] = numbers[..]
    else {
        panic!("{line}");
    };
    assert_eq!((pending, groups_pending), (0, 0), "{line}");
    assert!(
        sent > 0 && refused > 0 && groups_sent > 0 && groups_refused > 0,
        "{line}"
    );
    assert_eq!(pairs, sent + refused + pending + conflicts, "{line}");
    let letters = dead_letters(&setup);
    let identities: Vec<&Value> = letters
        .iter()
        .filter(|letter| letter["metadata"]["dropped"]["component_id"] == "identities")
        .collect();
    assert_eq!(identities.len() as u64, refused + groups_refused);
    for letter in &identities {
        let event: Value =
            serde_json::from_str(letter["message"].as_str().expect("message")).expect("event");
        assert!(matches!(
            event["event"].as_str(),
            Some("$create_alias" | "$groupidentify")
        ));
        assert!(
            letter["metadata"]["dropped"]["message"]
                .as_str()
                .is_some_and(|reason| reason.contains("413")),
            "{letter}"
        );
    }
    let report: Value = serde_json::from_slice(
        &std::fs::read(setup.path("state/report.json")).expect("report.json"),
    )
    .expect("json");
    assert_eq!(report["aliases_refused"].as_u64(), Some(refused));
    assert_eq!(report["groups_refused"].as_u64(), Some(groups_refused));
}

#[test]
fn an_empty_or_foreign_state_is_refused_by_every_command() {
    let setup = Setup::generated(500, 56, 0.0);
    let capture = PostHogCapture::start(KEY);
    let output = setup.migrate(&capture.url(), &[]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let good_report = std::fs::read(setup.path("state/report.json")).expect("report");
    // The state is lost: a 0-byte database.
    std::fs::write(setup.path("state/migration.sqlite"), b"").expect("truncate");
    for leftover in ["migration.sqlite-wal", "migration.sqlite-shm"] {
        let _ = std::fs::remove_file(setup.path("state").join(leftover));
    }
    let sent_before = capture.requests().len();
    let again = setup.migrate(&capture.url(), &[]);
    let text = stderr(&again);
    assert_eq!(again.status.code(), Some(1), "{text}");
    assert!(text.contains("is empty (0 bytes)"), "{text}");
    assert_eq!(text.lines().count(), 1, "{text}");
    assert_eq!(capture.requests().len(), sent_before, "nothing sent");
    let binary = env!("CARGO_BIN_EXE_amplitude-posthog");
    let report = Command::new(binary)
        .arg("report")
        .arg("--state")
        .arg(setup.path("state"))
        .output()
        .expect("report");
    assert_eq!(report.status.code(), Some(1));
    assert!(stderr(&report).contains("is empty (0 bytes)"));
    assert_eq!(
        std::fs::read(setup.path("state/report.json")).expect("report"),
        good_report,
        "the good report is not overwritten"
    );
    let verify = Command::new(binary)
        .arg("verify")
        .arg("--state")
        .arg(setup.path("state"))
        .args([
            "--posthog-app-host",
            "http://127.0.0.1:9",
            "--project-id",
            "1",
        ])
        .env("POSTHOG_PERSONAL_API_KEY", "phx_test")
        .output()
        .expect("verify");
    assert_eq!(verify.status.code(), Some(1));
    assert!(stderr(&verify).contains("is empty (0 bytes)"));
    // Another program's SQLite file is not a state either.
    std::fs::remove_file(setup.path("state/migration.sqlite")).expect("rm");
    rusqlite::Connection::open(setup.path("state/migration.sqlite"))
        .and_then(|db| {
            db.execute_batch("CREATE TABLE other (x INTEGER); INSERT INTO other VALUES (1);")
        })
        .expect("foreign database");
    let foreign = setup.migrate(&capture.url(), &[]);
    assert_eq!(foreign.status.code(), Some(1));
    assert!(stderr(&foreign).contains("is not a migration state of amplitude-posthog"));
}

#[test]
fn two_file_names_that_differ_only_in_bytes_that_are_not_utf8_are_two_files() {
    let setup = Setup::generated(1_000, 57, 0.0);
    let capture = PostHogCapture::start(KEY);
    // Split the export's rows over two files named `…\xff…` and `…\xfe…` (the same name when
    // read lossily), replacing the export.
    let export = setup.path("export");
    std::fs::remove_dir_all(&export).expect("rm");
    std::fs::create_dir_all(&export).expect("mkdir");
    let (left, right) = setup.lines.split_at(setup.lines.len() / 2);
    for (byte, lines) in [(0xffu8, left), (0xfe, right)] {
        let mut name = b"187520_2024-01-01_1#".to_vec();
        name.push(byte);
        name.extend_from_slice(b".json.gz");
        let path = export.join(std::ffi::OsStr::from_bytes(&name));
        let mut gzip = GzEncoder::new(
            std::fs::File::create(&path).expect("create"),
            Compression::fast(),
        );
        for line in lines {
            gzip.write_all(line).expect("write");
            gzip.write_all(b"\n").expect("write");
        }
        gzip.finish().expect("finish");
    }
    let expected = expected(&setup.lines);
    let output = setup.migrate(&capture.url(), &[]);
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(0), "{text}");
    assert_eq!(summary(&text), exact_summary(&expected));
    assert!(text.contains("files 2 of 2 done"), "{text}");
    let arrived: BTreeSet<String> = migrated(&capture.stored()).into_keys().collect();
    assert_eq!(arrived.len(), expected.events.len());
}

#[test]
fn a_dangling_link_and_a_link_loop_are_problems_not_the_end_of_the_run() {
    let setup = Setup::generated(1_000, 58, 0.0);
    let expected = expected(&setup.lines);
    let export = setup.path("export");
    std::os::unix::fs::symlink("/nonexistent/x.json.gz", export.join("dangling.json.gz"))
        .expect("dangling link");
    std::os::unix::fs::symlink(&export, export.join("loop")).expect("loop link");
    let capture = PostHogCapture::start(KEY);
    let output = setup.migrate(&capture.url(), &[]);
    let text = stderr(&output);
    // Every readable file migrates; the dangling link is one problem (so exit 1).
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert_eq!(
        text.lines()
            .filter(|line| line.contains("dangling.json.gz"))
            .count(),
        2,
        "once as it is found, once in the summary: {text}"
    );
    assert_eq!(summary(&text), exact_summary(&expected));
    assert_everything_arrived(&setup, &capture, &expected);
    assert!(Path::new(&export).exists());
}

/// `command` with every file it writes limited to `bytes` (`RLIMIT_FSIZE`, and `SIGXFSZ`
/// ignored so a write past it fails with `EFBIG` instead of killing it): a disk that fills up
/// under the state, without privileges.
fn with_file_size_limit(command: &mut Command, bytes: u64) {
    use std::os::unix::process::CommandExt;
    // SAFETY: setrlimit and signal are async-signal-safe, as pre_exec requires.
    unsafe {
        command.pre_exec(move || {
            let limit = libc::rlimit {
                rlim_cur: bytes,
                rlim_max: bytes,
            };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            Ok(())
        });
    }
}

#[test]
fn a_state_that_cannot_be_written_stops_everything_and_the_rerun_repeats_only_what_was_in_flight() {
    const CONCURRENCY: u64 = 2;
    const BATCH: u64 = 200;
    let setup = Setup::generated(20_000, 59, 0.0);
    let expected = expected(&setup.lines);
    let capture = PostHogCapture::start(KEY);
    let options = [
        "--concurrency",
        &CONCURRENCY.to_string(),
        "--batch-size",
        &BATCH.to_string(),
    ]
    .map(str::to_owned);
    let options: Vec<&str> = options.iter().map(String::as_str).collect();
    // The state's files may not grow past 3 MiB: the disk is full mid-run (about half the
    // events are sent by then).
    let mut command = setup.command(&capture.url(), &options);
    with_file_size_limit(&mut command, 3 << 20);
    let full = command.output().expect("migrate runs");
    let text = stderr(&full);
    assert_eq!(full.status.code(), Some(1), "{text}");
    assert!(text.contains("the migration state"), "{text}");
    let sent_while_full = capture.uuid_counts().len();
    assert!(
        sent_while_full > 0 && sent_while_full < expected.events.len(),
        "the disk filled mid-run: {sent_while_full} of {} events sent",
        expected.events.len()
    );
    // Room again: the same command finishes, and only what was in flight came twice.
    let again = setup.migrate(&capture.url(), &options);
    let text = stderr(&again);
    assert_eq!(again.status.code(), Some(0), "{text}");
    assert_eq!(summary(&text), exact_summary(&expected));
    assert_everything_arrived(&setup, &capture, &expected);
    let twice: u64 = capture
        .uuid_counts()
        .iter()
        .filter(|(uuid, _)| expected.events.contains_key(*uuid))
        .map(|(_, count)| *count as u64 - 1)
        .sum();
    eprintln!("full disk: {sent_while_full} events sent before the stop, {twice} sent twice");
    // Sent twice: the requests in flight when the state failed, and those PostHog accepted
    // while the failing transaction was being written (the committer records deliveries as
    // they come, one transaction per step). Measured here: 43 to 1 111 of 20 000; before every
    // part of the run stopped with the state, the sends went on and 8 302 came twice.
    assert!(
        twice <= 4 * CONCURRENCY * BATCH,
        "{twice} events sent twice"
    );
}

#[test]
fn blank_lines_are_not_rows_and_a_utf16_file_is_named_as_such() {
    let setup = Setup::generated(600, 60, 0.0);
    let expected = expected(&setup.lines);
    // Blank lines between the rows of a copy of the export's first rows, in a file of its own.
    let path = setup.path("export/187520/187520_2024-01-02_7#0.json.gz");
    let mut gzip = GzEncoder::new(
        std::fs::File::create(&path).expect("create"),
        Compression::fast(),
    );
    for line in &setup.lines[..3] {
        gzip.write_all(b"\n   \n").expect("write");
        gzip.write_all(line).expect("write");
        gzip.write_all(b"\n").expect("write");
    }
    gzip.write_all(b"\n\n").expect("write");
    gzip.finish().expect("finish");
    // A UTF-16 file (what a Windows tool's "Save as Unicode" writes).
    let utf16: Vec<u8> = [0xFF, 0xFE]
        .into_iter()
        .chain(
            "{\"event_type\":\"x\"}\n"
                .encode_utf16()
                .flat_map(u16::to_le_bytes),
        )
        .collect();
    std::fs::write(setup.path("export/187520/notes.json"), utf16).expect("utf16");
    let capture = PostHogCapture::start(KEY);
    let output = setup.migrate(&capture.url(), &[]);
    let text = stderr(&output);
    assert_eq!(
        output.status.code(),
        Some(1),
        "the UTF-16 file is a problem: {text}"
    );
    assert!(
        text.lines()
            .any(|line| line.contains("notes.json") && line.contains("UTF-16")),
        "{text}"
    );
    let (rows, _) = summary(&text);
    assert_eq!(rows[0], expected.rows + 3, "blank lines are not rows");
    assert!(dead_letters(&setup).is_empty(), "no blank line was refused");
    assert_everything_arrived(&setup, &capture, &expected);
}

#[test]
fn ctrl_c_stops_within_seconds_while_a_request_hangs_and_never_prints_a_password() {
    let setup = Setup::generated(500, 61, 0.0);
    // A host that accepts connections and never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = silent.local_addr().expect("address");
    let keep = std::thread::spawn(move || {
        let mut held = Vec::new();
        for connection in silent.incoming().take(16) {
            held.push(connection);
        }
    });
    let host = format!("http://user:s3cret-pass@{address}");
    let mut running = setup
        .command(&host, &[])
        .stderr(Stdio::piped())
        .spawn()
        .expect("migrate starts");
    std::thread::sleep(Duration::from_secs(2));
    let interrupted_at = std::time::Instant::now();
    // SAFETY: kill with a real pid of our own child.
    unsafe { libc::kill(running.id() as libc::pid_t, libc::SIGINT) };
    let status = running.wait().expect("ends");
    let took = interrupted_at.elapsed();
    let mut text = String::new();
    std::io::Read::read_to_string(&mut running.stderr.take().expect("stderr"), &mut text)
        .expect("stderr");
    assert_eq!(status.code(), Some(130), "{text}");
    assert!(took < Duration::from_secs(10), "stopped after {took:?}");
    assert!(!text.contains("s3cret-pass"), "{text}");
    // A dry run with that host prints it without the password.
    let dry = setup.migrate(&host, &["--dry-run"]);
    let text = stderr(&dry);
    assert_eq!(dry.status.code(), Some(0), "{text}");
    assert!(text.contains(&format!("http://{address}/batch/")), "{text}");
    assert!(!text.contains("s3cret-pass"), "{text}");
    drop(keep);
}

#[test]
fn a_dry_run_names_a_file_that_breaks_midway_and_exits_1_as_a_real_run_does() {
    let setup = Setup::generated(3_000, 61, 0.0);
    // A copy of the export's largest file, cut in the middle of its gzip stream.
    let largest = amplitude_posthog::fs::walk_files(&setup.path("export"))
        .expect("files")
        .into_iter()
        .max_by_key(|path| std::fs::metadata(path).map(|m| m.len()).unwrap_or(0))
        .expect("a file");
    let bytes = std::fs::read(&largest).expect("read");
    let cut = setup.path("export/187520/187520_2024-01-03_23#98.json.gz");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).expect("write");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_amplitude-posthog"))
        .arg("migrate")
        .arg(setup.path("export"))
        .args(["--posthog-host", "https://us.i.posthog.com", "--dry-run"])
        .env_remove("POSTHOG_API_KEY")
        .output()
        .expect("runs");
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(
        text.lines()
            .any(|line| line.starts_with("  problem: ") && line.contains("#98.json.gz")),
        "{text}"
    );
}
