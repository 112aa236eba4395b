//! The identity sidecar's sender, run in this process on the migration's own database from
//! the start (group updates go as they come), and drained at the end: once every event is
//! delivered the store is released — each device's alias to its earliest user, then one update
//! per person — and `migrate` reports success only once all of it is sent (or stopped for a
//! reason of its own).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use posthog_identity_sidecar::sender::SenderSignals;
use posthog_identity_sidecar::store::Store;
use tokio::sync::watch;

use super::super::{MigrateError, MigrateOptions, Stop};
use super::StopSwitch;

/// The running sender: its signals and its shutdown switch.
pub(super) type Sidecar = (Arc<SenderSignals>, watch::Sender<bool>);

/// The sidecar's sender on the migration's database; its signals and its shutdown switch.
pub(super) fn start_sender(
    runtime: &tokio::runtime::Runtime,
    database: &Path,
    options: &MigrateOptions,
    limiter: Option<Arc<posthog_client::rate::RateLimiter>>,
) -> Result<Sidecar, MigrateError> {
    // Creates the sidecar's tables before anything else opens them.
    Store::open(database).map_err(MigrateError::Identities)?;
    let config = super::super::identity_sender_config(database, options, limiter);
    let signals = Arc::new(SenderSignals::default());
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let task_signals = signals.clone();
    runtime.spawn(async move {
        if let Err(error) =
            posthog_identity_sidecar::sender::run(config, task_signals, shutdown_rx).await
        {
            tracing::error!("the identity sender stopped: {error:#}");
        }
    });
    Ok((signals, shutdown_tx))
}

/// Releases the store once every event is delivered (the run finished), waits until the
/// outbox is empty (unless the run already stopped), then shuts the sender down; how the run
/// ended, the sender's own stop included.
pub(super) fn drain(
    (signals, shutdown): Sidecar,
    options: &MigrateOptions,
    switch: &StopSwitch,
) -> Result<Stop, MigrateError> {
    let mut stop = switch.reason();
    if stop == Stop::Finished {
        let identities = MigrateError::Identities;
        let mut store = Store::open(&options.state_dir.join(super::super::state::DATABASE))
            .map_err(identities)?;
        posthog_identity_sidecar::sender::release(&mut store, &signals, options.project_mode())
            .map_err(identities)?;
        loop {
            let counts = store.counts().map_err(identities)?;
            if counts.waiting() == 0 {
                break;
            }
            if let Some(stopped) = sender_stop(&signals) {
                stop = stopped;
                break;
            }
            if switch.is_on() {
                stop = switch.reason();
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    let _ = shutdown.send(true);
    Ok(stop)
}

/// Why the sender stopped by itself, if it did.
fn sender_stop(signals: &SenderSignals) -> Option<Stop> {
    if signals
        .credentials_error
        .load(std::sync::atomic::Ordering::SeqCst)
    {
        return Some(Stop::Credentials { status: 401 });
    }
    if let Some((status, advice)) = signals.wrong_host.lock().expect("signals").clone() {
        return Some(Stop::WrongHost { status, advice });
    }
    signals
        .refused_everything
        .lock()
        .expect("signals")
        .clone()
        .map(|reason| Stop::Refused {
            requests: posthog_client::refusals::IN_A_ROW,
            reason,
        })
}
