//! `amplitude-posthog prepare`: every export file decompresses to its end, and a last line
//! without a newline (which Vector never reads) gets one; damaged files are named and fail
//! the command; a dry run changes nothing.

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
         2 export file(s), 4 row(s); 1 newline(s) to add; 0 unreadable\n"
    );
    assert_eq!(fs::read(&unterminated).expect("read"), before);

    let first = prepare(dir.path(), &[]);
    assert!(first.status.success());
    assert_eq!(
        stderr(&first),
        "added a newline to export/187520/187520_2024-01-01_1#1.json.gz: its last line (row 2) had no newline, which Vector never reads\n\
         2 export file(s), 4 row(s); 1 newline(s) added; 0 unreadable\n"
    );
    let after = fs::read(&unterminated).expect("read");
    assert!(after.starts_with(&before) && after.len() > before.len());

    let second = prepare(dir.path(), &[]);
    assert!(second.status.success());
    assert_eq!(
        stderr(&second),
        "2 export file(s), 4 row(s); 0 newline(s) added; 0 unreadable\n"
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
            "4 export file(s), 4 row(s); 1 newline(s) added; 2 unreadable",
            "fix or replace the unreadable file(s) before starting Vector: it stops reading a file at the damage",
        ]
    );
}
