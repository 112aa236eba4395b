//! `migrate --engine vector`: the same migration carried by a real Vector running the shipped
//! `vector.toml`, supervised by this command in a workspace of its own under `<state>/vector/`
//! (see [`super::workspace`]). The identity sidecar runs inside this process, on loopback.
//!
//! Each run: add missing final newlines to the export files and set aside the rows too long
//! for Vector as dead letters (`prepare`), run `resume` on the checkpoints, start Vector, and
//! watch until the end ([`super::end`]) — every export file checkpointed to its end, both
//! HTTP sinks' disk buffers empty with nothing in flight (Vector's internal metrics, exported
//! on loopback), and the sidecar's outbox empty — or until a file is stuck short of its end
//! while nothing moves, which is a problem of the run. Then Vector is stopped and the summary
//! counted. A crash of this command or of Vector loses nothing: Vector dies with this command
//! (`PR_SET_PDEATHSIG`), and the same command resumes.

use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::end::{EndWatch, Look, Verdict};
use super::file_source::{ExportFiles, Positions, export_roots, matching_files};
use super::metrics::scrape;
use super::sidecar::Sidecar;
use super::workspace::Workspace;
use super::{SOURCE_ID, VectorError, process};
use crate::migrate::progress::{LiveCounts, Progress};
use crate::migrate::{MigrateError, MigrateOptions, RunReport, Stop};

/// How often the supervisor looks at Vector.
const POLL: Duration = Duration::from_millis(500);

/// Runs the migration through Vector at `vector`.
pub fn run(options: &MigrateOptions, vector: &Path) -> Result<RunReport, VectorError> {
    let setup = |what| move |source| VectorError::Setup { what, source };
    let roots = export_roots(&options.inputs)?;
    // One run per state, held until this function returns (the kernel frees it if we die).
    let _lock = crate::migrate::lock::StateLock::exclusive(&options.state_dir)
        .map_err(MigrateError::from)?;
    let workspace = Workspace::create(&options.state_dir)?;

    // Files that lack a final newline get one (Vector never reads such a last line); rows too
    // long for Vector, which it would discard without a trace, become dead letters.
    let dirs: Vec<PathBuf> = roots.iter().map(|root| root.dir.clone()).collect();
    let prepared = super::prepare::prepare_files(
        &matching_files(&roots)?,
        super::prepare::Expect::Either,
        false,
        &workspace.dead_letters(),
    )
    .map_err(VectorError::Prepare)?;
    if prepared.newlines_added() > 0 {
        eprintln!(
            "added a final newline to {} export file(s) whose last line had none",
            prepared.newlines_added()
        );
    }
    if prepared.set_aside() > 0 {
        eprintln!(
            "set aside {} row(s) longer than the {} bytes Vector reads as dead letters (event_too_large) in {}",
            prepared.set_aside(),
            crate::input::MAX_LINE_BYTES,
            prepared.dead_letters.display()
        );
    }
    let files = ExportFiles::prepared(&prepared)?;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(setup("cannot start the runtime"))?;
    let sidecar = Sidecar::start(&runtime, &workspace, options)?;
    let metrics_address = free_loopback_port().map_err(setup("no free loopback port"))?;
    let config = super::config::render(
        &workspace,
        &roots,
        options,
        &sidecar.address,
        &metrics_address,
    );
    workspace.write(&config, options)?;

    let resumed = super::resume::resume(&workspace.data(), SOURCE_ID, &dirs, false)
        .map_err(VectorError::Resume)?;
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

    let mut child = process::start(vector, &workspace, options.live_project)?;
    let watching = Watching {
        runtime: &runtime,
        workspace: &workspace,
        files: &files,
        sidecar: &sidecar,
        interrupted: &interrupted,
        metrics_url: format!("http://{metrics_address}/metrics"),
        stall_limit: options.vector_stall,
    };
    let ending = match watching.watch(vector, &mut child) {
        Ok(ending) => ending,
        Err(error) => {
            sidecar.shutdown(&runtime);
            return Err(error);
        }
    };
    process::stop(&mut child);
    sidecar.shutdown(&runtime);
    finish(options, &workspace, &files, &sidecar, ending)
}

/// How watching Vector ended.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Ending {
    /// Finished, or stopped (a refused key, Ctrl-C).
    Stopped(Stop),
    /// Files Vector cannot read to their end, each with why: problems of the run.
    Stuck(Vec<(String, String)>),
}

