//! `migrate --engine vector`: the same migration carried by a real Vector running the shipped
//! `vector.toml`, supervised by this command.
//!
//! Under `<state>/vector/` it keeps a workspace of its own: the shipped config with this
//! command's paths, host, key and limits (`vector.toml`), the shipped VRL program, the key in
//! `secrets/api_key` (mode 0600), Vector's `data/` (checkpoints, disk buffers), Vector's
//! dead letters in `dead-letters/`, Vector's log in `vector.log`, and the identity sidecar's
//! database (`identities.sqlite`). The sidecar runs inside this process, on loopback.
//!
//! Each run: add missing final newlines to the export files (`prepare`), run `resume` on the
//! checkpoints, start Vector, and watch until the end — every export file checkpointed to its
//! end, both HTTP sinks' disk buffers empty with nothing in flight (Vector's internal metrics,
//! exported on loopback), and the sidecar's outbox empty. Then Vector is stopped and the
//! summary counted. A crash of this command or of Vector loses nothing: Vector dies with
//! this command (`PR_SET_PDEATHSIG`), and the same command resumes.

use std::collections::{BTreeMap, HashMap};

use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use posthog_alias_sink::intake;
use posthog_alias_sink::sender::{self, SenderSignals};
use posthog_alias_sink::store::Store;
use tokio::sync::watch;

use super::progress::{LiveCounts, Progress};
use super::{MigrateError, MigrateOptions, RunReport, Stop};

/// The configuration this command supervises: the repository's `vector.toml`.
const SHIPPED_CONFIG: &str = include_str!("../../vector.toml");
/// The id of the file source in it (its checkpoints live under `data/<id>/`).
const SOURCE_ID: &str = "amplitude";
/// Sinks whose buffers must drain before the migration is done.
const HTTP_SINKS: [&str; 2] = ["posthog", "identity_sidecar"];
/// How often the supervisor looks at Vector.
const POLL: Duration = Duration::from_millis(500);

/// Where a run's files are.
struct Workspace {
    dir: PathBuf,
}

impl Workspace {
    fn config(&self) -> PathBuf {
        self.dir.join("vector.toml")
    }
    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }
    fn dead_letters(&self) -> PathBuf {
        self.dir.join("dead-letters")
    }
    fn identities(&self) -> PathBuf {
        self.dir.join("identities.sqlite")
    }
    fn log(&self) -> PathBuf {
        self.dir.join("vector.log")
    }
}

/// What the metrics say about one run of Vector.
#[derive(Debug, Default, Clone, PartialEq)]
struct VectorMetrics {
    /// Rows the file source read in this run.
    rows: f64,
    /// Events the PostHog sink delivered in this run.
    delivered: f64,
    /// Per HTTP sink: events in its buffer, and events read from the buffer but not yet
    /// delivered (in flight).
    waiting: f64,
    /// An answer from PostHog that stops the migration (401, 403, 404, 405, 3xx), if any.
    refused_key: Option<u16>,
}

/// PostHog answers that stop the migration when Vector reports them (Vector retries every
/// answer, so they would otherwise repeat for ever): a refused key (401, 403) or a host that is
/// not PostHog's capture endpoint (404, 405, or a redirect as Vector reports its answer).
fn is_fatal_answer(status: u16) -> bool {
    matches!(
        posthog_client::Delivery::from_status(status, None, None, ""),
        posthog_client::Delivery::Credentials { .. } | posthog_client::Delivery::WrongHost { .. }
    )
}

/// Vector from `VECTOR_BIN`, else `vector` on `PATH`.
pub fn find_vector() -> Option<PathBuf> {
    std::env::var_os("VECTOR_BIN")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::split_paths(&std::env::var_os("PATH")?)
                .map(|dir| dir.join("vector"))
                .find(|candidate| candidate.is_file())
        })
}

