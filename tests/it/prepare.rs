//! `amplitude-posthog prepare`: every export file decompresses to its end, a last line
//! without a newline (which Vector never reads) gets one, and a row too long for Vector (which
//! it discards without a trace) is a dead letter with its file and line; damaged files are
//! named and fail the command; a dry run changes nothing.

use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output};

use flate2::Compression;
use flate2::write::GzEncoder;

fn gzip(content: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(content).expect("write");
    encoder.finish().expect("gzip")
}

fn prepare(dir: &Path, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_amplitude-posthog"))
        .arg("prepare")
        .arg("export")
        .args(extra)
        .current_dir(dir)
        .output()
        .expect("runs")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// An export with a ready file, one whose last line lacks its newline, and a file that is
/// not an export file (ignored).
fn export() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tmp");
    let project = dir.path().join("export/187520");
    fs::create_dir_all(&project).expect("dirs");
    fs::write(
        project.join("187520_2024-01-01_0#1.json.gz"),
        gzip(b"{\"a\":1}\n{\"a\":2}\n"),
    )
    .expect("write");
    fs::write(
        project.join("187520_2024-01-01_1#1.json.gz"),
        gzip(b"{\"a\":3}\n{\"a\":4}"),
    )
    .expect("write");
    fs::write(dir.path().join("export/.amplitude-export.json"), b"{}").expect("write");
    dir
}

#[test]
fn adds_the_missing_final_newline_once_and_counts_every_row() {
    let dir = export();
    let unterminated = dir
        .path()
        .join("export/187520/187520_2024-01-01_1#1.json.gz");
    let before = fs::read(&unterminated).expect("read");

    let dry_run = prepare(dir.path(), &["--dry-run"]);
    assert!(dry_run.status.success());
    assert_eq!(
        stderr(&dry_run),
        "would add a newline to export/187520/187520_2024-01-01_1#1.json.gz: its last line (row 2) had no newline, which Vector never reads\n\
         2 export file(s), 4 row(s); 1 newline(s) to add; 0 row(s) too long for Vector to set aside; 0 unreadable\n"
    );
    assert_eq!(fs::read(&unterminated).expect("read"), before);

    let first = prepare(dir.path(), &[]);
    assert!(first.status.success());
    assert_eq!(
        stderr(&first),
        "added a newline to export/187520/187520_2024-01-01_1#1.json.gz: its last line (row 2) had no newline, which Vector never reads\n\
         2 export file(s), 4 row(s); 1 newline(s) added; 0 row(s) too long for Vector set aside; 0 unreadable\n"
    );
    let after = fs::read(&unterminated).expect("read");
    assert!(after.starts_with(&before) && after.len() > before.len());

    let second = prepare(dir.path(), &[]);
    assert!(second.status.success());
    assert_eq!(
        stderr(&second),
        "2 export file(s), 4 row(s); 0 newline(s) added; 0 row(s) too long for Vector set aside; 0 unreadable\n"
    );
}

#[test]
fn a_damaged_file_is_named_and_fails_the_command_after_the_others_are_checked() {
    let dir = export();
    let whole = gzip(b"{\"a\":5}\n{\"a\":6}\n");
    fs::write(
        dir.path()
            .join("export/187520/187520_2024-01-01_2#1.json.gz"),
        &whole[..whole.len() - 6],
    )
    .expect("write");
    fs::write(
        dir.path()
            .join("export/187520/187520_2024-01-01_3#1.json.gz"),
        b"{\"a\":7}\n",
    )
    .expect("write");
    let output = prepare(dir.path(), &[]);
    assert_eq!(output.status.code(), Some(1));
    let text = stderr(&output);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines,
        [
            "added a newline to export/187520/187520_2024-01-01_1#1.json.gz: its last line (row 2) had no newline, which Vector never reads",
            "cannot read export/187520/187520_2024-01-01_2#1.json.gz: cannot decompress it: unexpected end of file",
            "cannot read export/187520/187520_2024-01-01_3#1.json.gz: not gzip",
            "4 export file(s), 4 row(s); 1 newline(s) added; 0 row(s) too long for Vector set aside; 2 unreadable",
            "fix or replace the unreadable file(s) before starting Vector: it stops reading a file at the damage",
        ]
    );
}

