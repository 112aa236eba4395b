//! The threads of a migration and what flows between them:
//!
//! ```text
//! reader ─chunks─▶ mappers (N) ─mapped chunks, in order─▶ assembler ─batches─▶ senders (async)
//!                                                            │ register            │ delivered
//!                                                            ▼                     ▼
//!                                                          committer (tracker + state database)
//! ```
//!
//! The assembler registers a chunk with the committer before any of its events can be sent,
//! so every completion finds its chunk. Channels are bounded: memory stays flat whatever the
//! export's size.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, SyncSender, channel, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use amplitude_posthog_transform::MappedRow;
use posthog_alias_sink::records::RecordBatch;
use posthog_alias_sink::store::Store;
use sha2::{Digest, Sha256};
use tokio::sync::watch;

use super::progress::{LiveCounts, Progress};
use super::state::{ChunkCommit, Example, State};
use super::summary::MigrationSummary;
use super::tracker::{FileId, Tracker};
use super::{DEAD_LETTERS_FILE, MigrateError, MigrateOptions, Stop};
use crate::counts::{DayCounts, Metric, UNKNOWN_DAY, outcome_counts};
use crate::dead_letter::DeadLetter;
use crate::engine::Engine;
use crate::input::{InputSource, LineReader};
use crate::outcome::MappingOutcome;
use posthog_client::refusals::{Refusals, Verdict};
use posthog_client::{Client, Undelivered, deliver};

/// Rows per chunk at most.
const CHUNK_ROWS: usize = 1000;
/// Bytes of rows per chunk at most.
const CHUNK_BYTES: usize = 4 << 20;
/// Chunks waiting for each mapper at most.
const CHUNKS_QUEUED: usize = 2;
/// Batches waiting for a sender at most.
const BATCHES_QUEUED: usize = 4;

/// The component name in this command's dead letters.
const COMPONENT: &str = "migrate";

/// A run's outcome: the totals of the whole migration so far, and how this run ended.
pub struct RunReport {
    pub summary: MigrationSummary,
    pub stop: Stop,
    /// What a dry run found (a real run's counts are in the state).
    pub dry_run: Option<DryRun>,
}

/// What a dry run counted, which a real run keeps in its state instead.
pub struct DryRun {
    /// The requests it would have made.
    pub batches: u64,
    /// Its (day, metric, reason) counts.
    pub counts: DayCounts,
    /// One example row per skip and refusal reason.
    pub examples: Vec<Example>,
}

/// One input file to read in this run.
struct Plan {
    file: FileId,
    source: InputSource,
    name: Arc<str>,
    size: u64,
    /// Lines already done (read again but not mapped).
    skip_lines: u64,
    first_chunk: u64,
}

struct Chunk {
    file: FileId,
    index: u64,
    name: Arc<str>,
    lines: Vec<(u64, Vec<u8>)>,
    /// (line, whole length) of rows too long to hold: their bytes in `lines` are only a start.
    oversized: Vec<(u64, u64)>,
    /// The last line of the chunk (or of the file's done part, for an empty last chunk).
    last_line: u64,
    end_of_file: bool,
}

impl Chunk {
    /// The whole length of line `number`, if it was too long to hold.
    fn cut(&self, number: u64) -> Option<u64> {
        self.oversized
            .iter()
            .find(|(line, _)| *line == number)
            .map(|(_, length)| *length)
    }
}

struct MappedChunk {
    chunk: Chunk,
    mapped: Vec<MappedRow>,
}

/// What the committer must write with a chunk once it is done.
#[derive(Default)]
struct Pending {
    counts: DayCounts,
    dead_letters: Vec<(u64, String)>,
    examples: Vec<Example>,
    end_of_file: bool,
}

/// Where an event of a batch came from.
struct EventOrigin {
    file: FileId,
    chunk: u64,
    line: u64,
    day: Arc<str>,
    name: Arc<str>,
    row: Arc<Vec<u8>>,
}

struct Batch {
    events: Arc<Vec<String>>,
    origins: Vec<EventOrigin>,
    bytes: usize,
}

enum Commit {
    Open {
        file: FileId,
        first_chunk: u64,
    },
    Register {
        file: FileId,
        index: u64,
        last_line: u64,
        events: u64,
        pending: Pending,
    },
    Delivered {
        origins: Vec<EventOrigin>,
        /// (position in the batch, PostHog's answer)
        refused: Vec<(usize, String)>,
    },
    Problem {
        file: FileId,
        problem: String,
    },
}

