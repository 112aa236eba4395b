//! `migrate --engine vector`: the same migration carried by a real Vector running the shipped
//! `vector.toml`, supervised by this command in a workspace of its own under `<state>/vector/`
//! (see [`super::workspace`]). The identity sidecar runs inside this process, on loopback.
//!
//! Each run: add missing final newlines to the export files (`prepare`), run `resume` on the
//! checkpoints, start Vector, and watch until the end — every export file checkpointed to its
//! end, both HTTP sinks' disk buffers empty with nothing in flight (Vector's internal metrics,
//! exported on loopback), and the sidecar's outbox empty. Then Vector is stopped and the
//! summary counted. A crash of this command or of Vector loses nothing: Vector dies with
//! this command (`PR_SET_PDEATHSIG`), and the same command resumes.

use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::file_source::{ExportFiles, Positions, export_roots};
use super::metrics::{VectorMetrics, scrape};
use super::sidecar::Sidecar;
use super::workspace::Workspace;
use super::{SOURCE_ID, process};
use crate::migrate::progress::{LiveCounts, Progress};
use crate::migrate::{MigrateError, MigrateOptions, RunReport, Stop};

/// How often the supervisor looks at Vector.
const POLL: Duration = Duration::from_millis(500);

/// Runs the migration through Vector at `vector`.
pub fn run(options: &MigrateOptions, vector: &Path) -> Result<RunReport, MigrateError> {
    let fail = |what: &str, error: &dyn std::fmt::Display| {
        MigrateError::Vector(format!("{what}: {error}"))
    };
    let roots = export_roots(&options.inputs)?;
    // One run per state, held until this function returns (the kernel frees it if we die).
    let _lock = crate::migrate::lock::StateLock::exclusive(&options.state_dir)?;
    let workspace = Workspace::create(&options.state_dir)?;

    // Files that lack a final newline get one (Vector never reads such a last line).
    let dirs: Vec<PathBuf> = roots.iter().map(|root| root.dir.clone()).collect();
    let prepared = super::prepare::prepare(&dirs, false)
        .map_err(|error| fail("cannot read the export", &error))?;
    if prepared.newlines_added() > 0 {
        eprintln!(
            "added a final newline to {} export file(s) whose last line had none",
            prepared.newlines_added()
        );
    }
    let files = ExportFiles::find(&roots)?;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|error| fail("cannot start the runtime", &error))?;
    let sidecar = Sidecar::start(&runtime, &workspace, options)?;
    let metrics_address =
        free_loopback_port().map_err(|error| fail("no free loopback port", &error))?;
    let config = super::config::render(
        &workspace,
        &roots,
        options,
        &sidecar.address,
        &metrics_address,
    );
    workspace.write(&config, options)?;

    let resumed = super::resume::resume(&workspace.data(), SOURCE_ID, &dirs, false)
        .map_err(|error| fail("resume failed", &error))?;
    if resumed.checkpoints_removed > 0 {
        eprintln!(
            "resume: {} file(s) Vector was in the middle of will be read again (PostHog collapses the repeats by uuid)",
            resumed.checkpoints_removed
        );
    }

    let interrupted = Arc::new(AtomicBool::new(false));
    {
        let interrupted = interrupted.clone();
        runtime.spawn(async move {
            crate::migrate::interrupted().await;
            interrupted.store(true, Ordering::SeqCst);
        });
    }

    let mut child = process::start(vector, &workspace)?;
    let watching = Watching {
        runtime: &runtime,
        workspace: &workspace,
        files: &files,
        sidecar: &sidecar,
        interrupted: &interrupted,
        metrics_url: format!("http://{metrics_address}/metrics"),
    };
    let stop = match watching.watch(vector, &mut child) {
        Ok(stop) => stop,
        Err(error) => {
            sidecar.shutdown(&runtime);
            return Err(error);
        }
    };
    process::stop(&mut child);
    sidecar.shutdown(&runtime);
    finish(options, &workspace, &files, &sidecar, stop)
}

/// What the supervisor watches while Vector runs.
struct Watching<'a> {
    runtime: &'a tokio::runtime::Runtime,
    workspace: &'a Workspace,
    files: &'a ExportFiles,
    sidecar: &'a Sidecar,
    interrupted: &'a AtomicBool,
    metrics_url: String,
}

