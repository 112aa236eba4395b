//! End-to-end throughput of the shipped Vector pipeline (issue 11), on one generated export,
//! in one run, beside the numbers it is judged against:
//!
//! - `map --engine vrl --threads 2` (and `native`) over the same rows: the mapping alone;
//! - the real Vector with the shipped `vector.toml`, its two HTTP sinks replaced by `file`
//!   sinks: Vector's own cost;
//! - the real Vector with the shipped `vector.toml`, only paths, hosts, ports and the rate
//!   limit changed, into a counting capture endpoint (`tests/support/src/fast_capture.rs`);
//! - `amplitude-posthog migrate` (the embedded engine, native mapping, defaults) into the same
//!   kind of endpoint, with its peak resident set size and the size of its state database;
//! - the approach of PostHog's migration guide (posthog-python, `historical_migration=True`,
//!   100 events a batch; `benches/pipeline/posthog_python_baseline.py`) into the same endpoint.
//!
//! Each Vector run is timed from its start until the last event is delivered (every mapped
//! event at the sink and every refused row in the dead letters); CPU seconds are Vector's own
//! (user + system, from `/proc`) at that moment.
//!
//! ```sh
//! VECTOR_BIN=/path/to/vector cargo bench --bench pipeline     # PIPELINE_ROWS=100000 by default
//! ```
//! The Vector runs need Vector (`VECTOR_BIN` or `vector` on `PATH`); the posthog-python part needs
//! `pip install posthog` and is left out, saying so, without it. `PIPELINE_CONFIG=DIR` runs
//! another `vector.toml` and `vrl/` (say, an older version's) on the same rows;
//! `PIPELINE_RUNS=migrate,python` (any of `vector`, `migrate`, `python`) runs only those.
//! Results go to BENCHMARKS.md.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use amplitude_posthog::MappingOutcome;
use amplitude_posthog::generator::{ExportLayout, Generator, GeneratorConfig, write_export};
use amplitude_posthog::input::{InputSource, LineReader};
use amplitude_posthog_test_support::fast_capture::FastCapture;

const SEED: u64 = 9;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Where `vector.toml` and `vrl/` come from: this repository, or `PIPELINE_CONFIG` (a
/// directory holding another version of both, to measure a before and an after).
fn config_root() -> PathBuf {
    std::env::var_os("PIPELINE_CONFIG").map_or_else(|| root().to_path_buf(), PathBuf::from)
}

/// What the native mapping says the export holds.
struct Expected {
    rows: u64,
    events: u64,
    rejected: u64,
    bytes: u64,
}

fn expected(export: &Path) -> Expected {
    let mut expected = Expected {
        rows: 0,
        events: 0,
        rejected: 0,
        bytes: 0,
    };
    let mut line = Vec::new();
    for file in amplitude_posthog::fs::walk_files(export).expect("export listed") {
        let mut reader = LineReader::open(InputSource::File(file)).expect("readable");
        while reader.next_line(&mut line).expect("readable").is_some() {
            expected.rows += 1;
            expected.bytes += line.len() as u64 + 1;
            match amplitude_posthog_transform::map_line(&line) {
                MappingOutcome::Events(events) => expected.events += events.len() as u64,
                MappingOutcome::Skipped(_) => {}
                MappingOutcome::Rejected(_) => expected.rejected += 1,
            }
        }
    }
    expected
}

/// CPU seconds (user + system) a process has used so far.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which is in parentheses and may hold spaces).
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|index| fields.get(*index)?.parse::<u64>().ok())
        .sum();
    // SAFETY: sysconf has no preconditions.
    let hertz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    ticks as f64 / hertz
}

fn lines_under(dir: &Path) -> u64 {
    amplitude_posthog::fs::walk_files(dir)
        .unwrap_or_default()
        .iter()
        .map(|file| {
            std::fs::read(file)
                .map(|bytes| bytes.iter().filter(|byte| **byte == b'\n').count() as u64)
                .unwrap_or(0)
        })
        .sum()
}