/// Runs (or resumes) the migration. Progress goes to stderr.
pub fn run(options: &MigrateOptions) -> Result<RunReport, MigrateError> {
    let engine = Engine::load(options.mapping)?;
    let (sources, unreadable) = crate::input::discover_reporting(&options.inputs)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|error| MigrateError::Client(error.to_string()))?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let stop_tx = Arc::new(stop_tx);
    let stopped: Arc<Mutex<Stop>> = Arc::new(Mutex::new(Stop::Finished));
    {
        let (stop_tx, stopped) = (stop_tx.clone(), stopped.clone());
        runtime.spawn(async move {
            super::interrupted().await;
            let mut stop = stopped.lock().expect("stop");
            if *stop == Stop::Finished {
                *stop = Stop::Interrupted;
            }
            let _ = stop_tx.send(true);
        });
    }

    // One run per state, held until this function returns (the kernel frees it if we die).
    let _lock = if options.dry_run {
        None
    } else {
        Some(super::lock::StateLock::exclusive(&options.state_dir)?)
    };
    let state = if options.dry_run {
        None
    } else {
        Some(State::open(&options.state_dir)?)
    };
    let (plans, problems) = plan(&sources, state.as_ref())?;
    let counters = Arc::new(LiveCounts::default());
    let progress = Progress::start(
        plans.iter().map(|plan| plan.size).sum(),
        counters.clone(),
        Duration::from_secs(10),
    );
    // Problems with files the state knows are recorded there; the others (a file that cannot
    // even be opened) only exist in this run and are added to its summary.
    let mut unregistered: Vec<(String, String)> = unreadable
        .into_iter()
        .map(|error| (String::new(), error.to_string()))
        .collect();
    for (_, problem) in &unregistered {
        progress.println(problem);
    }
    for (file, problem) in &problems {
        progress.println(problem);
        match &state {
            Some(state) if *file >= 0 => state.set_problem(*file, Some(problem))?,
            _ => unregistered.push((String::new(), problem.clone())),
        }
    }

    // The identity sidecar's sender, on the same database, from the start.
    let sidecar = match &state {
        Some(state) => Some(start_identity_sender(&runtime, state.path(), options)?),
        None => None,
    };

    let mut poster = Client::new(&options.host, &options.api_key, options.rate)
        .map_err(|error| MigrateError::Client(error.to_string()))?;
    poster.initial_backoff = options.initial_backoff;
    poster.max_backoff = options.max_backoff;
    poster.retries = counters.retries.clone();

    let (commit_tx, commit_rx) = channel::<Commit>();
    // A state that stops recording stops everything at once: nothing is sent that could not
    // be recorded, so a rerun re-sends at most what was in flight.
    let committer = state.map(|state| {
        let stop_tx = stop_tx.clone();
        named("migrate-commit", move || {
            let committed = committer(state, commit_rx);
            if committed.is_err() {
                let _ = stop_tx.send(true);
            }
            committed
        })
    });
    let (batch_tx, batch_rx) = tokio::sync::mpsc::channel::<Batch>(BATCHES_QUEUED);
    let senders = {
        let (poster, stop_rx, commit_tx, counters, stopped, stop_tx) = (
            poster.clone(),
            stop_rx.clone(),
            commit_tx.clone(),
            counters.clone(),
            stopped.clone(),
            stop_tx.clone(),
        );
        let concurrency = options.concurrency.max(1);
        let dry_run = options.dry_run;
        runtime.spawn(async move {
            send_batches(
                batch_rx,
                poster,
                concurrency,
                dry_run,
                stop_rx,
                stop_tx,
                stopped,
                commit_tx,
                counters,
            )
            .await
        })
    };

    // Reading, mapping and assembling on threads of their own.
    let threads = options.threads.max(1);
    let mut to_mappers = Vec::with_capacity(threads);
    let mut from_mappers = Vec::with_capacity(threads);
    let mut mappers = Vec::with_capacity(threads);
    for _ in 0..threads {
        let (chunk_tx, chunk_rx) = sync_channel::<Chunk>(CHUNKS_QUEUED);
        let (mapped_tx, mapped_rx) = sync_channel::<MappedChunk>(CHUNKS_QUEUED);
        let mut mapper = engine.mapper();
        mappers.push(named("migrate-map", move || {
            for chunk in chunk_rx {
                let mapped = chunk
                    .lines
                    .iter()
                    .map(|(number, line)| match chunk.cut(*number) {
                        // Too long to hold: refused without being mapped.
                        Some(_) => MappedRow::refused(
                            amplitude_posthog_transform::RejectReason::EventTooLarge,
                        ),
                        None => mapper.map_line_with_identities(line),
                    })
                    .collect();
                if mapped_tx.send(MappedChunk { chunk, mapped }).is_err() {
                    break;
                }
            }
        }));
        to_mappers.push(chunk_tx);
        from_mappers.push(mapped_rx);
    }
    let reader = {
        let (commit_tx, stop_rx, counters) = (commit_tx.clone(), stop_rx.clone(), counters.clone());
        named("migrate-read", move || {
            read_files(plans, to_mappers, commit_tx, stop_rx, counters)
        })
    };
    let store = match &committer {
        Some(_) => Some(
            Store::open(&options.state_dir.join(super::state::DATABASE))
                .map_err(|error| MigrateError::Identities(error.to_string()))?,
        ),
        None => None,
    };
    let assembled = assemble(from_mappers, store, batch_tx, commit_tx, options, &counters);
    if assembled.is_err() {
        // The identity store stopped recording: stop everything at once.
        let _ = stop_tx.send(true);
    }
    let _ = reader.join();
    for mapper in mappers {
        let _ = mapper.join();
    }
    let batches = runtime.block_on(senders).unwrap_or(0);
    let mut assembled = assembled?;
    let state = match committer {
        Some(committer) => Some(committer.join().expect("the committer does not panic")?),
        None => None,
    };

    // The aliases and group snapshots: drained unless the run stopped.
    let mut stop = stopped.lock().expect("stop").clone();
    let dry_run_counts = match &state {
        Some(_) => BTreeMap::new(),
        None => std::mem::take(&mut assembled.counts),
    };
    let mut summary = match &state {
        Some(state) => MigrationSummary::from_counts(&state.day_counts()?),
        None => MigrationSummary::from_counts(&dry_run_counts),
    };
    let dry_run = options.dry_run.then(|| DryRun {
        batches,
        counts: dry_run_counts,
        examples: std::mem::take(&mut assembled.examples),
    });
    if let Some((signals, shutdown)) = sidecar {
        if stop == Stop::Finished {
            let store = Store::open(&options.state_dir.join(super::state::DATABASE))
                .map_err(|error| MigrateError::Identities(error.to_string()))?;
            loop {
                let counts = store
                    .counts()
                    .map_err(|error| MigrateError::Identities(error.to_string()))?;
                if counts.pending == 0 && counts.groups_pending == 0 {
                    break;
                }
                if signals
                    .credentials_error
                    .load(std::sync::atomic::Ordering::SeqCst)
                {
                    stop = Stop::Credentials { status: 401 };
                    break;
                }
                if let Some((status, advice)) = signals.wrong_host.lock().expect("signals").clone()
                {
                    stop = Stop::WrongHost { status, advice };
                    break;
                }
                if let Some(reason) = signals.refused_everything.lock().expect("signals").clone() {
                    stop = Stop::Refused {
                        requests: posthog_client::refusals::IN_A_ROW,
                        reason,
                    };
                    break;
                }
                if *stop_rx.borrow() {
                    stop = stopped.lock().expect("stop").clone();
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        let _ = shutdown.send(true);
    }
    // Every sender is done before the identity store is read for the summary.
    drop(progress);
    runtime.shutdown_timeout(Duration::from_secs(5));
    if let Some(state) = &state {
        let store = Store::open(state.path())
            .map_err(|error| MigrateError::Identities(error.to_string()))?;
        if stop.is_setup() {
            store
                .requeue_failed()
                .map_err(|error| MigrateError::Identities(error.to_string()))?;
        }
        let counts = store
            .counts()
            .map_err(|error| MigrateError::Identities(error.to_string()))?;
        summary.identities = counts;
        summary.problems = state.problems()?;
        summary.problems.extend(unregistered);
        let (files, done) = state.file_totals()?;
        summary.files = files;
        summary.files_done = done;
        write_dead_letters(state, &options.state_dir)?;
    } else {
        summary.files = assembled.files;
        summary.files_done = assembled.files;
        summary.problems = unregistered;
    }
    Ok(RunReport {
        summary,
        stop,
        dry_run,
    })
}

/// A thread with a name (shown by `top -H`, `perf` and panics).
fn named<T: Send + 'static>(
    name: &str,
    work: impl FnOnce() -> T + Send + 'static,
) -> std::thread::JoinHandle<T> {
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(work)
        .expect("a thread starts")
}

/// Files with a problem: (the state's id, or a negative one for a file it does not know;
/// the problem as told to the user).
type Problems = Vec<(FileId, String)>;

/// Which files to read and from where; problems with the others.
fn plan(
    sources: &[InputSource],
    state: Option<&State>,
) -> Result<(Vec<Plan>, Problems), MigrateError> {
    let mut plans = Vec::new();
    let mut problems = Vec::new();
    let mut zips: HashMap<std::path::PathBuf, Vec<crate::zip_member::ZipMember>> = HashMap::new();
    for (position, source) in sources.iter().enumerate() {
        let name = source.display_name();
        let (size, fingerprint) = match fingerprint(source, &mut zips) {
            Ok(found) => found,
            Err(error) => {
                problems.push((
                    -1 - position as FileId,
                    format!("cannot read {name}: {error}"),
                ));
                continue;
            }
        };
        let Some(state) = state else {
            plans.push(Plan {
                file: position as FileId,
                source: source.clone(),
                name: name.into(),
                size,
                skip_lines: 0,
                first_chunk: 0,
            });
            continue;
        };
        let record = state.file(super::state::SourceKey::of(source), size, &fingerprint)?;
        state.set_problem(record.id, None)?;
        if record.size != size || record.fingerprint != fingerprint {
            problems.push((
                record.id,
                format!(
                    "{name} changed since the migration started ({} bytes then, {size} now): it is left alone; \
                     put the original back, or migrate the new file with another --state",
                    record.size
                ),
            ));
            continue;
        }
        if record.finished {
            continue;
        }
        plans.push(Plan {
            file: record.id,
            source: source.clone(),
            name: name.into(),
            size,
            skip_lines: record.rows_done,
            first_chunk: record.chunks_done,
        });
    }
    Ok((plans, problems))
}

/// A file's size and fingerprint: SHA-256 of its first and last 64 KiB (a zip member: the
/// zip's CRC-32 of it).
fn fingerprint(
    source: &InputSource,
    zips: &mut HashMap<std::path::PathBuf, Vec<crate::zip_member::ZipMember>>,
) -> std::io::Result<(u64, String)> {
    match source {
        InputSource::File(path) => {
            let mut file = std::fs::File::open(path)?;
            let size = file.metadata()?.len();
            let mut hasher = Sha256::new();
            let mut head = Vec::with_capacity(64 * 1024);
            (&mut file).take(64 * 1024).read_to_end(&mut head)?;
            hasher.update(&head);
            if size > 128 * 1024 {
                use std::io::{Seek, SeekFrom};
                file.seek(SeekFrom::Start(size - 64 * 1024))?;
                let mut tail = Vec::with_capacity(64 * 1024);
                file.take(64 * 1024).read_to_end(&mut tail)?;
                hasher.update(&tail);
            }
            Ok((
                size,
                format!("sha256:{}", hex::encode(&hasher.finalize()[..16])),
            ))
        }
        InputSource::ZipMember { zip, member } => {
            if !zips.contains_key(zip) {
                zips.insert(zip.clone(), crate::zip_member::list(zip)?);
            }
            let found = zips[zip]
                .iter()
                .find(|candidate| &candidate.name == member)
                .ok_or_else(|| std::io::Error::other(format!("no member {member}")))?;
            Ok((found.size, format!("crc32:{:08x}", found.crc32)))
        }
        InputSource::Stdin => Err(std::io::Error::other(
            "standard input cannot be migrated resumably; give files or directories",
        )),
    }
}

/// Counts bytes read from the raw file, for progress.
struct Counting<R> {
    inner: R,
    counters: Arc<LiveCounts>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        let read = self.inner.read(buffer)?;
        self.counters
            .bytes_read
            .fetch_add(read as u64, Ordering::Relaxed);
        Ok(read)
    }
}

