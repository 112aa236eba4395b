//! The threads of a migration and what flows between them, one stage a file:
//!
//! ```text
//! plan ─▶ reader ─chunks─▶ mappers (N) ─mapped chunks, in order─▶ assembler ─batches─▶ senders (async)
//!                                                                   │ register            │ delivered
//!                                                                   ▼                     ▼
//!                                                                 committer (tracker + state database)
//! ```
//!
//! - [`plan`]: which files to read and from which line (the state's watermarks);
//! - [`read`]: files read in chunks of consecutive rows;
//! - [`map`]: the mapper threads (any form of the mapping);
//! - [`assemble`]: rows counted by day and outcome, identity records to the store, events
//!   packed into batches;
//! - [`send`]: batches to PostHog, `--concurrency` at a time, and what came of them;
//! - [`commit`]: the watermarks, counts and dead letters written as chunks are done;
//! - [`identities`]: the identity sidecar's sender on the same database, drained at the end.
//!
//! The assembler registers a chunk with the committer before any of its events can be sent,
//! so every completion finds its chunk. Channels are bounded: memory stays flat whatever the
//! export's size. One [`StopSwitch`] stops every stage at once.

mod assemble;
mod commit;
mod days;
mod identities;
mod late;
mod map;
mod plan;
mod read;
mod send;

use std::sync::mpsc::channel;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use amplitude_posthog_transform::MappedRow;
use posthog_client::Client;
use posthog_identity_sidecar::store::Store;
use tokio::sync::watch;

use super::progress::{LiveCounts, Progress};
use super::state::{Example, State};
use super::summary::MigrationSummary;
use super::tracker::FileId;
use super::{MigrateError, MigrateOptions, Stop};
use crate::counts::DayCounts;
use crate::engine::Engine;

/// Rows per chunk at most.
const CHUNK_ROWS: usize = 1000;
/// Bytes of rows per chunk at most.
const CHUNK_BYTES: usize = 4 << 20;
/// Chunks waiting for each mapper at most.
const CHUNKS_QUEUED: usize = 2;
/// Batches waiting for a sender at most.
const BATCHES_QUEUED: usize = 4;
/// Chunks registered and not yet committed at most (see [`Backlog`]).
const CHUNKS_WAITING: u64 = 32;

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
type Pending = super::state::ChunkWrites;

/// Where an event of a batch came from.
#[derive(Clone)]
struct EventOrigin {
    source: Source,
    line: u64,
    day: Arc<str>,
    name: Arc<str>,
    row: Arc<Vec<u8>>,
}

impl EventOrigin {
    /// A row's events, each with this origin.
    fn tag(self, events: Vec<String>) -> Vec<(String, EventOrigin)> {
        events
            .into_iter()
            .map(|event| (event, self.clone()))
            .collect()
    }
}

/// Which pass an event is sent in, and what its delivery completes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    /// The main pass: an event of chunk `chunk` of file `file`.
    Chunk { file: FileId, chunk: u64 },
    /// The late pass: an event of the held row `id` of file `file`.
    Held { id: i64, file: FileId },
}

/// The events of one request, and where each came from.
struct Batch {
    events: Arc<Vec<String>>,
    origins: Vec<EventOrigin>,
    bytes: usize,
}

impl Batch {
    fn empty() -> Batch {
        Batch {
            events: Arc::new(Vec::new()),
            origins: Vec::new(),
            bytes: 0,
        }
    }

    /// What the batch holds: (events, bytes).
    fn fill(&self) -> (usize, usize) {
        (self.origins.len(), self.bytes)
    }

    /// Adds one row's events (`bytes` long in all).
    fn push_row(&mut self, events: Vec<(String, EventOrigin)>, bytes: usize) {
        let batch = Arc::get_mut(&mut self.events).expect("the batch being filled is not shared");
        for (event, origin) in events {
            batch.push(event);
            self.origins.push(origin);
        }
        self.bytes += bytes;
    }
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

/// The run's stop switch, shared by every stage: turned on by Ctrl-C, by a fatal answer of
/// PostHog's, or by a part that can no longer record (the state, the identity store). It keeps
/// the first reason: a fatal answer wins over an interruption, nothing else replaces a reason.
#[derive(Clone)]
struct StopSwitch {
    on: Arc<watch::Sender<bool>>,
    reason: Arc<Mutex<Stop>>,
}

impl StopSwitch {
    fn new() -> StopSwitch {
        StopSwitch {
            on: Arc::new(watch::channel(false).0),
            reason: Arc::new(Mutex::new(Stop::Finished)),
        }
    }