/// Runs the migration through Vector at `vector`.
pub fn run(options: &MigrateOptions, vector: &Path) -> Result<RunReport, MigrateError> {
    let fail = |what: &str, error: &dyn std::fmt::Display| {
        MigrateError::Vector(format!("{what}: {error}"))
    };
    let roots = export_roots(&options.inputs)?;
    // One run per state, held until this function returns (the kernel frees it if we die).
    let _lock = super::lock::StateLock::exclusive(&options.state_dir)?;
    let workspace = Workspace {
        dir: absolute(&options.state_dir)?.join("vector"),
    };
    for dir in [
        workspace.dir.clone(),
        workspace.data(),
        workspace.dead_letters(),
    ] {
        std::fs::create_dir_all(&dir)
            .map_err(|source| MigrateError::Write { path: dir, source })?;
    }

    // Files that lack a final newline get one (Vector never reads such a last line).
    let dirs: Vec<PathBuf> = roots.iter().map(|root| root.dir.clone()).collect();
    let prepared = crate::prepare::prepare(&dirs, false)
        .map_err(|error| fail("cannot read the export", &error))?;
    if prepared.newlines_added() > 0 {
        eprintln!(
            "added a final newline to {} export file(s) whose last line had none",
            prepared.newlines_added()
        );
    }
    let files = export_files(&roots)?;
    let total_bytes: u64 = files.values().map(|file| file.length).sum();

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|error| fail("cannot start the runtime", &error))?;
    let (sidecar_address, store, signals, shutdown) = start_sidecar(&runtime, &workspace, options)?;
    let metrics_address =
        free_loopback_port().map_err(|error| fail("no free loopback port", &error))?;
    write_workspace(
        &workspace,
        &roots,
        options,
        &sidecar_address,
        &metrics_address,
    )?;

    let resumed = crate::resume::resume(&workspace.data(), SOURCE_ID, &dirs, false)
        .map_err(|error| fail("resume failed", &error))?;
    if resumed.checkpoints_removed > 0 {
        eprintln!(
            "resume: {} file(s) Vector was in the middle of will be read again (PostHog collapses the repeats by uuid)",
            resumed.checkpoints_removed
        );
    }

    let interrupted = Arc::new(std::sync::atomic::AtomicBool::new(false));
    {
        let interrupted = interrupted.clone();
        runtime.spawn(async move {
            super::interrupted().await;
            interrupted.store(true, Ordering::SeqCst);
        });
    }

    let mut child = start_vector(vector, &workspace)?;
    let counters = Arc::new(LiveCounts::default());
    let progress = Progress::start(total_bytes, counters.clone(), Duration::from_secs(10));
    progress.println(&format!(
        "Vector {} runs {} (log: {})",
        vector.display(),
        workspace.config().display(),
        workspace.log().display()
    ));
    let client = reqwest::Client::new();
    let metrics_url = format!("http://{metrics_address}/metrics");
    let mut settled = 0;
    let mut last = VectorMetrics::default();
    let stop = loop {
        std::thread::sleep(POLL);
        if interrupted.load(Ordering::SeqCst) {
            break Stop::Interrupted;
        }
        if let Ok(Some(status)) = child.try_wait() {
            drop(progress);
            shutdown_sidecar(&runtime, &shutdown);
            return Err(MigrateError::Vector(format!(
                "Vector stopped by itself ({status}); see {} and run the same command again",
                workspace.log().display()
            )));
        }
        let positions = checkpoint_positions(&workspace.data());
        let read: u64 = files
            .iter()
            .map(|(id, file)| positions.get(id).copied().unwrap_or(0).min(file.length))
            .sum();
        counters.bytes_read.store(read, Ordering::Relaxed);
        let Some(metrics) = runtime.block_on(scrape(&client, &metrics_url)) else {
            continue;
        };
        counters.rows.store(metrics.rows as u64, Ordering::Relaxed);
        counters
            .events_sent
            .store(metrics.delivered as u64, Ordering::Relaxed);
        if let Some(status) = metrics.refused_key {
            break match posthog_client::Delivery::from_status(status, None, None, "") {
                posthog_client::Delivery::WrongHost { status, advice } => {
                    Stop::WrongHost { status, advice }
                }
                _ => Stop::Credentials { status },
            };
        }
        if signals.credentials_error.load(Ordering::SeqCst) {
            break Stop::Credentials { status: 401 };
        }
        if let Some((status, advice)) = signals.wrong_host.lock().expect("signals").clone() {
            break Stop::WrongHost { status, advice };
        }
        if let Some(reason) = signals.refused_everything.lock().expect("signals").clone() {
            break Stop::Refused {
                requests: posthog_client::refusals::IN_A_ROW,
                reason,
            };
        }
        let sidecar_idle = store
            .lock()
            .expect("store")
            .counts()
            .is_ok_and(|counts| counts.pending == 0 && counts.groups_pending == 0);
        let done = read == total_bytes && metrics.waiting == 0.0 && sidecar_idle;
        // Two looks in a row with nothing moving: the last acknowledgements are in.
        settled = if done && metrics == last {
            settled + 1
        } else {
            0
        };
        last = metrics;
        if settled >= 2 {
            break Stop::Finished;
        }
    };
    drop(progress);
    stop_vector(&mut child);
    shutdown_sidecar(&runtime, &shutdown);

    eprintln!("counting the export with the native mapping for the summary and the report…");
    let (mut report, mut summary) = crate::report::vector_pipeline::report(
        &options.inputs,
        Some(&workspace.identities()),
        Some(&workspace.dead_letters()),
    )?;
    if stop.is_setup() {
        store
            .lock()
            .expect("store")
            .requeue_failed()
            .map_err(|error| MigrateError::Identities(error.to_string()))?;
    }
    let counts = store
        .lock()
        .expect("store")
        .counts()
        .map_err(|error| MigrateError::Identities(error.to_string()))?;
    summary.identities = counts;
    // Identity updates PostHog refused go beside Vector's own dead letters, in the one shape.
    let identity_letters = workspace.dead_letters().join("identities.jsonl");
    {
        let store = store.lock().expect("store");
        crate::fs::write_atomically_with(&identity_letters, |writer| {
            crate::dead_letter::write_identity_letters(&store, writer)
        })
        .map_err(|source| MigrateError::Write {
            path: identity_letters.clone(),
            source,
        })?;
    }
    let positions = checkpoint_positions(&workspace.data());
    summary.files = files.len() as u64;
    summary.files_done = files
        .iter()
        .filter(|(id, file)| positions.get(*id).copied().unwrap_or(0) >= file.length)
        .count() as u64;
    report.files.total = summary.files;
    report.files.done = summary.files_done;
    if stop == Stop::Finished {
        // Every file is read to its end and every buffer is drained: every event the mapping
        // produced is delivered (the sink retries every answer but success; nothing is
        // dropped), and every refused row is in Vector's dead letters.
        summary.totals.delivered = summary.totals.events;
    } else {
        // Not finished: the report says nothing is known to be delivered yet.
        for day in &mut report.days {
            day.counts.delivered = 0;
        }
        report.totals.delivered = 0;
    }
    report.state = options.state_dir.display().to_string();
    report
        .write(&options.state_dir)
        .map_err(|error| MigrateError::Vector(error.to_string()))?;
    Ok(RunReport {
        summary,
        stop,
        dry_run: None,
    })
}