/// What the supervisor watches while Vector runs.
struct Watching<'a> {
    runtime: &'a tokio::runtime::Runtime,
    workspace: &'a Workspace,
    files: &'a ExportFiles,
    sidecar: &'a Sidecar,
    interrupted: &'a AtomicBool,
    metrics_url: String,
    /// How long nothing may move with a file short of its end (see [`super::end`]).
    stall_limit: Duration,
}

impl Watching<'_> {
    /// Watches Vector until the end, a stop or a stall, showing progress; an error if Vector
    /// stops by itself.
    fn watch(&self, vector: &Path, child: &mut Child) -> Result<Ending, VectorError> {
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
        let mut end = EndWatch::new(self.stall_limit);
        let started = std::time::Instant::now();
        loop {
            std::thread::sleep(POLL);
            if self.interrupted.load(Ordering::SeqCst) {
                return Ok(Ending::Stopped(Stop::Interrupted));
            }
            if let Ok(Some(status)) = child.try_wait() {
                return Err(VectorError::StoppedByItself(format!(
                    "Vector stopped by itself ({status}); see {} and run the same command again",
                    self.workspace.log().display()
                )));
            }
            let positions = checkpoint_positions(self.workspace);
            counters
                .bytes_read
                .store(self.files.bytes_read(&positions), Ordering::Relaxed);
            let Some(metrics) = self.runtime.block_on(scrape(&client, &self.metrics_url)) else {
                continue;
            };
            counters.rows.store(metrics.rows as u64, Ordering::Relaxed);
            counters
                .events_sent
                .store(metrics.delivered as u64, Ordering::Relaxed);
            if let Some(stop) = metrics.stop().or_else(|| self.sidecar.stop()) {
                return Ok(Ending::Stopped(stop));
            }
            let outbox = self.sidecar.counts()?;
            let look = Look {
                at: started.elapsed(),
                positions: &positions,
                metrics: &metrics,
                // Nothing left to send before a release: no group update; once released,
                // nothing at all.
                sidecar_idle: outbox.groups_pending == 0
                    && (!outbox.released || outbox.waiting() == 0),
            };
            match end.look(self.files, look) {
                Verdict::Running => {}
                // Everything is delivered: the aliases and person updates go, then the run ends
                // (the next looks wait for them; a record delivered meanwhile is released too).
                Verdict::Finished if !outbox.released => self.sidecar.release()?,
                Verdict::Finished => return Ok(Ending::Stopped(Stop::Finished)),
                Verdict::Stuck(files) => {
                    let log = self.workspace.log();
                    return Ok(Ending::Stuck(
                        files
                            .iter()
                            .map(|file| {
                                (
                                    file.path.display().to_string(),
                                    format!(
                                        "Vector's checkpoint stays at byte {} of the {} it must reach, and Vector has had nothing in flight for {} s: it cannot read this file to its end (its log: {})",
                                        file.position,
                                        file.end,
                                        self.stall_limit.as_secs(),
                                        log.display()
                                    ),
                                )
                            })
                            .collect(),
                    ));
                }
            }
        }
    }
}

/// After Vector has stopped: the summary and the report, counted from the export, the sidecar's
/// database and Vector's checkpoints, with the files Vector could not finish as problems; the
/// identity updates PostHog refused beside Vector's own dead letters.
fn finish(
    options: &MigrateOptions,
    workspace: &Workspace,
    files: &ExportFiles,
    sidecar: &Sidecar,
    ending: Ending,
) -> Result<RunReport, VectorError> {
    let (stop, stuck) = match ending {
        Ending::Stopped(stop) => (stop, Vec::new()),
        // The run is over and the files are reported: a problem, exit 1, as any unfinished run.
        Ending::Stuck(files) => (Stop::Finished, files),
    };
    eprintln!("counting the export with the native mapping for the summary and the report…");
    let (mut report, mut summary) = super::report::report(
        &options.inputs,
        Some(&workspace.identities()),
        Some(&workspace.dead_letters()),
    )?;
    let store = sidecar.store.lock().expect("store");
    if stop.is_setup() {
        store.requeue_failed().map_err(MigrateError::Identities)?;
    }
    summary.identities = store.counts().map_err(MigrateError::Identities)?;
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
    let all_read = stuck.is_empty();
    for (file, problem) in stuck {
        report.files.problems.push(crate::report::Problem {
            file: file.clone(),
            problem: problem.clone(),
        });
        summary.problems.push((file, problem));
    }
    if stop == Stop::Finished && all_read {
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
    report.write(&options.state_dir)?;
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
