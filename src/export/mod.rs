//! `export`: Amplitude's history into a verified export directory that Vector reads, for
//! projects far larger than one Export API request allows.
//!
//! Windows are planned hour-aligned ([`plan`]), requested one by one (at most two at a time)
//! through the Export API ([`client`]), streamed to disk, extracted safely ([`unpack`]) and
//! recorded in a manifest ([`manifest`]) so a re-run skips what is done. 404 means empty; 400
//! and 504 split the window down to single hours; 401/403 stop at once; 429, 5xx and network
//! errors are retried with capped exponential backoff; a broken zip is retried once.

pub mod client;
pub mod manifest;
pub mod plan;
pub mod unpack;

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use client::{Answer, ExportApi};
use manifest::{Manifest, WindowStatus};
use plan::ExportWindow;
use unpack::{UnpackError, unpack_zip};

#[derive(Debug, Clone)]
pub struct ExportOptions {
    pub windows: Vec<ExportWindow>,
    pub out_dir: PathBuf,
    pub concurrency: usize,
    pub api_url: String,
    pub api_key: String,
    pub secret_key: String,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    /// Attempts for a window that keeps failing with retryable errors.
    pub max_attempts: u32,
}

/// What the run did.
#[derive(Debug, Default, Clone)]
pub struct ExportSummary {
    pub downloaded: Vec<ExportWindow>,
    pub empty: Vec<ExportWindow>,
    pub already_done: Vec<ExportWindow>,
    pub too_large: Vec<ExportWindow>,
    pub failed: Vec<(ExportWindow, String)>,
    pub files: u64,
    pub rows: u64,
    pub bytes: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(
        "Amplitude refused the credentials ({status}) for {window}: check AMPLITUDE_API_KEY and AMPLITUDE_SECRET_KEY \
         (the project's API key and secret key), and the region (use --eu for projects hosted in the EU)"
    )]
    Credentials { status: u16, window: ExportWindow },
    #[error("cannot write the export directory {0}: {1}")]
    Io(PathBuf, std::io::Error),
}

/// Progress, as the CLI shows it (a bar on a terminal, log lines otherwise).
pub trait ExportProgress: Sync {
    fn window_started(&self, window: &ExportWindow);
    fn bytes(&self, count: u64);
    fn window_finished(&self, window: &ExportWindow, outcome: &str);
    fn message(&self, text: &str);
}

/// Runs the export. Keys never appear in messages.
pub fn run_export(
    options: &ExportOptions,
    progress: &dyn ExportProgress,
) -> Result<ExportSummary, ExportError> {
    std::fs::create_dir_all(options.out_dir.join(".downloads"))
        .map_err(|error| ExportError::Io(options.out_dir.clone(), error))?;
    let manifest = Mutex::new(
        Manifest::load(&options.out_dir)
            .map_err(|error| ExportError::Io(options.out_dir.clone(), error))?,
    );
    let queue = Mutex::new(options.windows.iter().copied().collect::<VecDeque<_>>());
    let summary = Mutex::new(ExportSummary::default());
    let stop = AtomicBool::new(false);
    let fatal: Mutex<Option<ExportError>> = Mutex::new(None);
    let api = ExportApi::new(
        &options.api_url,
        options.api_key.clone(),
        options.secret_key.clone(),
    )
    .map_err(|error| ExportError::Io(options.out_dir.clone(), std::io::Error::other(error)))?;
    std::thread::scope(|scope| {
        for _ in 0..options.concurrency.clamp(1, 2) {
            scope.spawn(|| {
                while !stop.load(Ordering::SeqCst) {
                    let Some(window) = queue.lock().expect("queue").pop_front() else { break };
                    let known = manifest.lock().expect("manifest").status(&window).cloned();
                    match known {
                        Some(WindowStatus::Split { halves }) => {
                            queue_halves(&queue, halves);
                            continue;
                        }
                        Some(_) => {
                            summary.lock().expect("summary").already_done.push(window);
                            progress.window_finished(&window, "already done");
                            continue;
                        }
                        None => {}
                    }
                    progress.window_started(&window);
                    match export_window(options, &api, &window, progress) {
                        Ok(status) => {
                            let mut record = summary.lock().expect("summary");
                            let outcome = match &status {
                                WindowStatus::Done { files, rows, bytes } => {
                                    record.downloaded.push(window);
                                    record.files += files.len() as u64;
                                    record.rows += rows;
                                    record.bytes += bytes;
                                    format!("{} files, {rows} rows", files.len())
                                }
                                WindowStatus::Empty => {
                                    record.empty.push(window);
                                    "empty".to_owned()
                                }
                                WindowStatus::Split { halves } => {
                                    queue_halves(&queue, *halves);
                                    "too large, split in halves".to_owned()
                                }
                                WindowStatus::TooLarge => {
                                    record.too_large.push(window);
                                    "one hour is too large for the Export API: use Amplitude's S3 export for it".to_owned()
                                }
                            };
                            drop(record);
                            let mut manifest = manifest.lock().expect("manifest");
                            manifest.record(window, status);
                            if let Err(error) = manifest.save(&options.out_dir) {
                                *fatal.lock().expect("fatal") = Some(ExportError::Io(options.out_dir.clone(), error));
                                stop.store(true, Ordering::SeqCst);
                            }
                            progress.window_finished(&window, &outcome);
                        }
                        Err(WindowError::Credentials(status)) => {
                            *fatal.lock().expect("fatal") = Some(ExportError::Credentials { status, window });
                            stop.store(true, Ordering::SeqCst);
                        }
                        Err(WindowError::Failed(reason)) => {
                            progress.window_finished(&window, &format!("FAILED: {reason}"));
                            summary.lock().expect("summary").failed.push((window, reason));
                        }
                    }
                }
            });
        }
    });
    if let Some(error) = fatal.into_inner().expect("fatal") {
        return Err(error);
    }
    Ok(summary.into_inner().expect("summary"))
}