/// A directory Vector reads, and the pattern (`**/*.json.gz`, or one file's name) under it.
struct Root {
    dir: PathBuf,
    patterns: Vec<String>,
}

fn absolute(path: &Path) -> Result<PathBuf, MigrateError> {
    std::path::absolute(path).map_err(|source| MigrateError::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// The inputs as Vector's file source can read them: directories and single export files;
/// zips must be unpacked first.
fn export_roots(inputs: &[PathBuf]) -> Result<Vec<Root>, MigrateError> {
    let mut roots = Vec::new();
    for input in inputs {
        let path = absolute(input)?;
        let name = path
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        if path.is_dir() {
            roots.push(Root {
                dir: path,
                patterns: vec!["**/*.json.gz".into(), "**/*.json".into()],
            });
        } else if path.is_file() && (name.ends_with(".json.gz") || name.ends_with(".json")) {
            let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
            roots.push(Root {
                dir,
                patterns: vec![name],
            });
        } else if path.is_file() && name.ends_with(".zip") {
            return Err(MigrateError::Vector(format!(
                "{}: Vector cannot read a zip; unpack it first (amplitude-posthog unpack) or use --engine embedded, which reads it in place",
                path.display()
            )));
        } else {
            return Err(MigrateError::Vector(format!(
                "{}: not a directory or a .json.gz / .json export file",
                path.display()
            )));
        }
    }
    Ok(roots)
}

/// One export file: where it is and how many bytes Vector reads from it (decompressed).
struct ExportFile {
    length: u64,
}

/// Every file the config's patterns match, by (device, inode) as Vector fingerprints them.
fn export_files(roots: &[Root]) -> Result<HashMap<(u64, u64), ExportFile>, MigrateError> {
    let mut files = HashMap::new();
    for root in roots {
        let found = crate::fs::walk_files(&root.dir)
            .map_err(|error| MigrateError::Vector(error.to_string()))?;
        for path in found {
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            let matches = root
                .patterns
                .iter()
                .any(|pattern| match pattern.strip_prefix("**/*") {
                    Some(suffix) => name.ends_with(suffix),
                    None => path == root.dir.join(pattern),
                });
            if !matches {
                continue;
            }
            let unreadable = |error: std::io::Error| {
                MigrateError::Vector(format!("cannot read {}: {error}", path.display()))
            };
            let metadata = std::fs::metadata(&path).map_err(unreadable)?;
            let length = if crate::fs::is_gzip_file(&path).map_err(unreadable)? {
                crate::export_file::scan_path(&path)
                    .map_err(unreadable)?
                    .decompressed_bytes
            } else {
                metadata.len()
            };
            files.insert((metadata.dev(), metadata.ino()), ExportFile { length });
        }
    }
    Ok(files)
}

/// Writes the config, the program and the key.
fn write_workspace(
    workspace: &Workspace,
    roots: &[Root],
    options: &MigrateOptions,
    sidecar: &str,
    metrics: &str,
) -> Result<(), MigrateError> {
    let mut config: toml::Table =
        toml::from_str(SHIPPED_CONFIG).expect("the shipped vector.toml is valid TOML");
    let path = |path: PathBuf| toml::Value::String(path.display().to_string());
    config.insert("data_dir".into(), path(workspace.data()));
    config["secret"]["posthog"]["path"] = path(workspace.dir.join("secrets"));
    config["sources"][SOURCE_ID]["include"] = toml::Value::Array(
        roots
            .iter()
            .flat_map(|root| {
                root.patterns
                    .iter()
                    .map(|pattern| path(root.dir.join(pattern)))
            })
            .collect(),
    );
    config["transforms"]["events"]["file"] =
        path(workspace.dir.join("vrl/amplitude_to_posthog.vrl"));
    let posthog = config["sinks"]["posthog"]
        .as_table_mut()
        .expect("a posthog sink");
    posthog["uri"] = format!("{}/batch/", options.host.trim_end_matches('/')).into();
    posthog["batch"]["max_events"] = (options.batch_events as i64).into();
    posthog["batch"]["max_bytes"] = (options.batch_bytes as i64).into();
    posthog["request"]["concurrency"] = (options.concurrency as i64).into();
    // --rate is in events per second; Vector limits requests: full batches at that rate.
    let requests_per_second = options.rate.map_or(1_000, |rate| {
        (u64::from(rate) / options.batch_events.max(1) as u64).max(1)
    });
    posthog["request"]["rate_limit_num"] = (requests_per_second as i64).into();
    posthog["request"]["rate_limit_duration_secs"] = 1.into();
    config["sinks"]["identity_sidecar"]["uri"] = format!("http://{sidecar}/records").into();
    config["sinks"]["dead_letters"]["path"] =
        path(workspace.dead_letters().join("amplitude-%Y-%m-%d.jsonl"));
    // The supervisor's view of Vector: its internal metrics, on loopback only.
    let table = |text: &str| -> toml::Table { toml::from_str(text).expect("a TOML table") };
    config["sources"].as_table_mut().expect("sources").insert(
        "migrate_metrics".into(),
        table("type = \"internal_metrics\"\nscrape_interval_secs = 1").into(),
    );
    let mut exporter = table("type = \"prometheus_exporter\"\ninputs = [\"migrate_metrics\"]");
    exporter.insert("address".into(), metrics.into());
    config["sinks"]
        .as_table_mut()
        .expect("sinks")
        .insert("migrate_metrics_exporter".into(), exporter.into());

    let write = |path: PathBuf, bytes: &[u8]| {
        crate::fs::write_atomically(&path, bytes)
            .map_err(|source| MigrateError::Write { path, source })
    };
    write(
        workspace.dir.join("vrl/amplitude_to_posthog.vrl"),
        crate::vrl_engine::MAPPING_PROGRAM.as_bytes(),
    )?;
    let header = "# Written by `amplitude-posthog migrate --engine vector` from the shipped vector.toml\n# (paths, host, key location and limits of that command). Rewritten on every run.\n";
    let text = toml::to_string(&config).expect("a TOML table serialises");
    write(workspace.config(), format!("{header}{text}").as_bytes())?;

    // The key: readable by this user only, never in the config or a log.
    let secrets = workspace.dir.join("secrets");
    let key_path = secrets.join("api_key");
    let wrote = (|| {
        std::fs::create_dir_all(&secrets)?;
        std::fs::set_permissions(&secrets, std::fs::Permissions::from_mode(0o700))?;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&key_path)?;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        file.write_all(options.api_key.as_bytes())?;
        file.sync_all()
    })();
    wrote.map_err(|source| MigrateError::Write {
        path: key_path,
        source,
    })
}

/// A loopback address no one listens on now.
fn free_loopback_port() -> std::io::Result<String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.to_string())
}

