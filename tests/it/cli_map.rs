//! `amplitude-posthog map` and `generate` as a user runs them.

use std::io::Write;
use std::process::{Command, Stdio};

use flate2::Compression;
use flate2::write::GzEncoder;

fn cli() -> Command {
    Command::new(env!("CARGO_BIN_EXE_amplitude-posthog"))
}

fn stderr_of(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Reads "rows N = mapped A + skipped B + rejected C; events E" from the summary.
fn summary_numbers(stderr: &str) -> [u64; 5] {
    let line = stderr
        .lines()
        .find(|line| line.starts_with("rows "))
        .unwrap_or_else(|| panic!("no summary in {stderr}"));
    let numbers: Vec<u64> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().expect("number"))
        .collect();
    [numbers[0], numbers[1], numbers[2], numbers[3], numbers[4]]
}

#[test]
fn generate_then_map_accounts_for_every_row() {
    let dir = tempfile::tempdir().expect("tmp");
    let export = dir.path().join("export");
    let generated = cli()
        .args([
            "generate",
            "--rows",
            "3000",
            "--seed",
            "9",
            "--broken-share",
            "0.02",
            "--days",
            "2",
            "--out",
        ])
        .arg(&export)
        .output()
        .expect("runs");
    assert!(generated.status.success(), "{}", stderr_of(&generated));
    let mut files: Vec<_> = std::fs::read_dir(export.join("187520"))
        .expect("project dir")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    let rejects = dir.path().join("rejects.jsonl");

    let events = cli()
        .arg("map")
        .args(&files)
        .arg("--rejects")
        .arg(&rejects)
        .output()
        .expect("runs");
    assert!(events.status.success(), "{}", stderr_of(&events));
    let [rows, mapped, skipped, rejected, event_count] = summary_numbers(&stderr_of(&events));
    assert_eq!(rows, 3000);
    assert_eq!(mapped + skipped + rejected, rows);
    assert!(rejected > 0 && skipped > 0);
    let stdout = String::from_utf8(events.stdout).expect("utf-8");
    assert_eq!(stdout.lines().count() as u64, event_count);
    for line in stdout.lines() {
        let event: serde_json::Value = serde_json::from_str(line).expect("every line is an event");
        assert!(
            event["uuid"].is_string()
                && event["timestamp"].is_string()
                && event["event"].is_string()
        );
        assert_eq!(
            serde_json::to_string(&event).expect("serialises"),
            line,
            "events are compact and key-sorted"
        );
    }

    // Dead letters name the file, the line and the reason, and carry the original row.
    let dead_letters = std::fs::read_to_string(&rejects).expect("rejects written");
    assert_eq!(dead_letters.lines().count() as u64, rejected);
    for record in dead_letters.lines() {
        let record: serde_json::Value = serde_json::from_str(record).expect("JSON");
        let file = record["file"].as_str().expect("file");
        let line = record["line"].as_u64().expect("line") as usize;
        assert!(record["metadata"]["dropped"]["message"].is_string());
        assert_eq!(record["metadata"]["dropped"]["reason"], "error");
        let mut original = Vec::new();
        std::io::Read::read_to_end(
            &mut flate2::read::MultiGzDecoder::new(std::fs::File::open(file).expect("exists")),
            &mut original,
        )
        .expect("gzip");
        let original_line = original
            .split(|byte| *byte == b'\n')
            .nth(line - 1)
            .expect("line exists");
        assert_eq!(
            String::from_utf8_lossy(original_line),
            record["message"].as_str().expect("message")
        );
    }

    // --format results: exactly one result per input line, in input order.
    let results = cli()
        .arg("map")
        .args(&files)
        .args(["--format", "results", "--threads", "2"])
        .output()
        .expect("runs");
    assert!(results.status.success());
    let results = String::from_utf8(results.stdout).expect("utf-8");
    assert_eq!(results.lines().count(), 3000);
    assert_eq!(
        results
            .lines()
            .filter(|line| line.starts_with("{\"rejected\":"))
            .count() as u64,
        rejected
    );
}

#[test]
fn threads_keep_the_output_order() {
    let dir = tempfile::tempdir().expect("tmp");
    let export = dir.path().join("export");
    assert!(
        cli()
            .args([
                "generate", "--rows", "10000", "--seed", "4", "--days", "1", "--out"
            ])
            .arg(&export)
            .status()
            .expect("runs")
            .success()
    );
    let mut files: Vec<_> = std::fs::read_dir(export.join("187520"))
        .expect("dir")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    let one = cli()
        .arg("map")
        .args(&files)
        .args(["--format", "results"])
        .output()
        .expect("runs");
    let four = cli()
        .arg("map")
        .args(&files)
        .args(["--format", "results", "--threads", "4"])
        .output()
        .expect("runs");
    assert!(one.status.success() && four.status.success());
    assert_eq!(one.stdout, four.stdout);
}