/// A split window's halves go to the front of the queue, in order.
fn queue_halves(queue: &Mutex<VecDeque<ExportWindow>>, halves: [ExportWindow; 2]) {
    let mut queue = queue.lock().expect("queue");
    queue.push_front(halves[1]);
    queue.push_front(halves[0]);
}

enum WindowError {
    Credentials(u16),
    Failed(String),
}

/// Downloads and extracts one window, retrying what is retryable.
fn export_window(
    options: &ExportOptions,
    api: &ExportApi,
    window: &ExportWindow,
    progress: &dyn ExportProgress,
) -> Result<WindowStatus, WindowError> {
    let zip_path = options
        .out_dir
        .join(".downloads")
        .join(format!("{}.zip.partial", window.key()));
    let mut backoff = options.initial_backoff;
    let mut broken_zips = 0;
    for _attempt in 0..options.max_attempts.max(1) {
        match api.download(window, &zip_path, &|bytes| progress.bytes(bytes)) {
            Answer::Zip { .. } => match unpack_zip(&zip_path, &options.out_dir) {
                Ok(extraction) => {
                    let _ = std::fs::remove_file(&zip_path);
                    for refused in &extraction.refused {
                        progress.message(&format!("{window}: refused member {refused:?} (its name would escape the export directory)"));
                    }
                    let rows = extraction.files.iter().map(|file| file.rows).sum();
                    let bytes = extraction.files.iter().map(|file| file.bytes).sum();
                    return Ok(WindowStatus::Done {
                        files: extraction.files,
                        rows,
                        bytes,
                    });
                }
                Err(error @ (UnpackError::BrokenZip(..) | UnpackError::BrokenMember { .. })) => {
                    broken_zips += 1;
                    progress.message(&format!("{window}: {error}"));
                    if broken_zips > 1 {
                        return Err(WindowError::Failed(format!(
                            "the zip was broken twice: {error}"
                        )));
                    }
                }
                Err(error) => return Err(WindowError::Failed(error.to_string())),
            },
            Answer::Empty => return Ok(WindowStatus::Empty),
            Answer::TooLarge { .. } => {
                return Ok(match window.halves() {
                    Some((first, second)) => WindowStatus::Split {
                        halves: [first, second],
                    },
                    None => WindowStatus::TooLarge,
                });
            }
            Answer::Credentials { status } => return Err(WindowError::Credentials(status)),
            Answer::Retry { reason, after } => {
                let wait = after.unwrap_or(backoff);
                progress.message(&format!(
                    "{window}: {reason}; retrying in {:.1} s",
                    wait.as_secs_f64()
                ));
                std::thread::sleep(wait);
                backoff = (backoff * 2).min(options.max_backoff);
            }
        }
    }
    Err(WindowError::Failed(format!(
        "gave up after {} attempts",
        options.max_attempts
    )))
}