type Sidecar = (
    String,
    Arc<Mutex<Store>>,
    Arc<SenderSignals>,
    watch::Sender<bool>,
);

/// The identity sidecar in this process: intake on a loopback port, sender to PostHog.
fn start_sidecar(
    runtime: &tokio::runtime::Runtime,
    workspace: &Workspace,
    options: &MigrateOptions,
) -> Result<Sidecar, MigrateError> {
    let database = workspace.identities();
    let identities = |error: &dyn std::fmt::Display| MigrateError::Identities(error.to_string());
    let store = Arc::new(Mutex::new(
        Store::open(&database).map_err(|error| identities(&error))?,
    ));
    let signals = Arc::new(SenderSignals::default());
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .map_err(|error| identities(&error))?;
    let address = listener
        .local_addr()
        .map_err(|error| identities(&error))?
        .to_string();
    let state = intake::IntakeState {
        store: store.clone(),
        signals: signals.clone(),
        token: None,
        max_body_bytes: 64 * 1024 * 1024,
    };
    let config = super::identity_sender_config(&database, options);
    runtime.spawn(sender::run(config, signals.clone(), shutdown_rx.clone()));
    let mut server_shutdown = shutdown_rx;
    runtime.spawn(async move {
        let server =
            axum::serve(listener, intake::router(state)).with_graceful_shutdown(async move {
                let _ = server_shutdown.wait_for(|stop| *stop).await;
            });
        if let Err(error) = server.await {
            tracing::error!("the identity sidecar stopped: {error}");
        }
    });
    Ok((address, store, signals, shutdown_tx))
}

