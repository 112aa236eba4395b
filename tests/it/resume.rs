//! `amplitude-posthog resume`: complete, partial, plain, missing and unknown files, files whose
//! last row is too long for Vector; dry runs; atomic rewrite; refusal while Vector holds the
//! data directory.

use std::fs;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;

use amplitude_posthog::vector::resume::{FileState, ResumeError, resume};
use flate2::Compression;
use flate2::write::GzEncoder;
use serde_json::{Value, json};

fn gzip_members(members: &[&[u8]]) -> Vec<u8> {
    let mut bytes = Vec::new();
    for member in members {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
        encoder.write_all(member).expect("write");
        bytes.extend(encoder.finish().expect("finish"));
    }
    bytes
}

fn dev_inode(path: &Path) -> (u64, u64) {
    let metadata = fs::metadata(path).expect("exists");
    (metadata.dev(), metadata.ino())
}

fn checkpoint(path: &Path, position: u64) -> Value {
    let (device, inode) = dev_inode(path);
    json!({"fingerprint": {"dev_inode": [device, inode]}, "position": position, "modified": "2026-11-28T10:00:00.000000000Z"})
}

struct Setup {
    _dir: tempfile::TempDir,
    data_dir: std::path::PathBuf,
    export: std::path::PathBuf,
    checkpoints: std::path::PathBuf,
}

/// An export with a complete file (two gzip members), a partial one, a plain file, one not
/// started, and a checkpoint of a file that is gone.
fn setup() -> Setup {
    let dir = tempfile::tempdir().expect("tmp");
    let export = dir.path().join("export/187520");
    fs::create_dir_all(&export).expect("dirs");
    let rows = b"{\"a\":1}\n{\"a\":2}\n{\"a\":3}\n";
    fs::write(
        export.join("187520_2024-01-01_0#1.json.gz"),
        gzip_members(&[b"{\"a\":1}\n{\"a\":2}\n{\"a\":3}", b"\n"]),
    )
    .expect("write");
    fs::write(
        export.join("187520_2024-01-01_1#2.json.gz"),
        gzip_members(&[rows]),
    )
    .expect("write");
    fs::write(export.join("187520_2024-01-01_2#3.json"), rows).expect("write");
    fs::write(
        export.join("187520_2024-01-01_3#4.json.gz"),
        gzip_members(&[rows]),
    )
    .expect("write");
    let data_dir = dir.path().join("vector-data");
    fs::create_dir_all(data_dir.join("amplitude")).expect("dirs");
    let checkpoints = data_dir.join("amplitude/checkpoints.json");
    let document = json!({"version": "1", "checkpoints": [
        checkpoint(&export.join("187520_2024-01-01_0#1.json.gz"), rows.len() as u64),
        checkpoint(&export.join("187520_2024-01-01_1#2.json.gz"), 8),
        checkpoint(&export.join("187520_2024-01-01_2#3.json"), 8),
        {"fingerprint": {"dev_inode": [1, 999_999_999]}, "position": 5, "modified": "2026-11-28T10:00:00Z"},
        {"fingerprint": {"checksum": 1234}, "position": 5, "modified": "2026-11-28T10:00:00Z"},
    ]});
    fs::write(&checkpoints, serde_json::to_vec(&document).expect("json")).expect("write");
    Setup {
        export: dir.path().join("export"),
        _dir: dir,
        data_dir,
        checkpoints,
    }
}

/// `resume` over the setup's data and export directories.
fn run_resume(
    setup: &Setup,
    dry_run: bool,
) -> Result<amplitude_posthog::vector::resume::ResumeReport, ResumeError> {
    resume(
        &setup.data_dir,
        "amplitude",
        std::slice::from_ref(&setup.export),
        dry_run,
    )
}

fn positions(checkpoints: &Path) -> Vec<u64> {
    let document: Value =
        serde_json::from_slice(&fs::read(checkpoints).expect("read")).expect("json");
    document["checkpoints"]
        .as_array()
        .expect("array")
        .iter()
        .map(|entry| entry["position"].as_u64().expect("position"))
        .collect()
}

#[test]
fn removes_only_the_checkpoints_of_partially_delivered_gzip_files() {
    let setup = setup();
    let report = run_resume(&setup, false).expect("resume");
    assert_eq!(report.checkpoints_removed, 1);
    let partial: Vec<_> = report
        .files
        .iter()
        .filter(|file| matches!(file, FileState::Partial { .. }))
        .collect();
    assert!(
        matches!(partial.as_slice(), [FileState::Partial { position: 8, length: 24, path, newline_added: false }] if path.ends_with("187520_2024-01-01_1#2.json.gz")),
        "{partial:?}"
    );
    assert!(
        report
            .files
            .iter()
            .any(|file| matches!(file, FileState::Complete { length: 24, .. }))
    );
    assert!(
        report
            .files
            .iter()
            .any(|file| matches!(file, FileState::Plain { position: 8, .. }))
    );
    assert!(report.files.iter().any(|file| matches!(file, FileState::NotStarted { path } if path.ends_with("187520_2024-01-01_3#4.json.gz"))));
    assert!(report.files.iter().any(|file| matches!(
        file,
        FileState::Unknown {
            inode: 999_999_999,
            ..
        }
    )));
    // Complete, plain, unknown and foreign-fingerprint checkpoints stay, in order.
    assert_eq!(positions(&setup.checkpoints), vec![24, 8, 5, 5]);
    // A second run has nothing left to do.
    let again = run_resume(&setup, false).expect("resume");
    assert_eq!(again.checkpoints_removed, 0);
}

#[test]
fn a_dry_run_changes_nothing() {
    let setup = setup();
    let before = fs::read(&setup.checkpoints).expect("read");
    let report = run_resume(&setup, true).expect("resume");
    assert_eq!(report.checkpoints_removed, 1);
    assert_eq!(fs::read(&setup.checkpoints).expect("read"), before);
}