    /// Turns the switch on for `reason`.
    fn stop(&self, reason: Stop) {
        {
            let mut current = self.reason.lock().expect("stop");
            let replaces = match *current {
                Stop::Finished => true,
                Stop::Interrupted => reason != Stop::Interrupted,
                _ => false,
            };
            if replaces {
                *current = reason;
            }
        }
        self.on.send_replace(true);
    }

    /// Turns the switch on for an error that ends the run (and is returned as such).
    fn halt(&self) {
        self.on.send_replace(true);
    }

    fn is_on(&self) -> bool {
        *self.on.borrow()
    }

    /// A receiver that sees the switch turn on (for waits that must end with it).
    fn watch(&self) -> watch::Receiver<bool> {
        self.on.subscribe()
    }

    /// Why the run stopped (`Finished` if it did not).
    fn reason(&self) -> Stop {
        self.reason.lock().expect("stop").clone()
    }
}

/// Runs (or resumes) the migration. Progress goes to stderr.
pub fn run(options: &MigrateOptions) -> Result<RunReport, MigrateError> {
    let engine = Engine::load(options.mapping)?;
    let (sources, unreadable) = crate::input::discover_reporting(&options.inputs)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(MigrateError::Runtime)?;
    let switch = StopSwitch::new();
    runtime.spawn({
        let switch = switch.clone();
        async move {
            super::interrupted().await;
            switch.stop(Stop::Interrupted);
        }
    });

    // One run per state, held until this function returns (the kernel frees it if we die).
    let _lock = match options.dry_run {
        true => None,
        false => Some(super::lock::StateLock::exclusive(&options.state_dir)?),
    };
    let state = match options.dry_run {
        true => None,
        false => Some(State::open(&options.state_dir)?),
    };
    let (plans, problems) = plan::plan(&sources, state.as_ref())?;
    let counters = Arc::new(LiveCounts::default());
    let progress = Progress::start(
        plans.iter().map(|plan| plan.size).sum(),
        options.rate.0,
        counters.clone(),
        Duration::from_secs(10),
    );
    let unregistered = plan::record_problems(unreadable, &problems, state.as_ref(), &progress)?;
    // One client for every request of the run: one total rate, events and identities alike.
    let client = client(options, &counters)?;
    // The identity sidecar's sender, on the same database, from the start.
    let sidecar = match &state {
        Some(state) => Some(identities::start_sender(
            &runtime,
            state.path(),
            options,
            client.limiter(),
        )?),
        None => None,
    };

    let pass = Pass {
        runtime: &runtime,
        client: &client,
        options,
        switch: &switch,
        counters: &counters,
        refusals: Arc::default(),
        backlog: Arc::default(),
    };
    let (assembled, batches, state, unread) = main_pass(&pass, state, &engine, plans)?;
    // The late pass: the held rows, day by day, once the main pass is done.
    let state = match state {
        Some(state) if !switch.is_on() => Some(late::late_pass(&pass, state)?),
        state => state,
    };

    // The aliases and group snapshots: drained unless the run stopped.
    let stop = match sidecar {
        Some(sidecar) => identities::drain(sidecar, options, &switch)?,
        None => switch.reason(),
    };
    // Every sender is done before the state is read for the summary.
    drop(progress);
    runtime.shutdown_timeout(Duration::from_secs(5));
    let (summary, dry_run) = match &state {
        Some(state) => (
            commit::summarize(state, &options.state_dir, &stop, unregistered)?,
            None,
        ),
        // A dry run has no state to record the files it could not read: they are told here.
        None => assemble::dry_run_summary(
            assembled,
            batches,
            unregistered.into_iter().chain(unread).collect(),
        ),
    };
    Ok(RunReport {
        summary,
        stop,
        dry_run,
    })
}

/// Chunks registered with the committer and not yet committed. Their rows wait in memory
/// (held rows with them), so the assembler waits while [`CHUNKS_WAITING`] are: a request
/// retried for minutes cannot let a file's late rows pile up in memory behind it.
#[derive(Default)]
struct Backlog(std::sync::atomic::AtomicU64);

impl Backlog {
    fn registered(&self) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }

    fn committed(&self, chunks: usize) {
        self.0
            .fetch_sub(chunks as u64, std::sync::atomic::Ordering::SeqCst);
    }

    fn full(&self) -> bool {
        self.0.load(std::sync::atomic::Ordering::SeqCst) >= CHUNKS_WAITING
    }
}

/// What the main pass did: what the assembler counted, the requests made, the state, and the
/// files that could not be read to their end (`(file, problem)`).
type MainPass = (
    assemble::Assembled,
    u64,
    Option<State>,
    Vec<(String, String)>,
);