fn open_counted(
    source: &InputSource,
    counters: &Arc<LiveCounts>,
) -> Result<LineReader, crate::input::InputError> {
    let raw: Box<dyn Read + Send> =
        match source {
            InputSource::File(path) => Box::new(std::fs::File::open(path).map_err(|error| {
                crate::input::InputError::Open {
                    path: source.display_name(),
                    error,
                }
            })?),
            InputSource::ZipMember { zip, member } => crate::zip_member::open(zip, member)
                .map_err(|error| crate::input::InputError::Open {
                    path: source.display_name(),
                    error,
                })?,
            InputSource::Stdin => Box::new(std::io::stdin()),
        };
    LineReader::from_read(
        source.clone(),
        Box::new(Counting {
            inner: raw,
            counters: counters.clone(),
        }),
    )
}

/// Reads every planned file in chunks, handing them to the mappers in turn.
fn read_files(
    plans: Vec<Plan>,
    mappers: Vec<SyncSender<Chunk>>,
    commit: Sender<Commit>,
    stop: watch::Receiver<bool>,
    counters: Arc<LiveCounts>,
) {
    let mut turn = 0;
    let mut hand = |chunk: Chunk| -> bool {
        let sent = mappers[turn % mappers.len()].send(chunk).is_ok();
        turn += 1;
        sent
    };
    for plan in plans {
        if *stop.borrow() {
            break;
        }
        let _ = commit.send(Commit::Open {
            file: plan.file,
            first_chunk: plan.first_chunk,
        });
        let mut reader = match open_counted(&plan.source, &counters) {
            Ok(reader) => reader,
            Err(error) => {
                let _ = commit.send(Commit::Problem {
                    file: plan.file,
                    problem: error.to_string(),
                });
                continue;
            }
        };
        let mut index = plan.first_chunk;
        let mut lines = Vec::new();
        let mut oversized = Vec::new();
        let mut bytes = 0;
        let mut last_line = plan.skip_lines;
        let mut buffer = Vec::new();
        loop {
            if *stop.borrow() {
                return;
            }
            match reader.next_line(&mut buffer) {
                Ok(Some(line)) if line.number <= plan.skip_lines => {}
                Ok(Some(line)) => {
                    bytes += buffer.len();
                    last_line = line.number;
                    if let Some(length) = line.oversized {
                        oversized.push((line.number, length));
                    }
                    lines.push((line.number, std::mem::take(&mut buffer)));
                    if lines.len() >= CHUNK_ROWS || bytes >= CHUNK_BYTES {
                        let chunk = Chunk {
                            file: plan.file,
                            index,
                            name: plan.name.clone(),
                            lines: std::mem::take(&mut lines),
                            oversized: std::mem::take(&mut oversized),
                            last_line,
                            end_of_file: false,
                        };
                        if !hand(chunk) {
                            return;
                        }
                        index += 1;
                        bytes = 0;
                    }
                }
                Ok(None) => {
                    let chunk = Chunk {
                        file: plan.file,
                        index,
                        name: plan.name.clone(),
                        lines: std::mem::take(&mut lines),
                        oversized: std::mem::take(&mut oversized),
                        last_line,
                        end_of_file: true,
                    };
                    if !hand(chunk) {
                        return;
                    }
                    break;
                }
                Err(error) => {
                    // What was read is migrated; the file is reported, not finished.
                    if !lines.is_empty() {
                        let chunk = Chunk {
                            file: plan.file,
                            index,
                            name: plan.name.clone(),
                            lines: std::mem::take(&mut lines),
                            oversized: std::mem::take(&mut oversized),
                            last_line,
                            end_of_file: false,
                        };
                        if !hand(chunk) {
                            return;
                        }
                    }
                    let _ = commit.send(Commit::Problem {
                        file: plan.file,
                        problem: error.to_string(),
                    });
                    break;
                }
            }
        }
    }
}

