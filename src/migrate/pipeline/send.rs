//! The senders: batches to PostHog, `--concurrency` at a time, through the shared PostHog
//! client; what came of each goes to the committer (wholly refused requests through the
//! [`Refusals`] rule first), a fatal answer to the stop switch.

use std::sync::atomic::Ordering;
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};

use posthog_client::refusals::{Refusals, Verdict};
use posthog_client::{Client, Undelivered, deliver};

use super::super::Stop;
use super::super::progress::LiveCounts;
use super::{Batch, Commit, EventOrigin, StopSwitch};

/// How batches are sent.
pub(super) struct Sending {
    /// Requests in flight at most.
    pub(super) concurrency: usize,
    /// Count the batches, send nothing.
    pub(super) dry_run: bool,
}

/// Delivers batches, `concurrency` at a time; the number of batches (sent, or for a dry run
/// counted).
pub(super) async fn send_batches(
    mut batches: tokio::sync::mpsc::Receiver<Batch>,
    client: Client,
    sending: Sending,
    switch: StopSwitch,
    commit: Sender<Commit>,
    (counters, refusals): (Arc<LiveCounts>, Arc<Mutex<Refusals<Commit>>>),
) -> u64 {
    let outcomes = Arc::new(Outcomes {
        commit,
        counters,
        refusals,
        switch: switch.clone(),
    });
    let permits = Arc::new(tokio::sync::Semaphore::new(sending.concurrency));
    let mut tasks = tokio::task::JoinSet::new();
    let mut count = 0;
    while let Some(batch) = batches.recv().await {
        count += 1;
        if sending.dry_run {
            continue;
        }
        if switch.is_on() {
            // Not sent: their chunks stay undone, so the next run sends them.
            continue;
        }
        let permit = permits
            .clone()
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        let (client, mut stop) = (client.clone(), switch.watch());
        let outcomes = outcomes.clone();
        tasks.spawn(async move {
            let _permit = permit;
            match deliver(&client, &batch.events, &mut stop, &|_| {}).await {
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
    /// Shared by the passes of a run: a request the late pass finds wholly refused is judged
    /// knowing what the main pass saw accepted.
    refusals: Arc<Mutex<Refusals<Commit>>>,
    switch: StopSwitch,
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
        self.switch.stop(stop);
    }
}