fn shutdown_sidecar(runtime: &tokio::runtime::Runtime, shutdown: &watch::Sender<bool>) {
    let _ = shutdown.send(true);
    runtime.block_on(async { tokio::time::sleep(Duration::from_millis(100)).await });
}

/// Starts Vector on the workspace's config; it dies with this process.
fn start_vector(vector: &Path, workspace: &Workspace) -> Result<Child, MigrateError> {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(workspace.log())
        .map_err(|source| MigrateError::Write {
            path: workspace.log(),
            source,
        })?;
    let log_err = log.try_clone().map_err(|source| MigrateError::Write {
        path: workspace.log(),
        source,
    })?;
    let mut command = Command::new(vector);
    command
        .arg("--config")
        .arg(workspace.config())
        .current_dir(&workspace.dir)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err);
    // SAFETY: prctl is async-signal-safe; it only asks the kernel to SIGKILL the child when
    // this process dies, so a killed supervisor never leaves a Vector holding the data dir.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    command.spawn().map_err(|error| {
        MigrateError::Vector(format!("cannot start {}: {error}", vector.display()))
    })
}

/// SIGTERM, then a few seconds for Vector to flush and exit, then SIGKILL: a sink that keeps
/// retrying (PostHog refusing the key) would hold Vector's shutdown for a minute, and a kill
/// loses nothing (acknowledged events are in the disk buffers, the rest is re-read).
fn stop_vector(child: &mut Child) {
    // SAFETY: kill with a valid pid of our own child.
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
    }
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(10) {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Checkpoint positions of the file source by (device, inode); empty when there are none yet.
fn checkpoint_positions(data_dir: &Path) -> BTreeMap<(u64, u64), u64> {
    crate::resume::checkpoint_positions(&data_dir.join(SOURCE_ID).join("checkpoints.json"))
        .unwrap_or_default()
}

/// Reads Vector's internal metrics; `None` while the exporter is not up.
async fn scrape(client: &reqwest::Client, url: &str) -> Option<VectorMetrics> {
    let text = client
        .get(url)
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    Some(parse_metrics(&text))
}

/// The few numbers the supervisor needs from Prometheus's text format.
fn parse_metrics(text: &str) -> VectorMetrics {
    let mut metrics = VectorMetrics::default();
    let mut per_sink: BTreeMap<&str, [f64; 3]> = BTreeMap::new();
    for line in text.lines().filter(|line| !line.starts_with('#')) {
        // `name{label="value",…} value [timestamp]`; label values may hold spaces.
        let (name, labels, rest) = match (line.find('{'), line.rfind('}')) {
            (Some(open), Some(close)) if open < close => {
                (&line[..open], &line[open + 1..close], &line[close + 1..])
            }
            _ => match line.split_once(' ') {
                Some((name, rest)) => (name, "", rest),
                None => continue,
            },
        };
        let value: f64 = rest
            .split_whitespace()
            .next()
            .and_then(|value| value.parse().ok())
            .unwrap_or(0.0);
        let label = |key: &str| {
            labels.split(',').find_map(|pair| {
                pair.strip_prefix(key)?
                    .strip_prefix("=\"")?
                    .strip_suffix('"')
            })
        };
        let component = label("component_id").unwrap_or_default();
        match name {
            "vector_component_received_events_total" if component == SOURCE_ID => {
                metrics.rows += value
            }
            "vector_component_sent_events_total" if component == "posthog" => {
                metrics.delivered += value
            }
            "vector_http_client_responses_total" if component == "posthog" => {
                let status = label("status").unwrap_or_default();
                let code = status.get(..3).and_then(|code| code.parse::<u16>().ok());
                if value > 0.0 && code.is_some_and(is_fatal_answer) {
                    metrics.refused_key = code;
                }
            }
            _ => {}
        }
        if let Some(sink) = HTTP_SINKS.iter().find(|sink| **sink == component) {
            let slot = per_sink.entry(sink).or_default();
            match name {
                "vector_buffer_size_events" => slot[0] += value,
                "vector_buffer_sent_events_total" => slot[1] += value,
                "vector_component_sent_events_total" => slot[2] += value,
                _ => {}
            }
        }
    }
    // Waiting: still in a buffer, or read from it and not yet delivered.
    metrics.waiting = per_sink
        .values()
        .map(|[buffered, read, delivered]| buffered + (read - delivered).max(0.0))
        .sum();
    if per_sink.len() < HTTP_SINKS.len() {
        // A sink not reporting yet is not known to be empty.
        metrics.waiting += 1.0;
    }
    metrics
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waiting_counts_buffered_and_in_flight_events_of_both_http_sinks() {
        let text = r#"# HELP x
vector_component_received_events_total{component_id="amplitude",component_kind="source"} 20 1
vector_buffer_size_events{buffer_id="posthog",component_id="posthog"} 3 1
vector_buffer_sent_events_total{buffer_id="posthog",component_id="posthog"} 10 1
vector_component_sent_events_total{component_id="posthog",component_kind="sink"} 8 1
vector_buffer_size_events{buffer_id="identity_sidecar",component_id="identity_sidecar"} 0 1
vector_buffer_sent_events_total{component_id="identity_sidecar"} 4 1
vector_component_sent_events_total{component_id="identity_sidecar"} 4 1
vector_http_client_responses_total{component_id="posthog",status="200 OK"} 5 1
"#;
        let metrics = parse_metrics(text);
        assert_eq!(metrics.rows, 20.0);
        assert_eq!(metrics.delivered, 8.0);
        assert_eq!(metrics.waiting, 5.0);
        assert_eq!(metrics.refused_key, None);
        let refused = parse_metrics(&format!(
            "{text}vector_http_client_responses_total{{component_id=\"posthog\",status=\"401 Unauthorized\"}} 1 1\n"
        ));
        assert_eq!(refused.refused_key, Some(401));
    }

    #[test]
    fn a_sink_not_reporting_yet_is_not_empty() {
        let text = "vector_buffer_size_events{component_id=\"posthog\"} 0 1\n";
        assert_eq!(parse_metrics(text).waiting, 1.0);
    }
}