/// What the assembler counted (the dry run's totals).
struct Assembled {
    counts: DayCounts,
    files: u64,
    /// The first row of each skip and refusal reason.
    examples: Vec<Example>,
}

/// Counts rows, feeds identities to the store, packs events into batches.
fn assemble(
    from_mappers: Vec<Receiver<MappedChunk>>,
    mut store: Option<Store>,
    batches: tokio::sync::mpsc::Sender<Batch>,
    commit: Sender<Commit>,
    options: &MigrateOptions,
    counters: &LiveCounts,
) -> Result<Assembled, MigrateError> {
    let mut assembled = Assembled {
        counts: DayCounts::new(),
        files: 0,
        examples: Vec::new(),
    };
    let mut batch = Batch {
        events: Arc::new(Vec::new()),
        origins: Vec::new(),
        bytes: 0,
    };
    let mut turn = 0;
    // Reasons this run has an example row of already.
    let mut exemplified: std::collections::HashSet<(Metric, String)> =
        std::collections::HashSet::new();
    let mut finished = vec![false; from_mappers.len()];
    while !finished.iter().all(|done| *done) {
        let at = turn % from_mappers.len();
        turn += 1;
        if finished[at] {
            continue;
        }
        let Ok(MappedChunk { chunk, mapped }) = from_mappers[at].recv() else {
            finished[at] = true;
            continue;
        };
        let mut pending = Pending {
            end_of_file: chunk.end_of_file,
            ..Pending::default()
        };
        if chunk.end_of_file {
            assembled.files += 1;
        }
        let mut identities = Vec::new();
        let mut events_of_chunk = Vec::new();
        for ((line, row), mapped) in chunk.lines.iter().zip(mapped) {
            let day = mapped.day.clone().unwrap_or_else(|| UNKNOWN_DAY.to_owned());
            for (metric, reason, value) in outcome_counts(&mapped.outcome) {
                *pending
                    .counts
                    .entry((day.clone(), metric, reason.to_owned()))
                    .or_default() += value;
            }
            let not_mapped = match &mapped.outcome {
                MappingOutcome::Events(_) => None,
                MappingOutcome::Skipped(reason) => Some((Metric::Skipped, reason.as_str())),
                MappingOutcome::Rejected(reason) => Some((Metric::Rejected, reason.as_str())),
            };
            if let Some((metric, reason)) = not_mapped {
                if exemplified.insert((metric, reason.to_owned())) {
                    pending.examples.push(Example::new(
                        metric.as_str(),
                        reason,
                        &chunk.name,
                        *line,
                        row,
                    ));
                }
                if metric == Metric::Rejected {
                    let letter = DeadLetter {
                        file: &chunk.name,
                        line: *line,
                        row,
                        reason,
                        component: COMPONENT,
                        cut: chunk.cut(*line),
                    };
                    pending.dead_letters.push((*line, letter.to_json()));
                }
            }
            identities.extend(mapped.identities);
            if let MappingOutcome::Events(events) = mapped.outcome {
                let day: Arc<str> = day.into();
                let row = Arc::new(row.clone());
                for event in events {
                    events_of_chunk.push((
                        event,
                        EventOrigin {
                            file: chunk.file,
                            chunk: chunk.index,
                            line: *line,
                            day: day.clone(),
                            name: chunk.name.clone(),
                            row: row.clone(),
                        },
                    ));
                }
            }
        }
        counters
            .rows
            .fetch_add(chunk.lines.len() as u64, Ordering::Relaxed);
        for (key, value) in &pending.counts {
            *assembled.counts.entry(key.clone()).or_default() += value;
        }
        assembled.examples.extend(pending.examples.iter().cloned());
        if let Some(store) = store.as_mut()
            && !identities.is_empty()
        {
            // A store that stopped recording ends the assembly: nothing more may be sent.
            store
                .ingest(&RecordBatch::from_records(identities))
                .map_err(|error| MigrateError::Identities(error.to_string()))?;
        }
        let registered = commit.send(Commit::Register {
            file: chunk.file,
            index: chunk.index,
            last_line: chunk.last_line,
            events: events_of_chunk.len() as u64,
            pending,
        });
        if registered.is_err() && !options.dry_run {
            // The committer stopped (its error ends the run): none of these may be sent.
            return Ok(assembled);
        }
        for (event, origin) in events_of_chunk {
            let size = event.len() + 1;
            if !batch.origins.is_empty()
                && (batch.origins.len() >= options.batch_events
                    || batch.bytes + size > options.batch_bytes)
                && !flush(&mut batch, &batches)
            {
                return Ok(assembled);
            }
            Arc::get_mut(&mut batch.events)
                .expect("the batch being filled is not shared")
                .push(event);
            batch.origins.push(origin);
            batch.bytes += size;
        }
    }
    if !batch.origins.is_empty() {
        flush(&mut batch, &batches);
    }
    Ok(assembled)
}

