//! Running the shipped `vector.toml` on a real Vector: finding Vector, a directory laid out as
//! the README's "Run a migration" says (only hosts and ports changed), the identity sidecar,
//! and what the native mapping says should arrive.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use amplitude_posthog::MappingOutcome;
use amplitude_posthog::generator::{Generator, GeneratorConfig};
use amplitude_posthog_test_support::process::{Process, Sidecar};
use flate2::Compression;
use flate2::write::GzEncoder;
use serde_json::Value;

/// The PostHog project key every run uses.
pub const KEY: &str = "phc_vector_run_test_key";

pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The oldest Vector the shipped pipeline supports (multi-member gzip, no environment
/// interpolation by default: `vector.toml`'s header).
const OLDEST_VECTOR: (u32, u32) = (0, 57);

/// The Vector to run — `VECTOR_BIN`, else `vector` on `PATH` — when it is 0.57 or later.
/// Otherwise `None`, after one line on the test output naming the test and why it did not run
/// (written to the process's stderr itself, past the harness's capture, so a CI log shows
/// every real-Vector check that was skipped). A `VECTOR_BIN` that does not run fails the
/// test: whoever set it asked for the real runs.
pub fn vector() -> Option<PathBuf> {
    let Some(path) = amplitude_posthog::vector::find_vector() else {
        skipped("no Vector (set VECTOR_BIN=/path/to/vector or put vector on PATH)");
        return None;
    };
    let output = Command::new(&path)
        .arg("--version")
        .output()
        .unwrap_or_else(|error| panic!("{} --version: {error}", path.display()));
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    match vector_version(&text) {
        Some(version) if version >= OLDEST_VECTOR => Some(path),
        Some((major, minor)) => {
            skipped(&format!(
                "no Vector: {} is {major}.{minor}, older than {}.{}",
                path.display(),
                OLDEST_VECTOR.0,
                OLDEST_VECTOR.1
            ));
            None
        }
        None => panic!(
            "{} --version printed {text:?}: not a Vector",
            path.display()
        ),
    }
}

/// (major, minor) of `vector --version`'s `vector 0.58.0 (x86_64-unknown-linux-gnu …)`.
fn vector_version(text: &str) -> Option<(u32, u32)> {
    let version = text.strip_prefix("vector ")?.split_whitespace().next()?;
    let mut parts = version.split('.');
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

/// `skipped: <why> — <test>` on the test binary's stderr, uncaptured.
fn skipped(why: &str) {
    let thread = std::thread::current();
    let test = thread.name().unwrap_or("a real-Vector test");
    let _ = writeln!(
        std::io::stderr(),
        "skipped: {why} — {test} (a real-Vector check, not run here)"
    );
}

#[test]
fn vector_versions_are_read_from_its_version_line() {
    assert_eq!(
        vector_version(
            "vector 0.58.0 (x86_64-unknown-linux-gnu 7fb1e06 2025-06-17 14:04:08.787785346)\n"
        ),
        Some((0, 58))
    );
    assert_eq!(vector_version("vector 1.2.3-custom"), Some((1, 2)));
    assert_eq!(vector_version("something else"), None);
}

/// The sidecar binary of this workspace's build (`cargo test --workspace` builds it).
fn sidecar_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>");
    let binary = dir.join("posthog-identity-sidecar");
    assert!(
        binary.is_file(),
        "{} is missing: build the workspace first (cargo build --release -p posthog-identity-sidecar)",
        binary.display()
    );
    binary
}

/// Starts the identity sidecar on `listen` (`127.0.0.1:0` for any port), its store in `dir`.
pub fn start_sidecar(dir: &Path, listen: &str, posthog: &str) -> Sidecar {
    Sidecar::start(
        &sidecar_binary(),
        listen,
        &dir.join("identities.sqlite"),
        posthog,
        KEY,
        &[],
    )
}

/// A directory laid out as the README's "Run a migration" says: the shipped config with only
/// the hosts and ports changed, its VRL programs, a key file, the export directory.
pub struct Workspace {
    dir: tempfile::TempDir,
}

impl Workspace {
    pub fn new(posthog: &str, sidecar: &str) -> Workspace {
        let dir = tempfile::tempdir().expect("tmp");
        for sub in [
            "vrl",
            "secrets",
            "vector-data",
            "dead-letters",
            "export/187520",
        ] {
            std::fs::create_dir_all(dir.path().join(sub)).expect("mkdir");
        }
        std::fs::copy(
            root().join("vrl/amplitude_to_posthog.vrl"),
            dir.path().join("vrl/amplitude_to_posthog.vrl"),
        )
        .expect("copy the program");
        std::fs::write(dir.path().join("secrets/api_key"), format!("{KEY}\n")).expect("key");
        let shipped = std::fs::read_to_string(root().join("vector.toml")).expect("vector.toml");
        let config = replace_once(
            &replace_once(
                &shipped,
                "uri = \"https://us.i.posthog.com/batch/\"",
                &format!("uri = \"{posthog}/batch/\""),
            ),
            "uri = \"http://127.0.0.1:8687/records\"",
            &format!("uri = \"{sidecar}/records\""),
        );
        std::fs::write(dir.path().join("vector.toml"), config).expect("config");
        Workspace { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes an export file as gzip members, each a list of lines joined with newlines
    /// (every line, the last one included, ends with one).
    pub fn export_file(&self, name: &str, members: &[&[Vec<u8>]]) -> PathBuf {
        let mut bytes = Vec::new();
        for lines in members {
            let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
            for line in *lines {
                encoder.write_all(line).expect("write");
                encoder.write_all(b"\n").expect("write");
            }
            bytes.extend(encoder.finish().expect("gzip"));
        }
        self.write_export(name, &bytes)
    }

    /// Writes an export file's bytes as they are.
    pub fn write_export(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.path().join("export/187520").join(name);
        std::fs::write(&path, bytes).expect("export file");
        path
    }

    /// Starts `vector --config vector.toml` here, logging at info level.
    pub fn start_vector(&self, vector: &Path) -> Process {
        let mut command = Command::new(vector);
        command
            .args(["--config", "vector.toml"])
            .current_dir(self.path())
            .env("VECTOR_LOG", "info");
        Process::spawn(command)
    }

    /// Runs `amplitude-posthog resume` (the product's command) here; what it printed.
    pub fn resume(&self, dry_run: bool) -> String {
        let mut arguments = vec!["resume", "--data-dir", "vector-data", "--export", "export"];
        if dry_run {
            arguments.push("--dry-run");
        }
        self.cli(&arguments)
    }

    /// Runs `amplitude-posthog prepare export` here; what it printed.
    pub fn prepare(&self) -> String {
        self.cli(&["prepare", "export"])
    }

    fn cli(&self, arguments: &[&str]) -> String {
        let output = Command::new(env!("CARGO_BIN_EXE_amplitude-posthog"))
            .args(arguments)
            .current_dir(self.path())
            .output()
            .expect("the CLI runs");
        assert!(output.status.success(), "{arguments:?} failed: {output:?}");
        String::from_utf8_lossy(&output.stderr).into_owned()
    }

    /// The dead-letter records Vector wrote.
    pub fn dead_letters(&self) -> Vec<Value> {
        let mut records = Vec::new();
        for file in
            amplitude_posthog::fs::walk_files(&self.path().join("dead-letters")).expect("listed")
        {
            for line in std::fs::read_to_string(file).expect("readable").lines() {
                records.push(serde_json::from_str(line).expect("a JSON record"));
            }
        }
        records
    }
}

fn replace_once(text: &str, from: &str, to: &str) -> String {
    assert_eq!(text.matches(from).count(), 1, "vector.toml has one {from}");
    text.replacen(from, to, 1)
}

/// Generated rows (their broken share included), as lines.
pub fn generated_rows(rows: u64, seed: u64, broken_share: f64) -> Vec<Vec<u8>> {
    Generator::new(GeneratorConfig {
        rows,
        seed,
        broken_share,
        ..GeneratorConfig::default()
    })
    .map(|row| row.line)
    .collect()
}

/// A refused row and the mapping's reason.
pub type Refused = (Vec<u8>, String);

/// The events the native mapping makes of `lines`, by uuid, and the refused lines in order.
pub fn expected(lines: &[Vec<u8>]) -> (BTreeMap<String, Value>, Vec<Refused>) {
    let mut events = BTreeMap::new();
    let mut refused = Vec::new();
    for line in lines {
        match amplitude_posthog_transform::map_line(line) {
            MappingOutcome::Events(mapped) => {
                for event in mapped {
                    let event: Value = serde_json::from_str(&event).expect("event JSON");
                    let uuid = event["uuid"].as_str().expect("uuid").to_owned();
                    events.insert(uuid, event);
                }
            }
            MappingOutcome::Skipped(_) => {}
            MappingOutcome::Rejected(reason) => {
                refused.push((line.clone(), reason.as_str().to_owned()))
            }
        }
    }
    (events, refused)
}

/// Polls `done` every 200 ms; fails after `limit` with `what` and `context()`.
pub fn wait_until(
    limit: Duration,
    what: &str,
    mut done: impl FnMut() -> bool,
    context: impl Fn() -> String,
) {
    let started = Instant::now();
    while !done() {
        assert!(
            started.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}\n{}",
            context()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Vector's log lines that report events dropped by accident (`intentional=false`).
pub fn unintended_drops(log: &str) -> Vec<&str> {
    log.lines()
        .filter(|line| line.contains("intentional=false"))
        .collect()
}

/// The last `count` lines of a log, for failure messages.
pub fn tail(log: &str, count: usize) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(count)..].join("\n")
}

/// The (user, device) pairs the identity sidecar should learn from `lines`, by device: both
/// ids usable and different, and a time the mapping accepts (docs/MAPPING.md §3.1).
pub fn expected_pairs(lines: &[Vec<u8>]) -> BTreeMap<String, std::collections::BTreeSet<String>> {
    let mut pairs: BTreeMap<String, std::collections::BTreeSet<String>> = BTreeMap::new();
    for line in lines {
        let Ok(row) = amplitude_posthog_transform::AmplitudeRow::parse(line) else {
            continue;
        };
        if amplitude_posthog_transform::event_timestamp(&row).is_none() {
            continue;
        }
        let Ok(Value::Object(fields)) = serde_json::from_slice::<Value>(line) else {
            continue;
        };
        let usable = |key: &str| {
            let id = match fields.get(key)? {
                Value::String(text) => text.clone(),
                Value::Number(number) if number.is_i64() => number.to_string(),
                _ => return None,
            };
            amplitude_posthog_transform::usable_id(&id).map(str::to_owned)
        };
        if let (Some(user), Some(device)) = (usable("user_id"), usable("device_id"))
            && user != device
        {
            pairs.entry(device).or_default().insert(user);
        }
    }
    pairs
}

/// The position of the first checkpoint Vector's file source saved, if any.
pub fn checkpoint_position(workspace: &Workspace) -> Option<u64> {
    let text = std::fs::read_to_string(
        workspace
            .path()
            .join("vector-data/amplitude/checkpoints.json"),
    )
    .ok()?;
    let document: Value = serde_json::from_str(&text).ok()?;
    document["checkpoints"].as_array()?.first()?["position"].as_u64()
}

/// Whether an event PostHog stored was sent by the identity sidecar (its aliases and group
/// events) rather than by the mapping (whose `$groupidentify` names the Amplitude event).
pub fn is_from_sidecar(event: &Value) -> bool {
    event["event"] == "$create_alias"
        || event["properties"]["$amplitude_person_update"] == true
        || (event["event"] == "$groupidentify"
            && event["properties"].get("$amplitude_event_type").is_none())
}