#[test]
fn no_checkpoints_file_means_nothing_to_do() {
    let dir = tempfile::tempdir().expect("tmp");
    let report =
        resume(dir.path(), "amplitude", &[dir.path().to_path_buf()], false).expect("resume");
    assert_eq!(report.checkpoints_removed, 0);
}

#[test]
fn refuses_while_vector_holds_the_data_directory() {
    let setup = setup();
    let buffer = setup.data_dir.join("buffer/v2/posthog");
    fs::create_dir_all(&buffer).expect("dirs");
    let lock = fs::File::create(buffer.join("buffer.lock")).expect("lock file");
    lock.lock().expect("hold the lock as Vector does");
    let before = fs::read(&setup.checkpoints).expect("read");
    let error = run_resume(&setup, false).expect_err("refused");
    assert!(matches!(error, ResumeError::Locked(..)), "{error}");
    assert!(error.to_string().contains("stop Vector"));
    assert_eq!(fs::read(&setup.checkpoints).expect("read"), before);
    lock.unlock().expect("release");
    assert!(run_resume(&setup, false).is_ok());
}

#[test]
fn a_corrupt_checkpoints_file_is_reported_not_overwritten() {
    let setup = setup();
    fs::write(&setup.checkpoints, b"{not json").expect("write");
    let error = run_resume(&setup, false).expect_err("refused");
    assert!(matches!(error, ResumeError::Format { .. }), "{error}");
    assert_eq!(fs::read(&setup.checkpoints).expect("read"), b"{not json");
}

#[test]
fn the_command_reports_what_it_changed() {
    let setup = setup();
    let output = Command::new(env!("CARGO_BIN_EXE_amplitude-posthog"))
        .args(["resume", "--data-dir"])
        .arg(&setup.data_dir)
        .arg("--export")
        .arg(&setup.export)
        .output()
        .expect("runs");
    assert!(output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("will re-read") && stderr.contains("187520_2024-01-01_1#2.json.gz"),
        "{stderr}"
    );
    assert!(stderr.contains("removed 1 checkpoint(s)"), "{stderr}");
}

#[test]
fn a_checkpointed_file_whose_last_line_lacks_a_newline_gets_one_and_is_read_again() {
    let setup = setup();
    // Vector stops before an unterminated last line and never reads it: its checkpoint ends
    // there, which is short of the file's end.
    let file = setup.export.join("187520/187520_2024-01-01_4#5.json.gz");
    fs::write(&file, gzip_members(&[b"{\"a\":1}\n{\"a\":2}"])).expect("write");
    let mut document: Value =
        serde_json::from_slice(&fs::read(&setup.checkpoints).expect("read")).expect("json");
    document["checkpoints"]
        .as_array_mut()
        .expect("array")
        .push(checkpoint(&file, 8));
    fs::write(
        &setup.checkpoints,
        serde_json::to_vec(&document).expect("json"),
    )
    .expect("write");
    let before = fs::read(&file).expect("read");

    let dry_run = run_resume(&setup, true).expect("resume");
    assert!(dry_run.files.iter().any(|state| matches!(state, FileState::Partial { path, position: 8, length: 16, newline_added: true } if path == &file)), "{:?}", dry_run.files);
    assert_eq!(
        fs::read(&file).expect("read"),
        before,
        "a dry run writes nothing"
    );

    let report = run_resume(&setup, false).expect("resume");
    assert_eq!(report.checkpoints_removed, 2);
    let after = fs::read(&file).expect("read");
    assert!(after.starts_with(&before), "the original bytes stay");
    let facts = amplitude_posthog::export_file::scan_path(&file).expect("gzip");
    assert_eq!((facts.rows, facts.ends_with_newline), (2, true));
}

#[test]
fn a_file_whose_last_row_is_too_long_for_vector_is_complete_at_the_row_before_it() {
    let setup = setup();
    let max = amplitude_posthog::input::MAX_LINE_BYTES;
    let long_row = [b"{\"a\":\"".to_vec(), vec![b'x'; max], b"\"}".to_vec()].concat();
    let file = setup.export.join("187520/187520_2024-01-01_4#5.json.gz");
    fs::write(&file, gzip_members(&[b"{\"a\":1}\n", &long_row, b"\n"])).expect("write");
    let other = setup.export.join("187520/187520_2024-01-01_5#6.json.gz");
    fs::write(
        &other,
        gzip_members(&[b"{\"a\":1}\n{\"a\":2}\n", &long_row, b"\n"]),
    )
    .expect("write");
    // Vector discards the long rows: the first file's checkpoint stops after `{"a":1}\n` (8),
    // the second's is one row short of that (8 of 16): only the second is partial.
    let mut document: Value =
        serde_json::from_slice(&fs::read(&setup.checkpoints).expect("read")).expect("json");
    let entries = document["checkpoints"].as_array_mut().expect("array");
    entries.push(checkpoint(&file, 8));
    entries.push(checkpoint(&other, 8));
    fs::write(
        &setup.checkpoints,
        serde_json::to_vec(&document).expect("json"),
    )
    .expect("write");

    let report = run_resume(&setup, true).expect("resume");
    let state = |path: &Path| {
        report
            .files
            .iter()
            .find(|state| match state {
                FileState::Complete { path: found, .. }
                | FileState::Partial { path: found, .. } => found == path,
                _ => false,
            })
            .cloned()
    };
    assert!(
        matches!(state(&file), Some(FileState::Complete { .. })),
        "{:?}",
        report.files
    );
    assert!(
        matches!(state(&other), Some(FileState::Partial { position: 8, .. })),
        "{:?}",
        report.files
    );
}
