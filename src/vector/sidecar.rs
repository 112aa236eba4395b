//! The identity sidecar of a Vector-carried migration, in this process: the
//! `posthog-identity-sidecar` library's intake on a loopback port (Vector's `identity_sidecar`
//! sink posts to it) and its sender to PostHog, on the workspace's `identities.sqlite`.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use posthog_identity_sidecar::intake;
use posthog_identity_sidecar::persons::ProjectMode;
use posthog_identity_sidecar::sender::{self, SenderSignals};
use posthog_identity_sidecar::store::{OutboxCounts, Store};
use tokio::sync::watch;

use super::VectorError;
use super::workspace::Workspace;
use crate::migrate::{MigrateError, MigrateOptions, Stop};

/// The running sidecar.
pub(super) struct Sidecar {
    /// Where the intake listens (`host:port`).
    pub address: String,
    pub store: Arc<Mutex<Store>>,
    signals: Arc<SenderSignals>,
    shutdown: watch::Sender<bool>,
    /// How the final person updates are written (`--live-project`).
    mode: ProjectMode,
}

impl Sidecar {
    /// Starts the intake on a loopback port and the sender to PostHog.
    pub fn start(
        runtime: &tokio::runtime::Runtime,
        workspace: &Workspace,
        options: &MigrateOptions,
    ) -> Result<Sidecar, VectorError> {
        let database = workspace.identities();
        let store = Arc::new(Mutex::new(
            Store::open(&database).map_err(MigrateError::Identities)?,
        ));
        let signals = Arc::new(SenderSignals::default());
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .map_err(VectorError::SidecarListen)?;
        let address = listener
            .local_addr()
            .map_err(VectorError::SidecarListen)?
            .to_string();
        let state = intake::IntakeState {
            store: store.clone(),
            signals: signals.clone(),
            token: None,
            max_body_bytes: 64 * 1024 * 1024,
            mode: options.project_mode(),
        };
        let config = crate::migrate::identity_sender_config(
            &database,
            options,
            super::config::identity_rate(options.rate).limiter(),
        );
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
        Ok(Sidecar {
            address,
            store,
            signals,
            shutdown: shutdown_tx,
            mode: options.project_mode(),
        })
    }

    /// How the migration stops for what the sender met at PostHog, if it must.
    pub fn stop(&self) -> Option<Stop> {
        if self.signals.credentials_error.load(Ordering::SeqCst) {
            return Some(Stop::Credentials { status: 401 });
        }
        if let Some((status, advice)) = self.signals.wrong_host.lock().expect("signals").clone() {
            return Some(Stop::WrongHost { status, advice });
        }
        let refused = self.signals.refused_everything.lock().expect("signals");
        refused.clone().map(|reason| Stop::Refused {
            requests: posthog_client::refusals::IN_A_ROW,
            reason,
        })
    }

    /// The outbox's numbers now.
    pub fn counts(&self) -> Result<OutboxCounts, MigrateError> {
        let store = self.store.lock().expect("store");
        store.counts().map_err(MigrateError::Identities)
    }

    /// Every record is in (Vector has delivered everything): the aliases and the person
    /// updates may go.
    pub fn release(&self) -> Result<(), MigrateError> {
        let mut store = self.store.lock().expect("store");
        sender::release(&mut store, &self.signals, self.mode).map_err(MigrateError::Identities)?;
        Ok(())
    }

    /// Stops the intake and the sender, leaving them a moment to finish.
    pub fn shutdown(&self, runtime: &tokio::runtime::Runtime) {
        let _ = self.shutdown.send(true);
        runtime.block_on(async { tokio::time::sleep(Duration::from_millis(100)).await });
    }
}