/// A directory with the shipped config (changed by `edit`), its programs and a key.
fn workspace(export: &Path, edit: impl FnOnce(&mut toml::Table)) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tmp");
    for sub in ["vrl", "secrets", "vector-data", "dead-letters", "out"] {
        std::fs::create_dir_all(dir.path().join(sub)).expect("mkdir");
    }
    let shipped = config_root();
    for program in amplitude_posthog::fs::walk_files(&shipped.join("vrl")).expect("vrl/") {
        let name = program.file_name().expect("a file name");
        std::fs::copy(&program, dir.path().join("vrl").join(name)).expect("copy a program");
    }
    std::fs::write(dir.path().join("secrets/api_key"), "phc_bench\n").expect("key");
    let mut config: toml::Table =
        toml::from_str(&std::fs::read_to_string(shipped.join("vector.toml")).expect("config"))
            .expect("TOML");
    config["sources"]["amplitude"]["include"] =
        toml::Value::Array(vec![format!("{}/**/*.json.gz", export.display()).into()]);
    edit(&mut config);
    std::fs::write(
        dir.path().join("vector.toml"),
        toml::to_string(&config).expect("TOML"),
    )
    .expect("config");
    dir
}

fn sink<'a>(config: &'a mut toml::Table, name: &str) -> &'a mut toml::Table {
    config["sinks"][name].as_table_mut().expect("a sink")
}

struct VectorRun {
    seconds: f64,
    cpu: f64,
}

/// Starts Vector in `dir`, waits until `done`, and measures.
fn run_vector(vector: &Path, dir: &Path, mut done: impl FnMut() -> bool) -> VectorRun {
    let mut child: Child = Command::new(vector)
        .args(["--config", "vector.toml"])
        .current_dir(dir)
        .env("VECTOR_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("Vector starts");
    let started = Instant::now();
    while !done() {
        assert!(
            started.elapsed() < Duration::from_secs(1800),
            "Vector did not finish"
        );
        if let Ok(Some(status)) = child.try_wait() {
            panic!("Vector exited early: {status}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let seconds = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds(child.id());
    let _ = child.kill();
    let _ = child.wait();
    VectorRun { seconds, cpu }
}

struct MigrateRun {
    seconds: f64,
    cpu: f64,
    peak_rss_mb: f64,
    state_mb: f64,
    summary: String,
}

/// Runs `migrate` over the export into `host` to its end; wall time, CPU and peak memory
/// from the kernel's accounting of the child (`wait4`).
#[expect(
    clippy::zombie_processes,
    reason = "wait4 reaps the child, which std's Child cannot see"
)]
fn run_migrate(cli: &str, export: &Path, host: &str) -> MigrateRun {
    let state = tempfile::tempdir().expect("tmp");
    let started = Instant::now();
    let mut child = Command::new(cli)
        .arg("migrate")
        .arg(export)
        .args(["--posthog-host", host, "--state"])
        .arg(state.path())
        // The engine's own speed: PostHog's default 2 000 events/s would measure the limit.
        .args(["--rate", "unlimited"])
        .env("POSTHOG_API_KEY", "phc_bench")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("migrate starts");
    let mut stderr = child.stderr.take().expect("piped");
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut stderr, &mut text).expect("stderr");
        text
    });
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value for wait4 to fill.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: the pid is our own child, not yet waited for; both pointers are valid.
    let waited = unsafe { libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut usage) };
    let seconds = started.elapsed().as_secs_f64();
    let summary = reader.join().expect("stderr read");
    assert!(
        waited > 0 && libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "migrate failed: {summary}"
    );
    let time = |value: libc::timeval| value.tv_sec as f64 + value.tv_usec as f64 / 1e6;
    let state_bytes: u64 = amplitude_posthog::fs::walk_files(state.path())
        .expect("state listed")
        .iter()
        .filter(|file| !file.ends_with(amplitude_posthog::migrate::DEAD_LETTERS_FILE))
        .filter_map(|file| std::fs::metadata(file).ok())
        .map(|metadata| metadata.len())
        .sum();
    MigrateRun {
        seconds,
        cpu: time(usage.ru_utime) + time(usage.ru_stime),
        peak_rss_mb: usage.ru_maxrss as f64 / 1024.0,
        state_mb: state_bytes as f64 / 1e6,
        summary,
    }
}