impl Watching<'_> {
    /// Watches Vector until the end or a stop, showing progress; an error if Vector stops by
    /// itself.
    fn watch(&self, vector: &Path, child: &mut Child) -> Result<Stop, MigrateError> {
        let counters = Arc::new(LiveCounts::default());
        let total_bytes = self.files.total_bytes();
        let progress = Progress::start(
            total_bytes,
            // Vector paces itself (its sink's request rate): the bytes it reads tell the time.
            None,
            counters.clone(),
            Duration::from_secs(10),
        );
        progress.println(&format!(
            "Vector {} runs {} (log: {})",
            vector.display(),
            self.workspace.config().display(),
            self.workspace.log().display()
        ));
        let client = reqwest::Client::new();
        let mut settled = 0;
        let mut last = VectorMetrics::default();
        loop {
            std::thread::sleep(POLL);
            if self.interrupted.load(Ordering::SeqCst) {
                return Ok(Stop::Interrupted);
            }
            if let Ok(Some(status)) = child.try_wait() {
                return Err(MigrateError::Vector(format!(
                    "Vector stopped by itself ({status}); see {} and run the same command again",
                    self.workspace.log().display()
                )));
            }
            let read = self.files.bytes_read(&checkpoint_positions(self.workspace));
            counters.bytes_read.store(read, Ordering::Relaxed);
            let Some(metrics) = self.runtime.block_on(scrape(&client, &self.metrics_url)) else {
                continue;
            };
            counters.rows.store(metrics.rows as u64, Ordering::Relaxed);
            counters
                .events_sent
                .store(metrics.delivered as u64, Ordering::Relaxed);
            if let Some(stop) = metrics.stop().or_else(|| self.sidecar.stop()) {
                return Ok(stop);
            }
            let done = read == total_bytes && metrics.waiting == 0.0 && self.sidecar.idle();
            // Two looks in a row with nothing moving: the last acknowledgements are in.
            settled = if done && metrics == last {
                settled + 1
            } else {
                0
            };
            last = metrics;
            if settled >= 2 {
                return Ok(Stop::Finished);
            }
        }
    }
}

/// After Vector has stopped: the summary and the report, counted from the export, the sidecar's
/// database and Vector's checkpoints; the identity updates PostHog refused beside Vector's own
/// dead letters.
fn finish(
    options: &MigrateOptions,
    workspace: &Workspace,
    files: &ExportFiles,
    sidecar: &Sidecar,
    stop: Stop,
) -> Result<RunReport, MigrateError> {
    let identities = |error: &dyn std::fmt::Display| MigrateError::Identities(error.to_string());
    eprintln!("counting the export with the native mapping for the summary and the report…");
    let (mut report, mut summary) = super::report::report(
        &options.inputs,
        Some(&workspace.identities()),
        Some(&workspace.dead_letters()),
    )?;
    let store = sidecar.store.lock().expect("store");
    if stop.is_setup() {
        store.requeue_failed().map_err(|error| identities(&error))?;
    }
    summary.identities = store.counts().map_err(|error| identities(&error))?;
    // Identity updates PostHog refused go beside Vector's own dead letters, in the one shape.
    let identity_letters = workspace.dead_letters().join("identities.jsonl");
    crate::fs::write_atomically_with(&identity_letters, |writer| {
        crate::dead_letter::write_identity_letters(&store, writer)
    })
    .map_err(|source| MigrateError::Write {
        path: identity_letters.clone(),
        source,
    })?;
    drop(store);
    let positions = checkpoint_positions(workspace);
    summary.files = files.count();
    summary.files_done = files.done(&positions);
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

/// A loopback address no one listens on now.
fn free_loopback_port() -> std::io::Result<String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.to_string())
}

/// Checkpoint positions of the file source by (device, inode); empty when there are none yet.
fn checkpoint_positions(workspace: &Workspace) -> Positions {
    super::checkpoints::positions(&super::checkpoints::file(&workspace.data(), SOURCE_ID))
        .unwrap_or_default()
}
