//! The late pass: after the main pass, the rows it held back (uploaded late, see [`super::days`])
//! read from the state day by day, oldest first, and handed to the senders one day per
//! request. The committer deletes each held row in the transaction that records its delivery.

use std::path::Path;
use std::sync::Arc;

use super::super::MigrateError;
use super::super::state::State;
use super::days::{LateBatches, Limits};
use super::{Batch, Deliveries, EventOrigin, Pass, Source, StopSwitch};

/// Held rows read from the state at a time.
const PAGE: usize = 500;

/// The late pass on `state` (after a main pass that did not stop): its own senders and
/// committer; the state once every held row it could send is recorded.
pub(super) fn late_pass(pass: &Pass, state: State) -> Result<State, MigrateError> {
    // The held events go now: the progress line stops calling them held for the end.
    pass.counters
        .held
        .store(0, std::sync::atomic::Ordering::Relaxed);
    let (deliveries, batch_tx, commit_tx) = Deliveries::start(pass, Some(state));
    // Deliveries alone complete held rows: nothing is registered.
    drop(commit_tx);
    let sent = send_held(
        &pass.options.state_dir,
        super::assemble::limits(pass.options),
        batch_tx,
        pass.switch.clone(),
    );
    if sent.is_err() {
        pass.switch.halt();
    }
    let (_, state) = deliveries.finish(pass.runtime);
    sent?;
    Ok(state?.expect("the late pass has a state"))
}

/// Reads every held row of the state in `dir` and sends its events, one day per request, in
/// day order, until done or stopped; the number of held rows read.
fn send_held(
    dir: &Path,
    limits: Limits,
    batches: tokio::sync::mpsc::Sender<Batch>,
    switch: StopSwitch,
) -> Result<u64, MigrateError> {
    let state = State::open(dir)?;
    let mut open = LateBatches::new(limits);
    let mut ready = Vec::new();
    let mut cursor = None;
    let mut rows = 0;
    loop {
        if switch.is_on() {
            return Ok(rows);
        }
        let page = state.late_rows(cursor.as_ref(), PAGE)?;
        let Some(last) = page.last() else {
            break;
        };
        cursor = Some(last.cursor());
        for held in page {
            rows += 1;
            let day: Arc<str> = held.day.into();
            let events = EventOrigin {
                source: Source::Held {
                    id: held.id,
                    file: held.file,
                },
                line: held.line,
                day: day.clone(),
                name: held.name.into(),
                row: Arc::new(held.row),
            }
            .tag(held.events);
            open.add_row(&day, events, &mut ready);
        }
        if !super::assemble::send(&mut ready, &batches) {
            return Ok(rows);
        }
    }
    open.close(&mut ready);
    super::assemble::send(&mut ready, &batches);
    Ok(rows)
}