/// A valid row of `bytes` bytes whose bulk is one huge property, as the issue's 9 MB row.
fn huge_row(bytes: usize) -> Vec<u8> {
    let mut row = br#"{"event_type":"Huge","user_id":"huge-user","event_time":"2024-07-06 12:00:00.000000","event_properties":{"blob":""#.to_vec();
    row.resize(bytes - 3, b'x');
    row.extend_from_slice(br#""}}"#);
    row
}

fn row(user: &str) -> Vec<u8> {
    format!(
        r#"{{"event_type":"Click","user_id":"{user}","event_time":"2024-07-06 12:00:00.000000"}}"#
    )
    .into_bytes()
}

fn dead_letters(dir: &Path) -> Vec<serde_json::Value> {
    fs::read_to_string(dir.join("dead-letters/prepare.jsonl"))
        .expect("prepare's dead letters")
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON record"))
        .collect()
}

#[test]
fn a_row_too_long_for_vector_becomes_a_dead_letter_with_its_file_and_line_and_the_file_stays_whole()
{
    let max = amplitude_posthog::input::MAX_LINE_BYTES;
    let dir = tempfile::tempdir().expect("tmp");
    let project = dir.path().join("export/187520");
    fs::create_dir_all(&project).expect("dirs");
    // Rows around a 9 MB one (the boundary itself is export_file's unit tests').
    let mixed = [row("a"), huge_row(9_000_000), row("b"), Vec::new()].join(&b'\n');
    let mixed_path = project.join("187520_2024-07-06_12#1.json.gz");
    fs::write(&mixed_path, gzip(&mixed)).expect("write");
    // The issue's file: one 9 MB row and nothing else, its newline missing too.
    let single_path = project.join("187520_2024-07-06_13#1.json.gz");
    fs::write(&single_path, gzip(&huge_row(max + 1))).expect("write");
    let before = fs::read(&mixed_path).expect("read");

    let dry_run = prepare(dir.path(), &["--dry-run"]);
    assert!(dry_run.status.success());
    assert_eq!(
        stderr(&dry_run),
        format!(
            "would set aside 1 row(s) of export/187520/187520_2024-07-06_12#1.json.gz: longer than the {max} bytes Vector reads, which it discards without a trace (event_too_large)\n\
             would set aside 1 row(s) of export/187520/187520_2024-07-06_13#1.json.gz: longer than the {max} bytes Vector reads, which it discards without a trace (event_too_large)\n\
             would add a newline to export/187520/187520_2024-07-06_13#1.json.gz: its last line (row 1) had no newline, which Vector never reads\n\
             2 export file(s), 4 row(s); 1 newline(s) to add; 2 row(s) too long for Vector to set aside; 0 unreadable\n"
        )
    );
    assert!(
        !dir.path().join("dead-letters").exists(),
        "a dry run writes nothing"
    );

    let output = prepare(dir.path(), &[]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stderr(&output).ends_with(
            "2 export file(s), 4 row(s); 1 newline(s) added; 2 row(s) too long for Vector set aside (dead letters: dead-letters/prepare.jsonl); 0 unreadable\n"
        ),
        "{}",
        stderr(&output)
    );
    // The export keeps every byte: the rows before and after the long one are Vector's to read.
    assert_eq!(fs::read(&mixed_path).expect("read"), before);

    let letters = dead_letters(dir.path());
    let found: Vec<(&str, u64, &str, &str, u64, u64)> = letters
        .iter()
        .map(|letter| {
            (
                letter["file"].as_str().expect("file"),
                letter["line"].as_u64().expect("line"),
                letter["metadata"]["dropped"]["message"]
                    .as_str()
                    .expect("reason"),
                letter["metadata"]["dropped"]["component_id"]
                    .as_str()
                    .expect("component"),
                letter["truncated"]["row_bytes"].as_u64().expect("length"),
                letter["truncated"]["kept_bytes"].as_u64().expect("kept"),
            )
        })
        .collect();
    let kept = amplitude_posthog::input::OVERSIZED_KEPT_BYTES as u64;
    assert_eq!(
        found,
        [
            (
                "export/187520/187520_2024-07-06_12#1.json.gz",
                2,
                "event_too_large",
                "prepare",
                9_000_000,
                kept
            ),
            (
                "export/187520/187520_2024-07-06_13#1.json.gz",
                1,
                "event_too_large",
                "prepare",
                max as u64 + 1,
                kept
            ),
        ]
    );

    // The same record `map --rejects` writes for that row, but for who wrote it.
    let rejects = dir.path().join("rejects.jsonl");
    let map = Command::new(env!("CARGO_BIN_EXE_amplitude-posthog"))
        .arg("map")
        .arg(&mixed_path)
        .arg("--rejects")
        .arg(&rejects)
        .output()
        .expect("map runs");
    assert!(map.status.success(), "{}", stderr(&map));
    let mut from_map: serde_json::Value =
        serde_json::from_str(fs::read_to_string(&rejects).expect("rejects").trim())
            .expect("one record");
    from_map["file"] = letters[0]["file"].clone();
    from_map["metadata"]["dropped"]["component_id"] = "prepare".into();
    assert_eq!(from_map, letters[0]);

    // Again: nothing new to do, the same records once.
    let again = prepare(dir.path(), &[]);
    assert!(again.status.success());
    assert_eq!(dead_letters(dir.path()), letters);

    // The report of the pipeline counts the rows as the mapping does, and finds every refused
    // row in the dead letters: rows = mapped + rejected, nothing missing.
    let report = Command::new(env!("CARGO_BIN_EXE_amplitude-posthog"))
        .args([
            "report",
            "--export",
            "export",
            "--dead-letters",
            "dead-letters",
            "--out",
            "report",
        ])
        .current_dir(dir.path())
        .output()
        .expect("report runs");
    let text = String::from_utf8_lossy(&report.stdout).into_owned();
    assert_eq!(report.status.code(), Some(0), "{text}{}", stderr(&report));
    assert!(!text.contains("problem:"), "{text}");
    let json: serde_json::Value = serde_json::from_slice(
        &fs::read(dir.path().join("report/report.json")).expect("report.json"),
    )
    .expect("JSON");
    let totals = &json["totals"];
    assert_eq!(totals["rows"], 4);
    assert_eq!(totals["mapped"], 2);
    assert_eq!(
        totals["rejected"],
        serde_json::json!({"event_too_large": 2})
    );
}