#[test]
fn reads_stdin_plain_and_multi_member_gzip_alike() {
    let rows = [
        r#"{"event_type":"A","user_id":"u","event_time":"2024-07-06 12:34:56","uuid":"0b7a1c8e-3f5d-4c8e-9b1a-6d2f4e8c1a55"}"#,
        r#"{"event_type":"session_start","user_id":"u","event_time":"2024-07-06 12:34:56"}"#,
        r#"{"event_type":"B","device_id":"d","event_time":"2024-07-06 12:34:57","uuid":"0b7a1c8e-3f5d-4c8e-9b1a-6d2f4e8c1a56"}"#,
    ];
    let plain = rows.join("\n");
    let dir = tempfile::tempdir().expect("tmp");
    // Two gzip members, the first without a trailing newline, as Amplitude writes them.
    let gz_path = dir.path().join("part.json.gz");
    let mut bytes = Vec::new();
    for member in [plain.as_bytes(), b"\n".as_slice()] {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
        encoder.write_all(member).expect("write");
        bytes.extend(encoder.finish().expect("finish"));
    }
    std::fs::write(&gz_path, &bytes).expect("write");

    let mut child = cli()
        .args(["map", "--format", "results"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(plain.as_bytes())
        .expect("write");
    let from_stdin = child.wait_with_output().expect("runs");
    let from_gzip = cli()
        .args(["map", "--format", "results"])
        .arg(&gz_path)
        .output()
        .expect("runs");
    assert!(from_stdin.status.success() && from_gzip.status.success());
    assert_eq!(from_stdin.stdout, from_gzip.stdout);
    let text = String::from_utf8(from_gzip.stdout).expect("utf-8");
    assert_eq!(text.lines().count(), 3);
    assert_eq!(text.lines().nth(1), Some(r#"{"skipped":"session_marker"}"#));
}

#[test]
fn a_missing_file_is_a_one_line_error() {
    let output = cli()
        .args(["map", "/nonexistent/export.json.gz"])
        .output()
        .expect("runs");
    assert!(!output.status.success());
    let stderr = stderr_of(&output);
    assert_eq!(
        stderr,
        "amplitude-posthog: cannot open /nonexistent/export.json.gz: No such file or directory (os error 2)\n"
    );
}

#[test]
fn a_broken_gzip_fails_the_run_but_not_the_other_files() {
    let dir = tempfile::tempdir().expect("tmp");
    let good = dir.path().join("good.json");
    std::fs::write(
        &good,
        "{\"event_type\":\"A\",\"user_id\":\"u\",\"event_time\":\"2024-07-06 12:34:56\"}\n",
    )
    .expect("write");
    let broken = dir.path().join("broken.json.gz");
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(&vec![b'{'; 100_000]).expect("write");
    let mut bytes = encoder.finish().expect("finish");
    bytes.truncate(bytes.len() / 2);
    std::fs::write(&broken, &bytes).expect("write");

    let output = cli()
        .arg("map")
        .arg(&broken)
        .arg(&good)
        .args(["--format", "results"])
        .output()
        .expect("runs");
    assert!(!output.status.success());
    let stderr = stderr_of(&output);
    let error = format!(
        "cannot read {} after line 0: incomplete deflate stream",
        broken.display()
    );
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines[0], format!("amplitude-posthog: {error}"), "{stderr}");
    assert_eq!(
        &lines[1..3],
        [
            "rows 1 = mapped 1 + skipped 0 + rejected 0; events 1".to_owned(),
            format!("  failed input: {error}")
        ],
        "{stderr}"
    );
    let stdout = String::from_utf8(output.stdout).expect("utf-8");
    assert!(
        stdout.lines().any(|line| line.starts_with("{\"events\":")),
        "the good file was still mapped: {stdout}"
    );
}

#[test]
fn a_bad_flag_is_refused() {
    let output = cli()
        .args(["map", "--engine", "lua"])
        .output()
        .expect("runs");
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        stderr_of(&output).lines().next(),
        Some("error: invalid value 'lua' for '--engine <ENGINE>'")
    );
}

#[test]
fn every_engine_gives_the_same_bytes_on_a_generated_export() {
    let dir = tempfile::tempdir().expect("tmp");
    let export = dir.path().join("export");
    assert!(
        cli()
            .args([
                "generate", "--rows", "5000", "--seed", "12", "--days", "1", "--out"
            ])
            .arg(&export)
            .status()
            .expect("runs")
            .success()
    );
    let run = |engine: &str, format: &str| {
        let output = cli()
            .arg("map")
            .arg(&export)
            .args(["--engine", engine, "--format", format, "--threads", "2"])
            .output()
            .expect("runs");
        assert!(output.status.success(), "{engine}: {}", stderr_of(&output));
        output.stdout
    };
    for format in ["events", "results"] {
        let vrl = run("vrl", format);
        assert!(!vrl.is_empty());
        assert_eq!(run("wasm", format), vrl, "wasm differs from vrl ({format})");
        assert_eq!(
            run("native", format),
            vrl,
            "native differs from vrl ({format})"
        );
    }
}

#[test]
fn wasm_module_writes_a_loadable_module() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("transform.wasm");
    let output = cli()
        .args(["wasm-module", "--out"])
        .arg(&path)
        .output()
        .expect("runs");
    assert!(output.status.success(), "{}", stderr_of(&output));
    let bytes = std::fs::read(&path).expect("written");
    assert_eq!(bytes, amplitude_posthog::wasm_engine::EMBEDDED_MODULE);
}