/// Runs a command to its end; wall seconds.
fn timed(command: &mut Command) -> (f64, std::process::Output) {
    let started = Instant::now();
    let output = command.output().expect("runs");
    assert!(output.status.success(), "{command:?}: {output:?}");
    (started.elapsed().as_secs_f64(), output)
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` runs this once without it.
    if !std::env::args().any(|argument| argument == "--bench") {
        return;
    }
    let rows: u64 = std::env::var("PIPELINE_ROWS")
        .ok()
        .and_then(|rows| rows.parse().ok())
        .unwrap_or(100_000);
    let data = root().join(format!("target/bench-data/pipeline-{rows}-{SEED}"));
    let export = data.join("export");
    if !export.is_dir() {
        let config = GeneratorConfig {
            rows,
            seed: SEED,
            ..GeneratorConfig::default()
        };
        let layout = ExportLayout {
            out_dir: Some(export.clone()),
            zip: None,
            project_id: config.project_id,
            seed: SEED,
        };
        write_export(&layout, Generator::new(config)).expect("export written");
    }
    let expected = expected(&export);
    println!(
        "export: {} rows ({:.1} MB of JSON lines), {} events, {} refused rows",
        expected.rows,
        expected.bytes as f64 / 1e6,
        expected.events,
        expected.rejected
    );

    let runs = std::env::var("PIPELINE_RUNS").unwrap_or_else(|_| "vector,migrate,python".into());
    let wanted = |name: &str| runs.split(',').any(|run| run.trim() == name);

    // The mapping alone, as the CLI runs it.
    let cli = env!("CARGO_BIN_EXE_amplitude-posthog");
    let mut map_rates = Vec::new();
    for engine in ["vrl", "native"] {
        let (seconds, _) = timed(
            Command::new(cli)
                .args(["map", "--engine", engine, "--threads", "2"])
                .arg(&export)
                .stdout(Stdio::null()),
        );
        let rate = expected.rows as f64 / seconds;
        println!("map --engine {engine} --threads 2: {seconds:.2} s, {rate:.0} rows/s");
        map_rates.push(rate);
    }
    let (vrl_rate, native_rate) = (map_rates[0], map_rates[1]);

    let vector_runs = wanted("vector")
        .then(|| match amplitude_posthog::vector::find_vector() {
            Some(vector) => Some(vector_runs(&vector, &export, &expected)),
            None => {
                println!("no Vector (set VECTOR_BIN or put vector on PATH): Vector runs skipped");
                None
            }
        })
        .flatten();

    // (c) `migrate` into a fresh counting endpoint.
    let migrate_run = wanted("migrate").then(|| {
        let capture = FastCapture::start();
        let run = run_migrate(cli, &export, &capture.url());
        let received = capture.received();
        assert!(
            received.distinct >= expected.events,
            "migrate delivered {} of {} events",
            received.distinct,
            expected.events
        );
        print!("{}", run.summary);
        run
    });

    // (d) posthog-python into a fresh counting endpoint.
    let python_rate = wanted("python").then(|| python_baseline(&export)).flatten();

    let events = expected.events as f64;
    println!();
    println!("| run | seconds | rows/s | events/s | CPU s per million events |");
    println!("|---|---|---|---|---|");
    let row = |name: &str, seconds: f64, cpu: f64| {
        println!(
            "| {name} | {seconds:.2} | {:.0} | {:.0} | {:.1} |",
            expected.rows as f64 / seconds,
            events / seconds,
            cpu / (events / 1e6)
        );
    };
    if let Some([files, http]) = &vector_runs {
        row("Vector → file sinks", files.seconds, files.cpu);
        row("Vector → capture endpoint", http.seconds, http.cpu);
    }
    if let Some(run) = &migrate_run {
        row("migrate → capture endpoint", run.seconds, run.cpu);
    }
    println!();
    if let Some([files, http]) = &vector_runs {
        println!(
            "ratio: Vector → file sinks = {:.2} × map --engine vrl --threads 2 (rows/s)",
            expected.rows as f64 / files.seconds / vrl_rate
        );
        if let Some(python_rate) = python_rate {
            println!(
                "ratio: Vector → capture endpoint = {:.2} × posthog-python ({python_rate:.0} events/s)",
                events / http.seconds / python_rate
            );
        }
    }
    if let Some(run) = &migrate_run {
        println!(
            "ratio: migrate = {:.2} × map --engine native --threads 2 (rows/s)",
            expected.rows as f64 / run.seconds / native_rate
        );
        if let Some(python_rate) = python_rate {
            println!(
                "ratio: migrate = {:.2} × posthog-python ({python_rate:.0} events/s)",
                events / run.seconds / python_rate
            );
        }
        println!(
            "migrate: peak RSS {:.1} MB, state {:.1} MB ({:.1} MB per million rows)",
            run.peak_rss_mb,
            run.state_mb,
            run.state_mb / (expected.rows as f64 / 1e6)
        );
    }
}

/// (a) Vector into file sinks, its own cost, and (b) Vector into a counting capture
/// endpoint, as shipped but for hosts, ports and the rate limit.
fn vector_runs(vector: &Path, export: &Path, expected: &Expected) -> [VectorRun; 2] {
    let files = workspace(export, |config| {
        for (name, path) in [
            ("posthog", "out/posthog.jsonl"),
            ("identity_sidecar", "out/identities.jsonl"),
        ] {
            let inputs = sink(config, name)["inputs"].clone();
            let mut file = toml::Table::new();
            file.insert("type".into(), "file".into());
            file.insert("inputs".into(), inputs);
            file.insert("path".into(), path.into());
            file.insert(
                "encoding".into(),
                toml::Value::Table(toml::Table::from_iter([("codec".into(), "json".into())])),
            );
            config["sinks"]
                .as_table_mut()
                .expect("sinks")
                .insert(name.into(), file.into());
        }
    });
    let out = files.path().join("out/posthog.jsonl");
    let letters = files.path().join("dead-letters");
    let file_run = run_vector(vector, files.path(), || {
        lines_under(&letters) >= expected.rejected
            && std::fs::metadata(&out).is_ok_and(|metadata| metadata.len() > 0)
            && lines_under(&out) >= expected.events
    });

    let capture = FastCapture::start();
    let records = FastCapture::start();
    let http = workspace(export, |config| {
        let posthog = sink(config, "posthog");
        posthog["uri"] = format!("{}/batch/", capture.url()).into();
        posthog["request"]["rate_limit_num"] = 100_000.into();
        sink(config, "identity_sidecar")["uri"] = format!("{}/records", records.url()).into();
    });
    let letters = http.path().join("dead-letters");
    let http_run = run_vector(vector, http.path(), || {
        capture.received().distinct >= expected.events && lines_under(&letters) >= expected.rejected
    });
    let received = capture.received();
    println!(
        "Vector's capture endpoint: {} requests, {} events ({} distinct)",
        received.requests, received.events, received.distinct
    );
    [file_run, http_run]
}

/// The approach of PostHog's migration guide into a counting endpoint: events/s arrived.
fn python_baseline(export: &Path) -> Option<f64> {
    let python = FastCapture::start();
    let baseline = Command::new("python3")
        .arg(root().join("benches/pipeline/posthog_python_baseline.py"))
        .arg(python.url())
        .arg(export)
        .output();
    match baseline {
        Ok(output) if output.status.success() => {
            let report: serde_json::Value =
                serde_json::from_slice(&output.stdout).expect("one JSON line");
            let seconds = report["seconds"].as_f64().expect("seconds");
            let captured = report["captured"].as_u64().expect("captured");
            let arrived = python.received().distinct;
            println!(
                "posthog-python: {captured} events captured ({} rows it could not map), {arrived} arrived, {seconds:.2} s",
                report["failed"]
            );
            Some(arrived as f64 / seconds)
        }
        other => {
            println!("posthog-python baseline skipped (pip install posthog): {other:?}");
            None
        }
    }
}