/// Hands the full batch to the senders and starts a new one; false once they are gone.
fn flush(batch: &mut Batch, batches: &tokio::sync::mpsc::Sender<Batch>) -> bool {
    let full = std::mem::replace(
        batch,
        Batch {
            events: Arc::new(Vec::new()),
            origins: Vec::new(),
            bytes: 0,
        },
    );
    batches.blocking_send(full).is_ok()
}

/// Delivers batches, `concurrency` at a time; the number of batches (sent, or for a dry run
/// counted).
#[allow(clippy::too_many_arguments)]
async fn send_batches(
    mut batches: tokio::sync::mpsc::Receiver<Batch>,
    poster: Client,
    concurrency: usize,
    dry_run: bool,
    stop_rx: watch::Receiver<bool>,
    stop_tx: Arc<watch::Sender<bool>>,
    stopped: Arc<Mutex<Stop>>,
    commit: Sender<Commit>,
    counters: Arc<LiveCounts>,
) -> u64 {
    let outcomes = Arc::new(Outcomes {
        commit,
        counters,
        refusals: Mutex::new(Refusals::default()),
        stopped,
        stop_tx,
    });
    let permits = Arc::new(tokio::sync::Semaphore::new(concurrency));
    let mut tasks = tokio::task::JoinSet::new();
    let mut count = 0;
    while let Some(batch) = batches.recv().await {
        count += 1;
        if dry_run {
            continue;
        }
        if *stop_rx.borrow() {
            // Not sent: their chunks stay undone, so the next run sends them.
            continue;
        }
        let permit = permits
            .clone()
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        let (poster, mut stop_rx) = (poster.clone(), stop_rx.clone());
        let outcomes = outcomes.clone();
        tasks.spawn(async move {
            let _permit = permit;
            match deliver(&poster, &batch.events, &mut stop_rx, &|_| {}).await {
                Ok(refused) => outcomes.delivered(batch.origins, refused),
                Err(Undelivered::Credentials { status }) => {
                    outcomes.stop(Stop::Credentials { status });
                }
                Err(Undelivered::WrongHost { status, advice }) => {
                    outcomes.stop(Stop::WrongHost { status, advice });
                }
                Err(Undelivered::Stopped) => {}
            }
        });
        // Reap finished deliveries as we go.
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
    outcomes.finish();
    count
}

/// Where the senders' outcomes go: deliveries to the committer (wholly refused requests
/// through the [`Refusals`] rule first), fatal answers to the stop switch.
struct Outcomes {
    commit: Sender<Commit>,
    counters: Arc<LiveCounts>,
    refusals: Mutex<Refusals<Commit>>,
    stopped: Arc<Mutex<Stop>>,
    stop_tx: Arc<watch::Sender<bool>>,
}

impl Outcomes {
    /// A request PostHog answered for every event: `refused` are the events it refused.
    fn delivered(&self, origins: Vec<EventOrigin>, refused: Vec<posthog_client::Refused>) {
        let (events, refused_count) = (origins.len(), refused.len());
        let reason = refused
            .first()
            .map(|refused| refused.reason.clone())
            .unwrap_or_default();
        let delivered = Commit::Delivered {
            origins,
            refused: refused
                .into_iter()
                .map(|refused| (refused.index, refused.reason))
                .collect(),
        };
        let mut refusals = self.refusals.lock().expect("refusals");
        if Refusals::<Commit>::is_whole(events, refused_count) {
            match refusals.wholly_refused(delivered, &reason) {
                Verdict::Stop { requests, reason } => self.stop(Stop::Refused { requests, reason }),
                Verdict::Hold | Verdict::Release(_) => {}
            }
            return;
        }
        for held in refusals.accepted() {
            self.record(held);
        }
        self.record(delivered);
    }

    /// The senders are done: what is still held is released, or the run stops.
    fn finish(&self) {
        let verdict = self.refusals.lock().expect("refusals").finish();
        match verdict {
            Verdict::Release(held) => held.into_iter().for_each(|held| self.record(held)),
            Verdict::Stop { requests, reason } => self.stop(Stop::Refused { requests, reason }),
            Verdict::Hold => {}
        }
    }

    fn record(&self, delivered: Commit) {
        if let Commit::Delivered { origins, refused } = &delivered {
            self.counters
                .events_sent
                .fetch_add((origins.len() - refused.len()) as u64, Ordering::Relaxed);
            self.counters
                .dead_lettered
                .fetch_add(refused.len() as u64, Ordering::Relaxed);
        }
        let _ = self.commit.send(delivered);
    }

    /// Stops the whole run (the first reason wins).
    fn stop(&self, stop: Stop) {
        {
            let mut stopped = self.stopped.lock().expect("stop");
            if matches!(*stopped, Stop::Finished | Stop::Interrupted) {
                *stopped = stop;
            }
        }
        let _ = self.stop_tx.send(true);
    }
}

/// Applies registrations and deliveries; commits chunks as watermarks move.
fn committer(mut state: State, messages: Receiver<Commit>) -> Result<State, MigrateError> {
    let mut tracker: Tracker<Pending> = Tracker::default();
    let mut open = true;
    while open {
        match messages.recv_timeout(Duration::from_millis(100)) {
            Ok(message) => apply(&mut tracker, &state, message)?,
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => open = false,
        }
        // Everything already waiting goes into the same transaction.
        while let Ok(message) = messages.try_recv() {
            apply(&mut tracker, &state, message)?;
        }
        let done: Vec<ChunkCommit> = tracker
            .take_done()
            .into_iter()
            .map(|chunk| ChunkCommit {
                file: chunk.file,
                index: chunk.index,
                last_line: chunk.last_line,
                end_of_file: chunk.payload.end_of_file,
                counts: delivered_counts(chunk.payload.counts),
                dead_letters: chunk.payload.dead_letters,
                examples: chunk.payload.examples,
            })
            .collect();
        state.commit(&done)?;
    }
    Ok(state)
}

/// Adds the events delivered per day: produced minus dead-lettered.
fn delivered_counts(mut counts: DayCounts) -> DayCounts {
    let mut by_day: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for ((day, name, _), value) in &counts {
        match *name {
            Metric::Events => by_day.entry(day.clone()).or_default().0 += value,
            Metric::DeadLettered => by_day.entry(day.clone()).or_default().1 += value,
            _ => {}
        }
    }
    for (day, (events, dead)) in by_day {
        if events > dead {
            counts.insert((day, Metric::Delivered, String::new()), events - dead);
        }
    }
    counts
}

fn apply(
    tracker: &mut Tracker<Pending>,
    state: &State,
    message: Commit,
) -> Result<(), MigrateError> {
    match message {
        Commit::Open { file, first_chunk } => tracker.open_file(file, first_chunk),
        Commit::Register {
            file,
            index,
            last_line,
            events,
            pending,
        } => tracker.add_chunk(file, index, last_line, events, pending),
        Commit::Delivered { origins, refused } => {
            let refused: HashMap<usize, String> = refused.into_iter().collect();
            let mut per_chunk: BTreeMap<(FileId, u64), u64> = BTreeMap::new();
            for (position, origin) in origins.iter().enumerate() {
                *per_chunk.entry((origin.file, origin.chunk)).or_default() += 1;
                if let Some(reason) = refused.get(&position)
                    && let Some(pending) = tracker.payload_mut(origin.file, origin.chunk)
                {
                    let letter = DeadLetter {
                        file: &origin.name,
                        line: origin.line,
                        row: &origin.row,
                        reason,
                        component: COMPONENT,
                        cut: None,
                    };
                    pending.dead_letters.push((origin.line, letter.to_json()));
                    pending.examples.push(Example::new(
                        Metric::DeadLettered.as_str(),
                        "",
                        &origin.name,
                        origin.line,
                        &origin.row,
                    ));
                    *pending
                        .counts
                        .entry((origin.day.to_string(), Metric::DeadLettered, String::new()))
                        .or_default() += 1;
                }
            }
            for ((file, chunk), count) in per_chunk {
                tracker.complete(file, chunk, count);
            }
        }
        Commit::Problem { file, problem } => state.set_problem(file, Some(&problem))?,
    }
    Ok(())
}

/// The sidecar's sender on the migration's database; its signals and its shutdown switch.
fn start_identity_sender(
    runtime: &tokio::runtime::Runtime,
    database: &Path,
    options: &MigrateOptions,
) -> Result<
    (
        Arc<posthog_alias_sink::sender::SenderSignals>,
        watch::Sender<bool>,
    ),
    MigrateError,
> {
    // Creates the sidecar's tables before anything else opens them.
    Store::open(database).map_err(|error| MigrateError::Identities(error.to_string()))?;
    let config = super::identity_sender_config(database, options);
    let signals = Arc::new(posthog_alias_sink::sender::SenderSignals::default());
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let task_signals = signals.clone();
    runtime.spawn(async move {
        if let Err(error) = posthog_alias_sink::sender::run(config, task_signals, shutdown_rx).await
        {
            tracing::error!("the identity sender stopped: {error:#}");
        }
    });
    Ok((signals, shutdown_tx))
}

/// Rewrites `<state>/dead-letters.jsonl` from the state, atomically, one record at a time:
/// the refused rows and events, then the identity updates PostHog refused.
fn write_dead_letters(state: &State, dir: &Path) -> Result<(), MigrateError> {
    let path = dir.join(DEAD_LETTERS_FILE);
    let store =
        Store::open(state.path()).map_err(|error| MigrateError::Identities(error.to_string()))?;
    crate::fs::write_atomically_with(&path, |writer| {
        state.for_each_dead_letter(|record| {
            writer.write_all(record.as_bytes())?;
            writer.write_all(b"\n")
        })?;
        crate::dead_letter::write_identity_letters(&store, writer)
    })
    .map_err(|source| MigrateError::Write { path, source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivered_is_produced_minus_dead_lettered_per_day() {
        let mut counts = DayCounts::new();
        counts.insert(("2024-07-06".into(), Metric::Events, String::new()), 5);
        counts.insert(
            ("2024-07-06".into(), Metric::DeadLettered, String::new()),
            1,
        );
        counts.insert(("2024-07-07".into(), Metric::Events, String::new()), 2);
        let counts = delivered_counts(counts);
        assert_eq!(
            counts[&("2024-07-06".into(), Metric::Delivered, String::new())],
            4
        );
        assert_eq!(
            counts[&("2024-07-07".into(), Metric::Delivered, String::new())],
            2
        );
    }
}