/// What every pass of a run shares.
struct Pass<'a> {
    runtime: &'a tokio::runtime::Runtime,
    client: &'a Client,
    options: &'a MigrateOptions,
    switch: &'a StopSwitch,
    counters: &'a Arc<LiveCounts>,
    /// Wholly refused requests, judged across the passes of the run.
    refusals: Arc<Mutex<posthog_client::refusals::Refusals<Commit>>>,
    backlog: Arc<Backlog>,
}

/// The main pass: every planned file read, mapped, counted; its late rows held back, the rest
/// sent one day per request. What the assembler counted, the requests made, and the state.
fn main_pass(
    pass: &Pass,
    state: Option<State>,
    engine: &Engine,
    plans: Vec<plan::Plan>,
) -> Result<MainPass, MigrateError> {
    let (options, switch) = (pass.options, pass.switch);
    let today = chrono::Utc::now().date_naive();
    let front = match &state {
        Some(state) => days::Front::resume(state.front()?.as_deref(), today),
        None => days::Front::resume(None, today),
    };
    let (deliveries, batch_tx, commit_tx) = Deliveries::start(pass, state);
    let map::Mappers { to, from, threads } =
        map::spawn(engine, options.threads.max(1), options.live_project);
    let reader = {
        let (commit_tx, switch, counters) =
            (commit_tx.clone(), switch.clone(), pass.counters.clone());
        named("migrate-read", move || {
            read::read_files(plans, to, commit_tx, switch, counters)
        })
    };
    let store = match options.dry_run {
        false => Some(
            Store::open(&options.state_dir.join(super::state::DATABASE))
                .map_err(MigrateError::Identities)?,
        ),
        true => None,
    };
    let assembled = assemble::assemble(
        from,
        store,
        (batch_tx, commit_tx),
        (options, front),
        (pass.counters, &pass.backlog, switch),
    );
    if assembled.is_err() {
        // The identity store stopped recording: stop everything at once.
        switch.halt();
    }
    let unread = reader.join().unwrap_or_default();
    for thread in threads {
        let _ = thread.join();
    }
    let (batches, state) = deliveries.finish(pass.runtime);
    Ok((assembled?, batches, state?, unread))
}

/// The PostHog client of the event senders, with this run's limits.
fn client(options: &MigrateOptions, counters: &LiveCounts) -> Result<Client, MigrateError> {
    let mut client =
        Client::new(&options.host, &options.api_key, options.rate).map_err(MigrateError::Client)?;
    client.initial_backoff = options.initial_backoff;
    client.max_backoff = options.max_backoff;
    client.retries = counters.retries.clone();
    Ok(client)
}

/// The senders and the committer of one pass.
struct Deliveries {
    senders: tokio::task::JoinHandle<u64>,
    committer: Option<std::thread::JoinHandle<Result<State, MigrateError>>>,
}

impl Deliveries {
    /// Starts the senders (`--concurrency` requests at a time through `client`) and, unless
    /// this is a dry run, the committer on `state`; the pass hands batches and registrations
    /// to the two senders returned.
    fn start(
        pass: &Pass,
        state: Option<State>,
    ) -> (
        Deliveries,
        tokio::sync::mpsc::Sender<Batch>,
        std::sync::mpsc::Sender<Commit>,
    ) {
        let (commit_tx, commit_rx) = channel();
        let committer = state.map(|state| {
            commit::spawn(state, commit_rx, pass.switch.clone(), pass.backlog.clone())
        });
        let (batch_tx, batch_rx) = tokio::sync::mpsc::channel(BATCHES_QUEUED);
        let senders = pass.runtime.spawn(send::send_batches(
            batch_rx,
            pass.client.clone(),
            send::Sending {
                concurrency: pass.options.concurrency.max(1),
                dry_run: pass.options.dry_run,
            },
            pass.switch.clone(),
            commit_tx.clone(),
            (pass.counters.clone(), pass.refusals.clone()),
        ));
        let deliveries = Deliveries { senders, committer };
        (deliveries, batch_tx, commit_tx)
    }

    /// Waits for the pass's last deliveries (once its batch and registration senders are
    /// dropped) and the committer's last transaction: the requests made, and the state.
    fn finish(
        self,
        runtime: &tokio::runtime::Runtime,
    ) -> (u64, Result<Option<State>, MigrateError>) {
        let batches = runtime.block_on(self.senders).unwrap_or(0);
        let state = match self.committer {
            Some(committer) => committer
                .join()
                .expect("the committer does not panic")
                .map(Some),
            None => Ok(None),
        };
        (batches, state)
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_assembler_waits_once_32_chunks_wait_for_their_deliveries() {
        let backlog = Backlog::default();
        for _ in 0..CHUNKS_WAITING - 1 {
            backlog.registered();
        }
        assert!(!backlog.full());
        backlog.registered();
        assert!(backlog.full());
        backlog.committed(1);
        assert!(!backlog.full());
    }
}
